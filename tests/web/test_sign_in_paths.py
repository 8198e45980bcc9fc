"""Patients and staff sign in by one path, kept apart: a passkey, a challenge or a session of
one never serves the other, and every step writes the audit rows it always wrote."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from httpx import AsyncClient, Response

from app.clock import set_clock, utcnow
from app.handlers.support import SESSION_COOKIE, STAFF_COOKIE
from app.settings import Settings
from app.tables import AuditEvent, Passkey, StaffPasskey, StaffUser, WebSession
from tests.authenticator import SoftAuthenticator
from tests.factories import make_person, staff_sign_up_path
from tests.web.conftest import add_passkey, csrf_from, passkey_sign_in, sign_in

AUDITED = (
    AuditEvent.actor_account,
    AuditEvent.actor_staff,
    AuditEvent.patient,
    AuditEvent.action,
    AuditEvent.resource_type,
    AuditEvent.resource_id,
    AuditEvent.ip,
    AuditEvent.user_agent,
)


def _meta_csrf(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match
    return match.group(1)


async def _rows_since(first_id: int) -> list[dict[str, Any]]:
    """Every audit row written after `first_id`, as the chain will hash it (less the time)."""
    return await AuditEvent.select(*AUDITED).where(AuditEvent.id > first_id).order_by(AuditEvent.id)


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


async def _staff_sign_in(client: AsyncClient, authenticator: SoftAuthenticator) -> Response:
    token = _meta_csrf((await client.get("/staff/sign-in")).text)
    options = await client.post("/staff/sign-in/options", headers={"X-CSRFToken": token}, json={})
    assert options.json()["userVerification"] == "required"
    return await client.post(
        "/staff/sign-in",
        headers={"X-CSRFToken": token},
        json={"credential": authenticator.sign_in(options.json())},
    )


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
    refused = await _staff_sign_in(client, authenticator)
    assert refused.status_code == 400
    assert "did not check that it is you" in refused.json()["error"]
    authenticator.user_verified = True
    signed_in = await _staff_sign_in(client, authenticator)
    assert signed_in.status_code == 200
    assert signed_in.json() == {"redirect": "/staff"}
    assert (await client.get("/staff")).status_code == 200
    used = await StaffPasskey.select(StaffPasskey.sign_count, StaffPasskey.last_used_at).where(
        StaffPasskey.id == passkey.id
    )
    assert used[0]["sign_count"] == authenticator.sign_count
    assert used[0]["last_used_at"] is not None

    def row(action: str, actor_staff: int | None = staff.id, **fields: str) -> dict[str, Any]:
        return {
            "actor_account": None,
            "actor_staff": actor_staff,
            "patient": None,
            "action": action,
            "resource_type": fields.get("resource_type", ""),
            "resource_id": fields.get("resource_id", ""),
            "ip": "127.0.0.1",
            "user_agent": agent,
        }

    assert await _rows_since(before) == [
        row("auth.staff_passkey_added", resource_type="Passkey", resource_id=passkey.public_id),
        row("auth.staff_sign_in.enrollment"),
        row("auth.staff_sign_out"),
        row("auth.staff_sign_in_failed", actor_staff=None),
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

    def row(action: str, account: int | None = person.account.id, **fields: str) -> dict[str, Any]:
        return {
            "actor_account": account,
            "actor_staff": None,
            "patient": None,
            "action": action,
            "resource_type": fields.get("resource_type", ""),
            "resource_id": fields.get("resource_id", ""),
            "ip": "127.0.0.1",
            "user_agent": agent,
        }

    rows = await _rows_since(before)
    assert rows == [
        row("auth.passkey_added", resource_type="Passkey", resource_id=passkey.public_id),
        row("auth.sign_out"),
        row("auth.sign_in_failed", account=None),
        row("auth.sign_in.passkey"),
        row("auth.sign_out_everywhere"),
    ]


async def test_a_staff_passkey_never_signs_in_a_patient_nor_a_patient_s_a_staff_member(
    client: AsyncClient, settings: Settings
) -> None:
    staff_key, patient_key = SoftAuthenticator(), SoftAuthenticator()
    assert (
        await _staff_enroll(client, await staff_sign_up_path(settings.base_url), staff_key)
    ).status_code == 201
    client.cookies.clear()
    person = await make_person()
    await sign_in(client, person)
    assert (await add_passkey(client, patient_key)).status_code == 201
    client.cookies.clear()

    assert (await passkey_sign_in(client, staff_key)).status_code == 400
    assert (await _staff_sign_in(client, patient_key)).status_code == 400
    assert SESSION_COOKIE not in client.cookies
    assert STAFF_COOKIE not in client.cookies


async def test_a_patient_s_sign_in_challenge_does_not_serve_a_staff_sign_in(
    client: AsyncClient, settings: Settings
) -> None:
    staff_key = SoftAuthenticator()
    assert (
        await _staff_enroll(client, await staff_sign_up_path(settings.base_url), staff_key)
    ).status_code == 201
    client.cookies.clear()
    token = csrf_from((await client.get("/")).text)
    options = await client.post("/sign-in/passkey/options", headers={"X-CSRFToken": token}, json={})
    refused = await client.post(
        "/staff/sign-in",
        headers={"X-CSRFToken": token},
        json={"credential": staff_key.sign_in(options.json())},
    )
    assert refused.status_code == 400
    assert STAFF_COOKIE not in client.cookies


async def test_a_sign_in_challenge_expires_after_five_minutes(client: AsyncClient) -> None:
    person = await make_person()
    authenticator = SoftAuthenticator()
    await sign_in(client, person)
    assert (await add_passkey(client, authenticator)).status_code == 201
    client.cookies.clear()
    token = csrf_from((await client.get("/")).text)
    options = await client.post("/sign-in/passkey/options", headers={"X-CSRFToken": token}, json={})
    later = utcnow() + timedelta(minutes=5, seconds=1)
    set_clock(lambda: later)
    late = await client.post(
        "/sign-in/passkey",
        headers={"X-CSRFToken": token},
        json={"credential": authenticator.sign_in(options.json())},
    )
    assert late.status_code == 400
    assert SESSION_COOKIE not in client.cookies


async def test_a_disabled_staff_member_s_passkey_signs_nobody_in(
    client: AsyncClient, settings: Settings
) -> None:
    path = await staff_sign_up_path(settings.base_url, given="Dee", family="Disabled")
    authenticator = SoftAuthenticator()
    assert (await _staff_enroll(client, path, authenticator)).status_code == 201
    client.cookies.clear()
    staff = await _staff_named("Dee", "Disabled")
    await StaffUser.update({StaffUser.disabled_at: utcnow()}).where(StaffUser.id == staff.id)
    assert (await _staff_sign_in(client, authenticator)).status_code == 400
    assert STAFF_COOKIE not in client.cookies


async def test_a_staff_session_cookie_on_a_patient_page_is_nobody(
    client: AsyncClient, settings: Settings
) -> None:
    assert (
        await _staff_enroll(
            client, await staff_sign_up_path(settings.base_url), SoftAuthenticator()
        )
    ).status_code == 201
    staff_token = client.cookies.get(STAFF_COOKIE)
    assert staff_token
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, staff_token)
    assert (await client.get("/home", follow_redirects=False)).status_code == 303
