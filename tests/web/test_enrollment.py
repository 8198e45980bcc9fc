"""Enrollment through the pages: link, date of birth, welcome."""

from __future__ import annotations

import logging
from datetime import date

from httpx import AsyncClient

from app.logs import RedactSecretPaths
from app.services.enrollment import invite_create
from tests.factories import make_patient
from tests.web.conftest import csrf_from


async def test_link_then_date_of_birth_signs_the_person_in(client: AsyncClient) -> None:
    patient = await make_patient(given="Inés", birth=date(1990, 2, 3))
    invitation = await invite_create(mrn=patient.mrn, via="print", base_url="", clinic_name="C")
    page = await client.get(invitation.link)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "Inés" not in page.text  # the link alone shows nobody's name
    token = csrf_from(page.text)

    wrong = await client.post(
        invitation.link, data={"birth_date": "1990-03-02", "_csrf_token": token}
    )
    assert wrong.status_code == 400
    assert "did not match" in wrong.text
    assert 'value="1990-03-02"' in wrong.text  # what was typed stays

    right = await client.post(
        invitation.link,
        data={"birth_date": "1990-02-03", "_csrf_token": token},
        follow_redirects=False,
    )
    assert right.status_code == 303
    assert right.headers["location"] == "/welcome"
    welcome = await client.get("/welcome")
    assert "You are in, Inés" in welcome.text

    again = await client.get(invitation.link)
    assert again.status_code == 410


async def test_a_made_up_link_gets_the_same_answer_as_an_expired_one(client: AsyncClient) -> None:
    response = await client.get("/enroll/made-up-token")
    assert response.status_code == 410
    assert "This link no longer works" in response.text


def test_enrollment_tokens_never_reach_the_access_log() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/enroll/s3cr3t-token?x=1", "1.1", 200),
        None,
    )
    RedactSecretPaths().filter(record)
    assert "s3cr3t" not in record.getMessage()
    assert "/enroll/…" in record.getMessage()
