"""The staff console's one search box: names, a date of birth as the reader's language writes
it, or a record number."""

from __future__ import annotations

from datetime import date

from app.services.console.patients import search_terms


def test_a_date_of_birth_is_read_month_first_in_english_and_day_first_in_spanish() -> None:
    assert search_terms("garcia 3/14/1985").birth_date == date(1985, 3, 14)
    assert search_terms("garcia 14/3/1985", "es").birth_date == date(1985, 3, 14)
    assert search_terms("garcia 3/4/1985", "es").birth_date == date(1985, 4, 3)
    assert search_terms("1985-03-14", "es").birth_date == date(1985, 3, 14)


def test_names_and_a_record_number_are_kept_apart() -> None:
    terms = search_terms("Maria Garcia RFH-100001")
    assert terms.names == ("Maria", "Garcia")
    assert terms.mrn == "RFH-100001"
    assert terms.birth_date is None
