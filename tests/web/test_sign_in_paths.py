"""Patients and staff sign in by one path, kept apart: a passkey, a challenge or a session of
one never serves the other, and every step writes the audit rows it always wrote."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import partial
from typing import Any

from httpx import AsyncClient, Response

from app.clock import set_clock, utcnow
from app.handlers.support import SESSION_COOKIE, STAFF_COOKIE
from app.settings import Settings
from app.tables import Account, AuditEvent, Passkey, StaffPasskey, StaffUser, WebSession
from tests.authenticator import SoftAuthenticator
from tests.factories import Person, make_person, staff_sign_up_path
from tests.web.conftest import add_passkey, csrf_from, passkey_sign_in, sign_in

# What an audit row says, less its place, time and seal.
NOT_COMPARED = {"id", "occurred_at", "seal_seq", "row_hash"}


def _meta_csrf(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match
    return match.group(1)


async def _rows_since(first_id: int) -> list[dict[str, Any]]:
    """Every audit row written after `first_id`, all it says but its place, time and seal."""
    rows = await AuditEvent.select().where(AuditEvent.id > first_id).order_by(AuditEvent.id)
    return [{key: value for key, value in row.items() if key not in NOT_COMPARED} for row in rows]


def _audit_row(
    action: str,
    *,
    user_agent: str,
    account: int | None = None,
    staff: int | None = None,
    passkey: str = "",
) -> dict[str, Any]:
    """An audit row as the sign-in paths write it: from the test client, on no record, about
    a passkey or nothing."""
    return {
        "actor_account": account,
        "actor_staff": staff,
        "patient": None,
        "action": action,
        "resource_type": "Passkey" if passkey else "",
        "resource_id": passkey,
        "ip": "127.0.0.1",
        "user_agent": user_agent,
    }


async def _last_audit_id() -> int:
    row = await AuditEvent.select(AuditEvent.id).order_by(AuditEvent.id, ascending=False).first()
    return int(row["id"]) if row else 0


async def _staff_enroll(
    client: AsyncClient, path: str, authenticator: SoftAuthenticator
) -> Response:
    """Open a staff sign-up link and make a passkey with it, as passkeys.js does."""
    token = _meta_csrf((await client.get(path)).text)
    options = await client.post(f"{path}/options", headers={"X-CSRFToken": token}, json={})
    assert options.json()["authenticatorSelection"]["userVerification"] == "required"
    return await client.post(
        path,
        headers={"X-CSRFToken": token},
        json={"credential": authenticator.register(options.json())},
    )


async def _sign_in(
    client: AsyncClient,
    authenticator: SoftAuthenticator,
    *,
    options_at: str = "/staff/sign-in/options",
    answer_at: str = "/staff/sign-in",
    delay: timedelta = timedelta(0),
) -> Response:
    """Ask for sign-in options at one address and answer them at another after `delay`,
    as passkeys.js does (on the console's addresses unless told otherwise)."""
    token = csrf_from((await client.get("/")).text)
    options = await client.post(options_at, headers={"X-CSRFToken": token}, json={})
    assert options.json()["userVerification"] == "required"
    later = utcnow() + delay
    set_clock(lambda: later)
    return await client.post(
        answer_at,
        headers={"X-CSRFToken": token},
        json={"credential": authenticator.sign_in(options.json())},
    )


async def _staff_with_passkey(
    client: AsyncClient, settings: Settings, given: str = "Ada", family: str = "Admin"
) -> SoftAuthenticator:
    """A new staff member's passkey, made from their sign-up link; the client signed out."""
    authenticator = SoftAuthenticator()
    path = await staff_sign_up_path(settings.base_url, given=given, family=family)
    assert (await _staff_enroll(client, path, authenticator)).status_code == 201
    client.cookies.clear()
    return authenticator


async def _patient_with_passkey(client: AsyncClient) -> tuple[Person, SoftAuthenticator]:
    """A patient's passkey, added while signed in; the client signed out."""
    person, authenticator = await make_person(), SoftAuthenticator()
    await sign_in(client, person)
    assert (await add_passkey(client, authenticator)).status_code == 201
    client.cookies.clear()
    return person, authenticator


async def _staff_named(given: str, family: str) -> StaffUser:
    staff = (
        await StaffUser.objects()
        .where(StaffUser.given_name == given, StaffUser.family_name == family)
        .first()
    )
    assert staff is not None
    return staff


async def test_a_staff_member_signs_up_signs_out_and_back_in_with_the_audit_rows_as_before(
    client: AsyncClient, settings: Settings
) -> None:
    path = await staff_sign_up_path(settings.base_url, given="Ida", family="Identity")
    staff = await _staff_named("Ida", "Identity")
    authenticator = SoftAuthenticator()
    agent = client.headers["user-agent"]
    before = await _last_audit_id()

    enrolled = await _staff_enroll(client, path, authenticator)
    assert enrolled.status_code == 201
    assert enrolled.json() == {"redirect": "/staff"}
    assert (await client.get("/staff")).status_code == 200
    passkey = await StaffPasskey.objects().where(StaffPasskey.staff == staff.id).first()
    assert passkey is not None
    assert passkey.name == "This device"
    assert (await client.get(path)).status_code == 410  # the link is used up

    page = await client.get("/staff")
    await client.post("/staff/sign-out", data={"_csrf_token": csrf_from(page.text)})
    assert (await client.get("/staff", follow_redirects=False)).status_code == 303

    authenticator.user_verified = False
    refused = await _sign_in(client, authenticator)
    assert refused.status_code == 400
    assert "did not check that it is you" in refused.json()["error"]
    authenticator.user_verified = True
    signed_in = await _sign_in(client, authenticator)
    assert signed_in.status_code == 200
    assert signed_in.json() == {"redirect": "/staff"}
    assert (await client.get("/staff")).status_code == 200
    used = await StaffPasskey.select(StaffPasskey.sign_count, StaffPasskey.last_used_at).where(
        StaffPasskey.id == passkey.id
    )
    assert used[0]["sign_count"] == authenticator.sign_count
    assert used[0]["last_used_at"] is not None

    row = partial(_audit_row, user_agent=agent, staff=staff.id)
    assert await _rows_since(before) == [
        row("auth.staff_passkey_added", passkey=passkey.public_id),
        row("auth.staff_sign_in.enrollment"),
        row("auth.staff_sign_out"),
        _audit_row("auth.staff_sign_in_failed", user_agent=agent),
        row("auth.staff_sign_in.passkey"),
    ]


async def test_a_patient_adds_a_passkey_signs_out_and_back_in_with_the_audit_rows_as_before(
    client: AsyncClient,
) -> None:
    person = await make_person()
    authenticator = SoftAuthenticator()
    agent = client.headers["user-agent"]
    await sign_in(client, person)
    before = await _last_audit_id()

    assert (await add_passkey(client, authenticator)).status_code == 201
    passkey = await Passkey.objects().where(Passkey.account == person.account.id).first()
    assert passkey is not None
    page = await client.get("/more")
    await client.post("/sign-out", data={"_csrf_token": csrf_from(page.text)})
    authenticator.user_verified = False
    assert (await passkey_sign_in(client, authenticator)).status_code == 400
    authenticator.user_verified = True
    assert (await passkey_sign_in(client, authenticator)).status_code == 200
    session = await (
        WebSession.select(WebSession.passkey, WebSession.acting_patient)
        .where(WebSession.account == person.account.id)
        .order_by(WebSession.id, ascending=False)
        .first()
    )
    assert session == {"passkey": passkey.id, "acting_patient": None}
    page = await client.get("/more")
    await client.post("/sign-out/everywhere", data={"_csrf_token": csrf_from(page.text)})

    row = partial(_audit_row, user_agent=agent, account=person.account.id)
    assert await _rows_since(before) == [
        row("auth.passkey_added", passkey=passkey.public_id),
        row("auth.sign_out"),
        _audit_row("auth.sign_in_failed", user_agent=agent),
        row("auth.sign_in.passkey"),
        row("auth.sign_out_everywhere"),
    ]


async def test_a_staff_passkey_never_signs_in_a_patient_nor_a_patient_s_a_staff_member(
    client: AsyncClient, settings: Settings
) -> None:
    staff_key = await _staff_with_passkey(client, settings)
    _, patient_key = await _patient_with_passkey(client)
    assert (await passkey_sign_in(client, staff_key)).status_code == 400
    assert (await _sign_in(client, patient_key)).status_code == 400
    assert SESSION_COOKIE not in client.cookies
    assert STAFF_COOKIE not in client.cookies


async def test_a_patient_s_sign_in_challenge_does_not_serve_a_sign_in(
    client: AsyncClient, settings: Settings
) -> None:
    staff_key = await _staff_with_passkey(client, settings)
    refused = await _sign_in(client, staff_key, options_at="/sign-in/passkey/options")
    assert refused.status_code == 400
    assert STAFF_COOKIE not in client.cookies


async def test_a_sign_in_challenge_expires_after_five_minutes(client: AsyncClient) -> None:
    _, authenticator = await _patient_with_passkey(client)

    async def answered_after(delay: timedelta) -> Response:
        return await _sign_in(
            client,
            authenticator,
            options_at="/sign-in/passkey/options",
            answer_at="/sign-in/passkey",
            delay=delay,
        )

    assert (await answered_after(timedelta(minutes=5, seconds=1))).status_code == 400
    assert SESSION_COOKIE not in client.cookies
    assert (await answered_after(timedelta(minutes=4, seconds=59))).status_code == 200


async def test_a_disabled_staff_member_s_passkey_signs_nobody_in(
    client: AsyncClient, settings: Settings
) -> None:
    authenticator = await _staff_with_passkey(client, settings, given="Dee", family="Disabled")
    staff = await _staff_named("Dee", "Disabled")
    await StaffUser.update({StaffUser.disabled_at: utcnow()}).where(StaffUser.id == staff.id)
    assert (await _sign_in(client, authenticator)).status_code == 400
    assert STAFF_COOKIE not in client.cookies


async def test_a_disabled_account_s_passkey_signs_nobody_in_and_is_audited_as_a_failure(
    client: AsyncClient,
) -> None:
    person, authenticator = await _patient_with_passkey(client)
    await Account.update({Account.disabled_at: utcnow()}).where(Account.id == person.account.id)
    before = await _last_audit_id()
    refused = await passkey_sign_in(client, authenticator)
    assert refused.status_code == 400
    assert SESSION_COOKIE not in refused.cookies
    assert [row["action"] for row in await _rows_since(before)] == ["auth.sign_in_failed"]


async def test_a_staff_session_cookie_on_a_patient_page_is_nobody(
    client: AsyncClient, settings: Settings
) -> None:
    path = await staff_sign_up_path(settings.base_url)
    assert (await _staff_enroll(client, path, SoftAuthenticator())).status_code == 201
    staff_token = client.cookies.get(STAFF_COOKIE)
    assert staff_token
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, staff_token)
    assert (await client.get("/home", follow_redirects=False)).status_code == 303
