"""A minor's own account: nobody but the teenager gets into it, old accounts included, and
the shared-contact date of birth step keeps its five tries under concurrent requests."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from httpx import AsyncClient, Response

from app.access import patient_context_resolve
from app.handlers.support import SESSION_COOKIE
from app.services.enrollment import account_for_patient
from app.services.self_access import self_grants_outside_age_rules
from app.tables import (
    AccessGrant,
    Account,
    AuditEvent,
    OutboxMessage,
    Patient,
    SignInCode,
    WebSession,
)
from tests.factories import (
    actor_for,
    code_sent_to,
    grant,
    link_sent_to,
    make_patient,
    make_person,
    make_report,
    phone_number,
    start_session,
    unique,
    with_contacts,
    years_ago,
)
from tests.web.conftest import csrf_from, sign_in, staff_signed_in


async def _ask_code(client: AsyncClient, contact: str) -> tuple[str, str | None]:
    # (tests share one database: forget earlier codes' count for this address)
    await SignInCode.update({SignInCode.ip: "10.9.9.9"}).where(SignInCode.ip == "127.0.0.1")
    token = csrf_from((await client.get("/sign-in/code")).text)
    await client.post("/sign-in/code", data={"contact": contact, "_csrf_token": token})
    sent = await OutboxMessage.exists().where(
        OutboxMessage.recipient == contact, OutboxMessage.kind == "sign_in_code"
    )
    return token, await code_sent_to(contact, kind="sign_in_code") if sent else None


async def _mark_phone_own(client: AsyncClient, teen: Patient) -> Response:
    url = f"/staff/patients/{teen.public_id}"
    token = csrf_from((await client.get(url)).text)
    return await client.post(
        f"{url}/own-contacts",
        data={"phone_is_own": "yes", "_csrf_token": token},
        follow_redirects=False,
    )


async def _phone_is_own(patient: Patient) -> bool:
    row = await Patient.select(Patient.phone_is_own).where(Patient.id == patient.id).first()
    return bool(row and row["phone_is_own"])


async def _session_for(client: AsyncClient, account_id: int) -> None:
    """What a passkey sign-in does: a plain session for the account, no age check."""
    client.cookies.set(SESSION_COOKIE, await start_session(account_id, reason="passkey"))


# -- Staff cannot mark a parent's phone as the teenager's own.


async def test_phone_on_parents_own_record_cannot_be_marked_teens_own(
    client: AsyncClient,
) -> None:
    """The family phone is on the parent's record; the guardian grant is on a second,
    caregiver account (by email). It is still the parent's phone."""
    family_phone = phone_number()
    teen = await make_patient(given="Tina", birth=years_ago(15))
    await with_contacts(teen, phone=family_phone)
    parent = await make_person("Paula", birth=date(1980, 1, 2))
    await with_contacts(parent.patient, phone=family_phone)
    caregiver = Account(display_name="Paula G", email=f"{unique('p')}@mail.test")
    await Account.insert(caregiver)
    await grant(caregiver, teen, kind="proxy", relationship="parent")

    await staff_signed_in(client)
    refused = await _mark_phone_own(client, teen)
    assert refused.status_code == 400
    assert "also on another adult" in refused.text
    assert not await _phone_is_own(teen)


async def test_phone_on_unenrolled_parent_record_cannot_be_marked_teens_own(
    client: AsyncClient,
) -> None:
    family_phone = phone_number()
    teen = await make_patient(given="Tomas", birth=years_ago(14))
    await with_contacts(teen, phone=family_phone)
    parent_record = await make_patient(given="Pedro")
    await with_contacts(parent_record, phone=family_phone)
    caregiver = Account(display_name="Pedro G", email=f"{unique('p')}@mail.test")
    await Account.insert(caregiver)
    await grant(caregiver, teen, kind="proxy", relationship="parent")

    await staff_signed_in(client)
    refused = await _mark_phone_own(client, teen)
    assert refused.status_code == 400
    assert not await _phone_is_own(teen)
    # Not even one code opens the teenager's own account to whoever holds the phone.
    await account_for_patient(teen.id, "Tomas")
    client.cookies.clear()
    _, code = await _ask_code(client, family_phone)
    assert code is None  # nobody to sign in with it


async def test_a_linked_record_of_the_guardian_counts_as_the_guardians_contact(
    client: AsyncClient,
) -> None:
    """A phone on any record the guardian's account is linked to (here a younger
    they help with) is the guardian's, even when that record is a minor's sibling-aged."""
    family_phone = phone_number()
    teen = await make_patient(given="Tia", birth=years_ago(16))
    await with_contacts(teen, phone=family_phone)
    parent = await make_person("Perla")
    await grant(parent.account, teen, kind="proxy", relationship="parent")
    sibling = await make_patient(given="Sol", birth=years_ago(9))
    await with_contacts(sibling, phone=family_phone)
    await grant(parent.account, sibling, kind="proxy", relationship="parent")

    await staff_signed_in(client)
    refused = await _mark_phone_own(client, teen)
    assert refused.status_code == 400
    assert "parent or guardian with access" in refused.text


async def test_accepted_guardian_invitation_contact_stays_the_guardians(
    client: AsyncClient,
) -> None:
    """Staff sent the guardian invitation to the family phone; the parent accepted it while
    signed in to their own account (their record has a work phone). The family phone stays
    the guardian's while the grant lasts: it cannot be marked as the teenager's own."""
    family_phone, work_phone = phone_number(), phone_number()
    teen = await make_patient(given="Tara", birth=years_ago(13))
    await with_contacts(teen, phone=family_phone)
    parent = await make_person("Pia")
    await with_contacts(parent.patient, phone=work_phone)

    await staff_signed_in(client)
    url = f"/staff/patients/{teen.public_id}"
    token = csrf_from((await client.get(url)).text)
    sent = await client.post(
        f"{url}/guardian",
        data={"contact": family_phone, "relationship": "parent", "checked": "yes"}
        | {"_csrf_token": token},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    link = await link_sent_to(family_phone, "/care/")
    assert (await _mark_phone_own(client, teen)).status_code == 400  # while open

    await sign_in(client, parent)
    page = await client.get(link)
    await client.post(f"{link}/code", data={"_csrf_token": csrf_from(page.text)})
    proof = await code_sent_to(family_phone, kind="contact_code")
    page = await client.get(link)
    accepted = await client.post(
        link,
        data={"name": "Pia", "code": proof, "_csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    assert await AccessGrant.exists().where(
        AccessGrant.account == parent.account.id, AccessGrant.patient == teen.id
    )

    refused = await _mark_phone_own(client, teen)
    assert refused.status_code == 400
    assert "parent or guardian with access" in refused.text
    assert not await _phone_is_own(teen)


# -- Accounts older code opened stop working.


async def test_child_own_account_opens_nothing_even_with_a_passkey_session(
    client: AsyncClient,
) -> None:
    child = await make_patient(given="Nina", birth=years_ago(7))
    await with_contacts(child, phone=phone_number())
    report = await make_report(child)
    account_id = await account_for_patient(child.id, "Nina")  # what older code allowed
    account = await Account.objects().where(Account.id == account_id).first()
    assert account is not None
    assert await patient_context_resolve(actor_for(account)) is None
    await _session_for(client, account_id)
    assert (await client.get(f"/results/{report.public_id}")).status_code == 403


async def test_housekeeping_revokes_a_childs_own_grant_and_ends_its_sessions() -> None:
    child = await make_patient(given="Nico", birth=years_ago(8))
    account_id = await account_for_patient(child.id, "Nico")
    await start_session(account_id, reason="passkey")
    assert await self_grants_outside_age_rules() >= 1
    row = await AccessGrant.select(AccessGrant.public_id, AccessGrant.revoked_reason).where(
        AccessGrant.patient == child.id
    )
    assert row[0]["revoked_reason"] == "age_rules"
    assert not await WebSession.exists().where(
        WebSession.account == account_id, WebSession.revoked_at.is_null()
    )
    assert await AuditEvent.exists().where(
        AuditEvent.action == "sharing.self_ended_by_age_rules",
        AuditEvent.resource_id == str(row[0]["public_id"]),
    )


async def test_teen_own_account_a_parent_opened_through_the_family_phone_is_revoked(
    client: AsyncClient,
) -> None:
    family_phone = phone_number()
    teen = await make_patient(given="Teo", birth=years_ago(15))
    await with_contacts(teen, phone=family_phone)  # the family's, not marked as the teen's
    secret = await make_report(teen, confidential=True)
    parent = await make_person("Paula")
    await with_contacts(parent.patient, phone=family_phone)
    await grant(parent.account, teen, kind="proxy", relationship="parent")
    account_id = await account_for_patient(teen.id, "Teo")  # the old poster flow
    await _session_for(client, account_id)
    assert (await client.get(f"/results/{secret.public_id}")).status_code == 200

    await self_grants_outside_age_rules()
    assert (await client.get(f"/results/{secret.public_id}")).status_code != 200
    client.cookies.clear()
    await _session_for(client, account_id)  # the passkey the parent registered then
    assert (await client.get(f"/results/{secret.public_id}")).status_code == 403


async def test_teen_own_account_carrying_a_guardians_phone_is_revoked() -> None:
    """The record's own phone is the teenager's, but the account was opened with the
    parent's phone (the guardian's account has it): the parent holds that account."""
    parent_phone = phone_number()
    teen = await make_patient(given="Ivo", birth=years_ago(14))
    await with_contacts(teen, phone=phone_number(), phone_is_own=True)
    parent = Account(display_name="Pat G", phone=parent_phone)
    await Account.insert(parent)
    await grant(parent, teen, kind="proxy", relationship="guardian")
    account_id = await account_for_patient(teen.id, "Ivo")
    await Account.update({Account.phone: parent_phone}).where(Account.id == account_id)
    await self_grants_outside_age_rules()
    assert not await AccessGrant.exists().where(
        AccessGrant.account == account_id, AccessGrant.revoked_at.is_null()
    )


async def test_housekeeping_keeps_own_accounts_the_rules_allow() -> None:
    teen = await make_patient(given="Ines", birth=years_ago(16))
    await with_contacts(teen, phone=phone_number(), phone_is_own=True)
    teen_account = await account_for_patient(teen.id, "Ines")
    adult = await make_person("Ada", birth=years_ago(18, days=1))
    await self_grants_outside_age_rules()
    live = await AccessGrant.select(AccessGrant.account).where(
        AccessGrant.account.is_in([teen_account, adult.account.id]),
        AccessGrant.revoked_at.is_null(),
    )
    assert {row["account"] for row in live} == {teen_account, adult.account.id}


async def test_migrating_revokes_minors_own_grants_outside_the_rules() -> None:
    from app.cli import _minors_own_grants_checked

    child = await make_patient(given="Mia", birth=years_ago(5))
    await account_for_patient(child.id, "Mia")
    await _minors_own_grants_checked()
    assert not await AccessGrant.exists().where(
        AccessGrant.patient == child.id, AccessGrant.revoked_at.is_null()
    )


# -- The shared-contact date of birth step.


async def _shared_pair(client: AsyncClient) -> tuple[str, str, date, date]:
    phone = phone_number()
    ana = await make_person("Ana", birth=date(1981, 4, 5))
    ben = await make_person("Ben", birth=date(1979, 8, 9))
    for person in (ana, ben):
        await with_contacts(person.patient, phone=phone)
    token, code = await _ask_code(client, phone)
    assert code is not None
    return token, code, ana.patient.birth_date, ben.patient.birth_date


async def _birth_date(client: AsyncClient, token: str, birth: date | str) -> Response:
    text = birth if isinstance(birth, str) else birth.isoformat()
    return await client.post(
        "/sign-in/code/check",
        data={"birth_date": text, "_csrf_token": token},
        follow_redirects=False,
    )


async def test_birth_date_before_the_code_is_refused(client: AsyncClient) -> None:
    token, code, ana_birth, _ = await _shared_pair(client)
    early = await client.post(
        "/sign-in/code/check",
        data={"birth_date": ana_birth.isoformat(), "code": code, "_csrf_token": token},
        follow_redirects=False,
    )
    assert early.status_code == 400
    assert SESSION_COOKIE not in early.cookies


async def test_wrong_codes_and_birth_dates_share_five_tries(client: AsyncClient) -> None:
    token, code, ana_birth, _ = await _shared_pair(client)
    for _ in range(4):
        await client.post("/sign-in/code/check", data={"code": "000000", "_csrf_token": token})
    await client.post("/sign-in/code/check", data={"code": code, "_csrf_token": token})
    assert (await _birth_date(client, token, "1990-01-01")).status_code == 400
    assert (await _birth_date(client, token, ana_birth)).status_code == 400


async def test_a_used_code_does_not_sign_in_the_other_person(client: AsyncClient) -> None:
    token, code, ana_birth, ben_birth = await _shared_pair(client)
    await client.post("/sign-in/code/check", data={"code": code, "_csrf_token": token})
    handle = client.cookies.get("portal_code") or ""
    assert (await _birth_date(client, token, ana_birth)).status_code == 303
    client.cookies.clear()
    client.cookies.set("portal_code", handle)
    token = csrf_from((await client.get("/sign-in/code")).text)
    assert (await _birth_date(client, token, ben_birth)).status_code == 400


async def test_birth_date_echo_is_escaped(client: AsyncClient) -> None:
    token, code, _, _ = await _shared_pair(client)
    await client.post("/sign-in/code/check", data={"code": code, "_csrf_token": token})
    response = await _birth_date(client, token, '"><script>alert(1)</script>')
    assert "<script>alert(1)" not in response.text


async def test_birth_date_sign_in_tells_the_accounts_other_contacts(client: AsyncClient) -> None:
    """Anyone sharing the phone who knows the date of birth gets in (it only prevents the
    wrong record by mistake), so the account's own email hears of it; the shared phone not."""
    phone = phone_number()
    ana = await make_person("Ana", birth=date(1981, 4, 5))
    ben = await make_person("Ben", birth=date(1979, 8, 9))
    ben_email = f"{unique('ben')}@mail.test"
    await with_contacts(ana.patient, phone=phone)
    await with_contacts(ben.patient, phone=phone, email=ben_email)
    token, code = await _ask_code(client, phone)
    await client.post("/sign-in/code/check", data={"code": code, "_csrf_token": token})
    assert (await _birth_date(client, token, ben.patient.birth_date)).status_code == 303
    notices = await OutboxMessage.select(OutboxMessage.recipient, OutboxMessage.body).where(
        OutboxMessage.kind == "shared_sign_in",
        OutboxMessage.recipient.is_in([phone, ben_email]),
    )
    assert [row["recipient"] for row in notices] == [ben_email]
    assert "Someone signed in" in notices[0]["body"]


async def test_the_birth_date_sign_in_notice_speaks_the_accounts_language(
    client: AsyncClient,
) -> None:
    phone, email = phone_number(), f"{unique('eva')}@mail.test"
    ana = await make_person("Ana", birth=date(1982, 4, 5))
    eva = await make_person("Eva", birth=date(1983, 8, 9))
    await Account.update({Account.locale: "es"}).where(Account.id == eva.account.id)
    await with_contacts(ana.patient, phone=phone)
    await with_contacts(eva.patient, phone=phone, email=email)
    token, code = await _ask_code(client, phone)
    await client.post("/sign-in/code/check", data={"code": code, "_csrf_token": token})
    assert (await _birth_date(client, token, eva.patient.birth_date)).status_code == 303
    notice = await OutboxMessage.select(OutboxMessage.body).where(
        OutboxMessage.kind == "shared_sign_in", OutboxMessage.recipient == email
    )
    assert notice
    assert "Alguien entró a su cuenta" in notice[0]["body"]


# -- Concurrent guesses (PostgreSQL runs them at once; SQLite one at a time).


async def test_concurrent_wrong_birth_dates_get_five_tries(client: AsyncClient) -> None:
    token, code, _, _ = await _shared_pair(client)
    await client.post("/sign-in/code/check", data={"code": code, "_csrf_token": token})
    guesses = [date(1990, 1, 1) + timedelta(days=n) for n in range(20)]
    responses = await asyncio.gather(*(_birth_date(client, token, g) for g in guesses))
    assert sum("did not match" in r.text for r in responses) <= 4
    assert all(r.status_code == 400 for r in responses)
    row = (
        await SignInCode.select(SignInCode.failed_attempts)
        .order_by(SignInCode.id, ascending=False)
        .first()
    )
    assert row == {"failed_attempts": 5}


async def test_concurrent_wrong_codes_get_five_tries(client: AsyncClient) -> None:
    phone = phone_number()
    solo = await make_person("Solo", birth=date(1970, 1, 1))
    await with_contacts(solo.patient, phone=phone)
    token, code = await _ask_code(client, phone)
    assert code is not None
    wrong = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 21)]
    responses = await asyncio.gather(
        *(
            client.post("/sign-in/code/check", data={"code": guess, "_csrf_token": token})
            for guess in wrong
        )
    )
    assert sum("That code is not right" in r.text for r in responses) <= 4
    # Five tries are gone: the right code no longer works.
    late = await client.post(
        "/sign-in/code/check", data={"code": code, "_csrf_token": token}, follow_redirects=False
    )
    assert late.status_code == 400


async def test_concurrent_right_birth_dates_start_one_session(client: AsyncClient) -> None:
    token, code, _, ben_birth = await _shared_pair(client)
    await client.post("/sign-in/code/check", data={"code": code, "_csrf_token": token})
    before = await WebSession.count()
    responses = await asyncio.gather(*(_birth_date(client, token, ben_birth) for _ in range(6)))
    assert sorted(r.status_code for r in responses) == [303] + [400] * 5
    assert await WebSession.count() == before + 1


async def test_concurrent_right_codes_start_one_session(client: AsyncClient) -> None:
    phone = phone_number()
    solo = await make_person("Solo", birth=date(1970, 1, 1))
    await with_contacts(solo.patient, phone=phone)
    token, code = await _ask_code(client, phone)
    before = await WebSession.count()
    responses = await asyncio.gather(
        *(
            client.post(
                "/sign-in/code/check",
                data={"code": code, "_csrf_token": token},
                follow_redirects=False,
            )
            for _ in range(6)
        )
    )
    assert sorted(r.status_code for r in responses) == [303] + [400] * 5
    assert await WebSession.count() == before + 1
