"""Filters and macros the templates share."""

from __future__ import annotations

from typing import Any

from app.templating import _tel, build_environment


def test_a_phone_number_dials_with_its_digits_only() -> None:
    assert _tel("(555) 010-0100") == "tel:5550100100"
    assert _tel(" +1 555 010 0100 ") == "tel:+15550100100"


def test_a_phone_number_reads_as_people_write_it() -> None:
    shown = build_environment().filters["phone"]
    assert shown("+15552860706") == "(555) 286-0706"  # North American: the clinics' own
    assert shown("+14165550123") == "(416) 555-0123"
    assert shown("+447911123456") == "+44 7911 123456"  # abroad: with its country code
    assert shown("+525512345678") == "+52 55 1234 5678"
    # Not E.164: shown as it was typed, never guessed at.
    for kept in ["(555) 010-0100", "+1 555 010 0100", "+1555", "ana@mail.test", ""]:
        assert shown(kept) == kept


def test_a_phone_link_dials_e164_and_reads_formatted() -> None:
    module: Any = build_environment().get_template("components/ui.html").module
    assert str(module.phone_link("+15552860706")) == (
        '<a href="tel:+15552860706">(555) 286-0706</a>'
    )


def test_a_long_wait_on_the_dashboard_reads_in_hours() -> None:
    module: Any = build_environment().get_template("console/_figures.html").module
    assert str(module.shown("minutes", 95)) == "95 minutes"
    assert str(module.shown("minutes", 1032)) == "17 hours"
    assert str(module.change("minutes", -150)) == "-2 hours from last month"
    assert str(module.change("minutes", 30)) == "+30 minutes from last month"
