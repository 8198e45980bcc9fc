"""Too many attempts from one address get a plain 429, audited once per window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from httpx import AsyncClient

from app.handlers import sign_in as sign_in_handlers
from app.services.enrollment import invite_create
from app.services.rate_limit import ENROLL_PER_IP, RateRule, rate_limit_reset
from app.tables import AuditEvent
from app.web import ceremonies
from tests.factories import make_patient, unique
from tests.web.conftest import csrf_from

TOO_MANY = "Too many tries. Please wait a while and try again."


@pytest.fixture(autouse=True)
async def fresh_limits() -> AsyncIterator[None]:
    await rate_limit_reset()
    yield
    await rate_limit_reset()


def tight(name: str) -> RateRule:
    return RateRule(unique(f"test-{name}-"), 2, timedelta(hours=1))


async def limited_audits() -> int:
    return await AuditEvent.count().where(AuditEvent.action == "auth.rate_limited")


async def test_the_enrollment_form_answers_429_after_the_limit(client: AsyncClient) -> None:
    patient = await make_patient()
    invitation = await invite_create(mrn=patient.mrn, via="print", base_url="", clinic_name="C")
    token = csrf_from((await client.get(invitation.link)).text)
    audits_before = await limited_audits()
    for _ in range(ENROLL_PER_IP.limit):
        tried = await client.post(invitation.link, data={"birth_date": "", "_csrf_token": token})
        assert tried.status_code == 400
    for _ in range(2):
        limited = await client.post(
            invitation.link, data={"birth_date": "1990-02-03", "_csrf_token": token}
        )
        assert limited.status_code == 429
        assert TOO_MANY in limited.text
        assert 'value="1990-02-03"' in limited.text  # what was typed stays
        assert limited.headers["cache-control"] == "no-store"
    assert await limited_audits() == audits_before + 1  # the first refusal only


async def test_code_checks_answer_429_after_the_limit(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sign_in_handlers, "CODE_CHECK_PER_IP", tight("code"))
    token = csrf_from((await client.get("/sign-in/code/check")).text)
    for _ in range(2):
        wrong = await client.post(
            "/sign-in/code/check", data={"code": "123456", "_csrf_token": token}
        )
        assert wrong.status_code == 400
    limited = await client.post(
        "/sign-in/code/check", data={"code": "123456", "_csrf_token": token}
    )
    assert limited.status_code == 429
    assert TOO_MANY in limited.text


async def test_passkey_sign_in_answers_429_as_json_after_the_limit(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ceremonies, "PASSKEY_SIGN_IN_PER_IP", tight("passkey"))
    token = csrf_from((await client.get("/")).text)
    headers = {"X-CSRFToken": token}
    for _ in range(2):
        failed = await client.post("/sign-in/passkey", headers=headers, json={})
        assert failed.status_code == 400
    limited = await client.post("/sign-in/passkey", headers=headers, json={})
    assert limited.status_code == 429
    assert limited.json() == {"error": TOO_MANY}
    assert limited.headers["cache-control"] == "no-store"
    assert "portal_session" not in limited.cookies
