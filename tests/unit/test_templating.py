"""Filters and macros the templates share."""

from __future__ import annotations

from typing import Any

from app.templating import _tel, build_environment


def test_a_phone_number_dials_with_its_digits_only() -> None:
    assert _tel("(555) 010-0100") == "tel:5550100100"
    assert _tel(" +1 555 010 0100 ") == "tel:+15550100100"


def test_a_long_wait_on_the_dashboard_reads_in_hours() -> None:
    module: Any = build_environment().get_template("console/_figures.html").module
    assert str(module.shown("minutes", 95)) == "95 minutes"
    assert str(module.shown("minutes", 1032)) == "17 hours"
    assert str(module.change("minutes", -150)) == "-2 hours from last month"
    assert str(module.change("minutes", 30)) == "+30 minutes from last month"
