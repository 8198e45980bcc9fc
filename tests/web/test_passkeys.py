"""Passkey endpoints refuse what a real authenticator would never send, and say nothing more.

The happy path (a real credential from Chromium's virtual authenticator) is in e2e/."""

from __future__ import annotations

import json

from httpx import AsyncClient
from webauthn.helpers import bytes_to_base64url

from app.settings import Settings
from app.tables import AuditEvent, Passkey, Patient, WebAuthnChallenge
from app.web.ceremonies import CHALLENGE_COOKIE
from tests.authenticator import SoftAuthenticator
from tests.factories import make_person, staff_sign_up_path, unique
from tests.web.conftest import add_passkey, csrf_from, flashed, passkey_sign_in, sign_in


async def _token(client: AsyncClient) -> str:
    return csrf_from((await client.get("/")).text)


async def test_sign_in_options_name_no_account_and_store_a_single_use_challenge(
    client: AsyncClient,
) -> None:
    token = await _token(client)
    response = await client.post(
        "/sign-in/passkey/options", headers={"X-CSRFToken": token}, json={}
    )
    assert response.status_code == 200
    options = response.json()
    assert options["rpId"] == "localhost"
    assert "allowCredentials" not in options or options["allowCredentials"] == []
    assert len(options["challenge"]) >= 43  # 32 random bytes, base64url
    assert client.cookies.get(CHALLENGE_COOKIE)
    assert await WebAuthnChallenge.exists().where(WebAuthnChallenge.purpose == "authenticate")


async def test_an_unknown_credential_is_refused_audited_and_burns_the_challenge(
    client: AsyncClient,
) -> None:
    token = await _token(client)
    await client.post("/sign-in/passkey/options", headers={"X-CSRFToken": token}, json={})
    forged = {
        "credential": {
            "id": "bm90LWEtcmVhbC1rZXk",
            "rawId": "bm90LWEtcmVhbC1rZXk",
            "type": "public-key",
            "response": {},
        }
    }
    first = await client.post("/sign-in/passkey", headers={"X-CSRFToken": token}, json=forged)
    assert first.status_code == 400
    assert "could not sign you in" in first.json()["error"]
    assert "portal_session" not in first.cookies
    assert await AuditEvent.exists().where(AuditEvent.action == "auth.sign_in_failed")
    again = await client.post("/sign-in/passkey", headers={"X-CSRFToken": token}, json=forged)
    assert again.status_code == 400
    assert again.json() == first.json()  # the same answer, whatever went wrong


async def test_registration_options_exclude_the_account_s_existing_passkeys(
    client: AsyncClient,
) -> None:
    person = await make_person()
    await Passkey.insert(
        Passkey(
            account=person.account.id, credential_id="ZXhpc3Rpbmc", public_key="cGs", name="Phone"
        )
    )
    await sign_in(client, person)
    token = csrf_from((await client.get("/more")).text)
    options = (
        await client.post("/passkeys/options", headers={"X-CSRFToken": token}, json={})
    ).json()
    assert [c["id"] for c in options["excludeCredentials"]] == ["ZXhpc3Rpbmc"]
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["user"]["name"] == person.account.display_name


async def test_a_garbled_registration_is_refused(client: AsyncClient) -> None:
    person = await make_person()
    await sign_in(client, person)
    token = csrf_from((await client.get("/more")).text)
    await client.post("/passkeys/options", headers={"X-CSRFToken": token}, json={})
    response = await client.post(
        "/passkeys", headers={"X-CSRFToken": token}, content=json.dumps({"credential": {"id": "x"}})
    )
    assert response.status_code == 400
    assert not await Passkey.exists().where(Passkey.account == person.account.id)


async def test_a_person_removes_their_own_passkey_but_not_someone_else_s(
    client: AsyncClient,
) -> None:
    person, other = await make_person(), await make_person()
    # A phone on file: a code can still reach them once the only passkey is gone.
    await Patient.update({Patient.phone: "+15550142424"}).where(Patient.id == person.patient.id)
    mine = Passkey(
        account=person.account.id, credential_id="bWluZQ", public_key="cGs", name="Phone"
    )
    theirs = Passkey(
        account=other.account.id, credential_id="dGhlaXJz", public_key="cGs", name="Tablet"
    )
    await Passkey.insert(mine, theirs)
    await sign_in(client, person)
    page = await client.get("/passkeys")
    assert "Phone" in page.text
    assert "Tablet" not in page.text
    token = csrf_from(page.text)
    refused = await client.post(f"/passkeys/{theirs.public_id}/remove", data={"_csrf_token": token})
    assert refused.status_code == 404
    removed = await client.post(
        f"/passkeys/{mine.public_id}/remove", data={"_csrf_token": token}, follow_redirects=False
    )
    assert removed.headers["location"] == "/passkeys"
    assert flashed(removed) == "passkey_removed"
    assert not await Passkey.exists().where(Passkey.public_id == mine.public_id)
    assert await Passkey.exists().where(Passkey.public_id == theirs.public_id)
    assert await AuditEvent.exists().where(
        AuditEvent.action == "auth.passkey_removed", AuditEvent.resource_id == mine.public_id
    )


async def test_passkey_pages_need_a_signed_in_account(client: AsyncClient) -> None:
    assert (await client.get("/passkeys", follow_redirects=False)).status_code == 303


async def test_a_passkey_can_be_renamed_but_not_emptied(client: AsyncClient) -> None:
    person = await make_person()
    await sign_in(client, person)
    passkey = Passkey(
        account=person.account.id, credential_id=unique("cred"), public_key="k", name="Chrome"
    )
    await Passkey.insert(passkey)
    page = await client.get("/passkeys")
    token = csrf_from(page.text)
    renamed = await client.post(
        f"/passkeys/{passkey.public_id}/rename",
        data={"name": "  Work   laptop ", "_csrf_token": token},
        follow_redirects=False,
    )
    assert renamed.headers["location"] == "/passkeys"
    assert flashed(renamed) == "passkey_renamed"
    stored = await Passkey.select(Passkey.name).where(Passkey.id == passkey.id).first()
    assert stored == {"name": "Work laptop"}
    empty = await client.post(
        f"/passkeys/{passkey.public_id}/rename",
        data={"name": "   ", "_csrf_token": token},
        follow_redirects=False,
    )
    assert empty.headers["location"] == "/passkeys"
    assert flashed(empty) == "passkey_unnamed"
    assert await AuditEvent.exists().where(AuditEvent.action == "auth.passkey_renamed")


async def test_the_last_passkey_stays_when_no_code_could_reach_the_person(
    client: AsyncClient,
) -> None:
    person = await make_person()  # no phone or email on the record
    await sign_in(client, person)
    passkey = Passkey(
        account=person.account.id, credential_id=unique("cred"), public_key="k", name="Phone"
    )
    await Passkey.insert(passkey)
    token = csrf_from((await client.get("/passkeys")).text)
    refused = await client.post(
        f"/passkeys/{passkey.public_id}/remove",
        data={"_csrf_token": token},
        follow_redirects=False,
    )
    assert refused.headers["location"] == "/passkeys"
    assert flashed(refused) == "passkey_last"
    assert await Passkey.exists().where(Passkey.id == passkey.id)
    notice = await client.get("/passkeys")
    assert "cannot be removed" in notice.text

    await Patient.update({Patient.email: f"{unique('p')}@mail.test"}).where(
        Patient.id == person.patient.id
    )
    removed = await client.post(
        f"/passkeys/{passkey.public_id}/remove",
        data={"_csrf_token": token},
        follow_redirects=False,
    )
    assert removed.headers["location"] == "/passkeys"
    assert flashed(removed) == "passkey_removed"
    assert not await Passkey.exists().where(Passkey.id == passkey.id)


async def test_the_code_page_offers_passkeys_in_autofill(client: AsyncClient) -> None:
    page = await client.get("/sign-in/code")
    assert 'autocomplete="username webauthn"' in page.text
    assert "data-passkey-autofill" in page.text


UNVERIFIED = "Your device did not check that it is you."


async def test_a_device_that_did_not_check_it_was_the_person_cannot_add_a_passkey(
    client: AsyncClient,
) -> None:
    person = await make_person()
    await sign_in(client, person)
    refused = await add_passkey(client, SoftAuthenticator(user_verified=False))
    assert refused.status_code == 400
    assert UNVERIFIED in refused.json()["error"]
    assert "security key" in refused.json()["error"]
    assert not await Passkey.exists().where(Passkey.account == person.account.id)
    assert (await add_passkey(client, SoftAuthenticator())).status_code == 201


async def test_a_sign_in_the_device_did_not_verify_is_refused_and_explained(
    client: AsyncClient,
) -> None:
    person = await make_person()
    await sign_in(client, person)
    authenticator = SoftAuthenticator()
    assert (await add_passkey(client, authenticator)).status_code == 201
    client.cookies.clear()

    authenticator.user_verified = False  # touched, but no PIN, fingerprint or face
    refused = await passkey_sign_in(client, authenticator)
    assert refused.status_code == 400
    assert UNVERIFIED in refused.json()["error"]
    assert "portal_session" not in refused.cookies
    assert await AuditEvent.exists().where(AuditEvent.action == "auth.sign_in_failed")

    authenticator.user_verified = True
    signed_in = await passkey_sign_in(client, authenticator)
    assert signed_in.status_code == 200
    assert signed_in.json() == {"redirect": "/home"}


async def test_a_passkey_already_registered_is_refused_with_a_clear_answer(
    client: AsyncClient, settings: Settings
) -> None:
    person, other = await make_person(), await make_person()
    authenticator = SoftAuthenticator()
    await sign_in(client, person)
    assert (await add_passkey(client, authenticator)).status_code == 201
    for account_holder in (person, other):  # the same account, or someone else's
        client.cookies.clear()
        await sign_in(client, account_holder)
        again = await add_passkey(client, authenticator)
        assert again.status_code == 400
        assert "already saved" in again.json()["error"]
    assert (
        await Passkey.count().where(
            Passkey.credential_id == bytes_to_base64url(authenticator.credential_id)
        )
        == 1
    )

    # Nor can a staff sign-up link take a patient's passkey.
    path = await staff_sign_up_path(settings.base_url)
    client.cookies.clear()
    token = await _token(client)
    options = await client.post(f"{path}/options", headers={"X-CSRFToken": token}, json={})
    staff_try = await client.post(
        path,
        headers={"X-CSRFToken": token},
        json={"credential": authenticator.register(options.json())},
    )
    assert staff_try.status_code == 400
    assert "already saved" in staff_try.json()["error"]
    assert (await client.get(path)).status_code == 200  # the link still works
