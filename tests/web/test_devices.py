"""People see where they are signed in and can end any of it."""

from __future__ import annotations

from httpx import AsyncClient

from app.tables import Passkey, Patient, WebSession
from tests.factories import (
    make_person,
    start_session,
)
from tests.web.conftest import csrf_from, flashed, sign_in


async def _other_device(person_account_id: int, passkey_id: int | None = None) -> str:
    await start_session(
        person_account_id,
        ip="10.0.0.9",
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1",
        passkey_id=passkey_id,
    )
    row = (
        await WebSession.select(WebSession.public_id)
        .where(WebSession.account == person_account_id)
        .order_by(WebSession.id, ascending=False)
        .first()
    )
    assert row is not None
    return str(row["public_id"])


async def test_devices_lists_each_session_and_signs_out_one(client: AsyncClient) -> None:
    person = await make_person()
    await sign_in(client, person)
    other = await _other_device(person.account.id)
    page = await client.get("/devices")
    assert "Safari · iPhone" in page.text
    assert "this device" in page.text
    response = await client.post(
        f"/devices/{other}/sign-out",
        data={"_csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "Safari · iPhone" not in (await client.get("/devices")).text


async def test_another_account_s_device_cannot_be_signed_out(client: AsyncClient) -> None:
    person, stranger = await make_person(), await make_person()
    theirs = await _other_device(stranger.account.id)
    await sign_in(client, person)
    token = csrf_from((await client.get("/devices")).text)
    assert (
        await client.post(f"/devices/{theirs}/sign-out", data={"_csrf_token": token})
    ).status_code == 404
    assert await WebSession.exists().where(
        WebSession.public_id == theirs, WebSession.revoked_at.is_null()
    )


async def test_sign_out_everywhere_ends_every_session(client: AsyncClient) -> None:
    person = await make_person()
    await sign_in(client, person)
    await _other_device(person.account.id)
    token = csrf_from((await client.get("/devices")).text)
    response = await client.post(
        "/sign-out/everywhere", data={"_csrf_token": token}, follow_redirects=False
    )
    assert response.headers["location"] == "/"
    assert flashed(response) == "signed_out"
    assert not await WebSession.exists().where(
        WebSession.account == person.account.id, WebSession.revoked_at.is_null()
    )
    assert (await client.get("/home", follow_redirects=False)).status_code == 303


async def test_removing_a_passkey_can_end_the_sessions_it_started(client: AsyncClient) -> None:
    person = await make_person()
    # Another way in (a phone for codes), so the only passkey may go.
    await Patient.update({Patient.phone: "+15550143434"}).where(Patient.id == person.patient.id)
    passkey = Passkey(
        account=person.account.id, credential_id="ZGV2aWNl", public_key="cGs", name="Phone"
    )
    await Passkey.insert(passkey)
    used_it = await _other_device(person.account.id, passkey_id=passkey.id)
    await sign_in(client, person)
    token = csrf_from((await client.get("/passkeys")).text)
    await client.post(
        f"/passkeys/{passkey.public_id}/remove", data={"_csrf_token": token, "end_sessions": "yes"}
    )
    assert await WebSession.exists().where(
        WebSession.public_id == used_it, WebSession.revoked_at.is_not_null()
    )
    assert (await client.get("/home")).status_code == 200  # this device did not use it


async def test_signing_out_after_the_session_expired_still_clears_the_cookie(
    client: AsyncClient,
) -> None:
    client.cookies.set("portal_session", "long-gone")
    token = csrf_from((await client.get("/")).text)
    response = await client.post("/sign-out", data={"_csrf_token": token}, follow_redirects=False)
    assert response.headers["location"] == "/"
    assert flashed(response) == "signed_out"
    assert response.headers["clear-site-data"] == '"cache"'
    assert 'portal_session=""' in response.headers["set-cookie"]
