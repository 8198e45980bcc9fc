"""The Health record end to end: a patient opens it from home, reads each kind and a visit
summary, downloads the visit's PDF and the whole record (FHIR JSON); a guardian of a
teenager sees no confidential problem or medication anywhere (lists, home, download)."""

from __future__ import annotations

import json
import sqlite3

from playwright.sync_api import Page, expect

from e2e.conftest import ServerInfo, sign_in
from e2e.test_accessibility import _serious


def test_a_patient_reads_the_record_a_visit_with_its_pdf_and_downloads_it(page: Page) -> None:
    sign_in(page, "james")
    page.goto("/home")
    page.get_by_role("link", name="Health record").first.click()
    page.wait_for_url("**/record")
    expect(page.get_by_role("heading", level=1)).to_have_text("Health record")
    medications = page.get_by_role("region", name="Medications")
    expect(medications.get_by_text("Metformin 1000 mg tablet")).to_be_visible()
    expect(medications.get_by_text("1 tablet by mouth twice a day with meals")).to_be_visible()
    expect(page.get_by_role("region", name="Allergies").get_by_text("Penicillin")).to_be_visible()
    shots = page.get_by_role("region", name="Immunizations")
    expect(shots.get_by_text("Influenza, seasonal")).to_be_visible()
    problems = page.get_by_role("region", name="Health problems")
    expect(problems.get_by_text("Type 2 diabetes", exact=True)).to_be_visible()
    assert _serious(page) == []
    # Nothing spills past a 390px phone's width.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390

    page.get_by_role("region", name="Visit summaries").get_by_role("link").first.click()
    page.wait_for_url("**/record/visits/*")
    expect(page.get_by_role("heading", level=1)).to_have_text("Diabetes follow-up")
    expect(page.get_by_text("Take metformin with meals.")).to_be_visible()
    with page.expect_download() as pdf:
        page.get_by_role("region", name="Documents").get_by_role("link").first.click()
    with open(pdf.value.path(), "rb") as handle:
        assert handle.read(5) == b"%PDF-"

    page.goto("/record/immunizations")
    expect(page.get_by_role("heading", level=1)).to_have_text("Immunization record")
    expect(page.get_by_role("table")).to_contain_text("Shingles (recombinant)")
    # One tap opens the browser's print dialog (stood in for here: headless has none).
    page.evaluate("() => { window.print = () => { window.printAsked = true; }; }")
    page.get_by_role("button", name="Print or save as PDF").click()
    assert page.evaluate("() => window.printAsked") is True

    page.goto("/record")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download my record").click()
    with open(download.value.path(), encoding="utf-8") as handle:
        bundle = json.load(handle)
    kinds = {entry["resource"]["resourceType"] for entry in bundle["entry"]}
    assert {"Patient", "MedicationRequest", "AllergyIntolerance", "Immunization"} <= kinds
    assert {"Condition", "Encounter", "DocumentReference", "DiagnosticReport"} <= kinds


def test_a_guardian_never_sees_a_teen_s_confidential_problem_or_medication(
    page: Page, server_info: ServerInfo
) -> None:
    with sqlite3.connect(server_info.database) as db:
        secret_visit = db.execute(
            "SELECT public_id FROM visit_summary WHERE confidential = 1 LIMIT 1"
        ).fetchone()[0]
    sign_in(page, "maria")
    page.get_by_role("navigation", name="Whose record").get_by_role(
        "button", name="Lucas, 15"
    ).click()
    expect(page.get_by_role("banner")).to_contain_text("Lucas")
    for path in ("/home", "/record", "/record/summary"):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        for secret in ("Sertraline", "Depression", "depressive", "Follow-up on mood"):
            expect(page.get_by_text(secret)).to_have_count(0)
    page.goto("/record")
    expect(page.get_by_text("Cetirizine 10 mg tablet")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download this record").click()
    with open(download.value.path(), encoding="utf-8") as handle:
        text = handle.read()
    assert "Cetirizine" in text
    assert "Sertraline" not in text
    assert "depressive" not in text
    page.goto(f"/record/visits/{secret_visit}")
    expect(page.get_by_role("heading", level=1)).to_have_text("We can't find that page")
