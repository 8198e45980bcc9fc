"""Signing in with a code works with plain forms, and leads to a passkey offer."""

from __future__ import annotations

from datetime import date

import pytest
from httpx import AsyncClient

from app.services import sign_in as codes
from app.settings import Settings
from app.tables import Patient
from tests.factories import (
    code_sent_to,
    make_person,
    sent_to,
    with_contacts,
)
from tests.web.conftest import csrf_from, serving


async def test_code_by_text_signs_in_without_javascript(client: AsyncClient) -> None:
    person = await make_person("Ana")
    await Patient.update({Patient.phone: "+15550177777"}).where(Patient.id == person.patient.id)
    landing = await client.get("/")
    assert 'href="/sign-in/code"' in landing.text
    form = await client.get("/sign-in/code")
    token = csrf_from(form.text)
    sent = await client.post(
        "/sign-in/code",
        data={"contact": "555 017 7777", "_csrf_token": token},
        follow_redirects=False,
    )
    assert sent.headers["location"] == "/sign-in/code/check"
    code = await code_sent_to("+15550177777")
    assert "Ana" not in await sent_to("+15550177777")

    wrong = await client.post(
        "/sign-in/code/check",
        data={"code": "000000" if code != "000000" else "111111", "_csrf_token": token},
    )
    assert wrong.status_code == 400
    assert "not right" in wrong.text
    right = await client.post(
        "/sign-in/code/check", data={"code": code, "_csrf_token": token}, follow_redirects=False
    )
    assert right.headers["location"] == "/welcome"
    assert "You are in, Ana" in (await client.get("/welcome")).text


async def test_a_contact_that_is_not_a_phone_or_email_is_explained(client: AsyncClient) -> None:
    token = csrf_from((await client.get("/sign-in/code")).text)
    response = await client.post("/sign-in/code", data={"contact": "maria", "_csrf_token": token})
    assert response.status_code == 400
    assert "mobile number or an email" in response.text
    assert 'value="maria"' in response.text


async def test_a_shared_phone_asks_for_the_date_of_birth_without_javascript(
    client: AsyncClient,
) -> None:
    ana = await make_person("Ana", birth=date(1981, 4, 5))
    ben = await make_person("Ben", birth=date(1979, 8, 9))
    for person in (ana, ben):
        await with_contacts(person.patient, phone="+15550176666")
    token = csrf_from((await client.get("/sign-in/code")).text)
    await client.post("/sign-in/code", data={"contact": "5550176666", "_csrf_token": token})
    code = await code_sent_to("+15550176666")
    step = await client.post(
        "/sign-in/code/check", data={"code": code, "_csrf_token": token}, follow_redirects=False
    )
    assert step.status_code == 200
    assert "More than one person uses this phone or email" in step.text
    assert 'name="birth_date"' in step.text
    wrong = await client.post(
        "/sign-in/code/check", data={"birth_date": "1981-04-06", "_csrf_token": token}
    )
    assert wrong.status_code == 400
    assert "That did not match" in wrong.text
    assert 'value="1981-04-06"' in wrong.text
    bad = await client.post(
        "/sign-in/code/check", data={"birth_date": "April", "_csrf_token": token}
    )
    assert bad.status_code == 400
    assert "Please enter your date of birth." in bad.text
    done = await client.post(
        "/sign-in/code/check",
        data={"birth_date": "1979-08-09", "_csrf_token": token},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/welcome"
    assert "You are in, Ben" in (await client.get("/welcome")).text


async def test_a_contact_paused_for_the_day_is_told_so_in_plain_words(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codes, "CONTACT_DAY_LIMIT", 1)
    person = await make_person("Ana")
    await Patient.update({Patient.phone: "+15550177001"}).where(Patient.id == person.patient.id)
    async with serving(settings, "10.78.0.1") as client:  # its own hourly per-address count
        await _paused_page(client)


async def _paused_page(client: AsyncClient) -> None:
    token = csrf_from((await client.get("/sign-in/code")).text)
    first = await client.post(
        "/sign-in/code", data={"contact": "555 017 7001", "_csrf_token": token}
    )
    assert first.status_code == 303  # on to the code form
    paused = await client.post(
        "/sign-in/code", data={"contact": "555 017 7001", "_csrf_token": token}
    )
    assert paused.status_code == 429
    assert "paused for a day" in paused.text
    assert 'value="555 017 7001"' in paused.text


async def test_a_disabled_account_gets_no_code_and_no_session(client: AsyncClient) -> None:
    from datetime import UTC, datetime

    from app.tables import Account, AuditEvent, OutboxMessage, WebSession
    from tests.factories import phone_number

    person = await make_person("Dis")
    phone = phone_number()
    await with_contacts(person.patient, phone=phone)
    await Account.update({Account.disabled_at: datetime.now(UTC)}).where(
        Account.id == person.account.id
    )
    token = csrf_from((await client.get("/sign-in/code")).text)
    sent = await client.post(
        "/sign-in/code",
        data={"contact": phone, "_csrf_token": token},
        follow_redirects=False,
    )
    # The same answer as for any contact, so it tells nothing; but no code goes out.
    assert sent.headers["location"] == "/sign-in/code/check"
    assert await OutboxMessage.count().where(OutboxMessage.recipient == phone) == 0
    assert await WebSession.count().where(WebSession.account == person.account.id) == 0
    assert not await AuditEvent.exists().where(
        (AuditEvent.actor_account == person.account.id) & (AuditEvent.action == "auth.sign_in.code")
    )


async def test_no_way_in_opens_a_session_for_a_disabled_account() -> None:
    from datetime import UTC, datetime, timedelta

    from app.errors import NotPermittedError
    from app.services.sessions import session_start
    from app.tables import Account

    person = await make_person("Off")
    await Account.update({Account.disabled_at: datetime.now(UTC)}).where(
        Account.id == person.account.id
    )
    with pytest.raises(NotPermittedError):
        await session_start(
            account_id=person.account.id,
            acting_patient_id=None,
            lifetime=timedelta(hours=1),
            ip="",
            user_agent="",
            reason="code",
        )
