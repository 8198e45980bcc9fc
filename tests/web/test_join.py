"""Self-enrollment from a clinic poster: a match gets a code on the contact on file, a
non-match becomes a join request, and both see exactly the same answer."""

from __future__ import annotations

import re
from datetime import date

from httpx import AsyncClient, Response

from app.tables import AccessGrant, AuditEvent, JoinRequest, OutboxMessage, Patient
from tests.factories import (
    code_sent_to,
    make_location,
    make_patient,
    unique,
    with_contacts,
    years_ago,
)
from tests.web.conftest import csrf_from, staff_signed_in


async def _record(given: str = "José", family: str = "Núñez") -> Patient:
    patient = await make_patient(given=given, birth=date(1990, 7, 4))
    phone = f"+1555018{patient.id % 10000:04d}"
    await Patient.update({Patient.family_name: family, Patient.phone: phone}).where(
        Patient.id == patient.id
    )
    patient.phone, patient.family_name = phone, family
    return patient


async def _join(client: AsyncClient, code: str, **fields: str) -> Response:
    form = await client.get(f"/join/{code.lower()}")
    assert form.status_code == 200
    return await client.post(
        f"/join/{code}",
        data={**fields, "_csrf_token": csrf_from(form.text)},
        follow_redirects=False,
    )


async def test_a_matching_person_gets_a_code_and_enrolls(client: AsyncClient) -> None:
    code = (await make_location()).code
    patient = await _record()
    assert patient.phone
    answer = await _join(
        client,
        code,
        given_name="jose ",
        family_name="NUNEZ",
        birth_date="1990-07-04",
        contact=patient.phone.removeprefix("+1"),
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in/code/check?joining=1"
    sent = await code_sent_to(patient.phone)
    check = await client.get("/sign-in/code/check?joining=1")
    assert "matches our records" in check.text
    done = await client.post(
        "/sign-in/code/check",
        data={"code": sent, "_csrf_token": csrf_from(check.text)},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/welcome"
    assert await AccessGrant.exists().where(
        AccessGrant.patient == patient.id, AccessGrant.kind == "self"
    )
    home = await client.get("/home")
    assert home.status_code == 200
    assert "José" in home.text
    assert await AuditEvent.exists().where(
        AuditEvent.patient == patient.id, AuditEvent.action == "auth.sign_in.self_enrollment"
    )
    assert not await JoinRequest.exists().where(JoinRequest.birth_date == date(1990, 7, 4))


async def test_a_non_match_gets_the_same_answer_and_a_join_request(client: AsyncClient) -> None:
    code = (await make_location()).code
    patient = await _record(given="Ines", family=unique("Vega"))
    assert patient.phone
    matching = await _join(
        client,
        code,
        given_name="Ines",
        family_name=patient.family_name,
        birth_date="1990-07-04",
        contact=patient.phone,
    )
    client.cookies.clear()
    wrong_birthday = await _join(
        client,
        code,
        given_name="Ines",
        family_name=patient.family_name,
        birth_date="1990-07-05",
        contact=patient.phone,
    )
    assert (matching.status_code, matching.headers["location"]) == (
        wrong_birthday.status_code,
        wrong_birthday.headers["location"],
    )
    assert set(matching.cookies) == set(wrong_birthday.cookies)
    assert await OutboxMessage.count().where(OutboxMessage.recipient == patient.phone) == 1
    request = await JoinRequest.objects().where(JoinRequest.contact == patient.phone).first()
    assert request is not None
    assert request.birth_date == date(1990, 7, 5)
    # A code that matched nobody never works, whatever is typed.
    check = await client.get("/sign-in/code/check?joining=1")
    refused = await client.post(
        "/sign-in/code/check", data={"code": "123456", "_csrf_token": csrf_from(check.text)}
    )
    assert refused.status_code == 400
    # Asking again does not file a second request.
    await _join(
        client,
        code,
        given_name="Ines",
        family_name=patient.family_name,
        birth_date="1990-07-05",
        contact=patient.phone,
    )
    assert await JoinRequest.count().where(JoinRequest.contact == patient.phone) == 1


async def test_a_match_on_a_minor_becomes_a_join_request_with_the_same_answer(
    client: AsyncClient,
) -> None:
    code = (await make_location()).code
    birth = years_ago(15)
    teen = await make_patient(given="Teo", birth=birth)
    # The family phone: on the teenager's record and known to the whole family.
    phone = f"+1555017{teen.id % 10000:04d}"
    await with_contacts(teen, phone=phone, phone_is_own=True)
    stranger = await _join(
        client,
        code,
        given_name="Teo",
        family_name=unique("Nobody"),
        birth_date=birth.isoformat(),
        contact="+15559990123",
    )
    client.cookies.clear()
    matched = await _join(
        client,
        code,
        given_name="Teo",
        family_name=teen.family_name,
        birth_date=birth.isoformat(),
        contact=phone,
    )
    assert (matched.status_code, matched.headers["location"]) == (
        stranger.status_code,
        stranger.headers["location"],
    )
    assert set(matched.cookies) == set(stranger.cookies)
    assert not await OutboxMessage.exists().where(OutboxMessage.recipient == phone)
    assert await JoinRequest.exists().where(JoinRequest.contact == phone)
    check = await client.get("/sign-in/code/check?joining=1")
    refused = await client.post(
        "/sign-in/code/check", data={"code": "123456", "_csrf_token": csrf_from(check.text)}
    )
    assert refused.status_code == 400
    assert not await AccessGrant.exists().where(AccessGrant.patient == teen.id)


async def test_the_front_desk_sees_and_closes_join_requests(client: AsyncClient) -> None:
    code = (await make_location()).code
    family = unique("Stranger")
    await _join(
        client,
        code,
        given_name="Kim",
        family_name=family,
        birth_date="2001-02-03",
        contact="kim@mail.test",
    )
    await staff_signed_in(client, role="front_desk")
    listing = await client.get("/staff/join-requests")
    assert listing.status_code == 200
    assert family in listing.text
    assert "kim@mail.test" in listing.text
    public_id = re.search(
        re.escape(family) + r".*?/staff/join-requests/([^/]+)/close", listing.text, re.S
    )
    assert public_id is not None
    closed = await client.post(
        f"/staff/join-requests/{public_id.group(1)}/close",
        data={"outcome": "dismissed", "_csrf_token": csrf_from(listing.text)},
        follow_redirects=False,
    )
    assert closed.status_code == 303
    assert family not in (await client.get("/staff/join-requests")).text


async def test_a_clinician_does_not_see_join_requests(client: AsyncClient) -> None:
    await staff_signed_in(client, role="clinician")
    assert (await client.get("/staff/join-requests")).status_code == 403


async def test_the_form_explains_what_is_missing(client: AsyncClient) -> None:
    code = (await make_location()).code
    answer = await _join(client, code, given_name="", family_name="X", birth_date="", contact="?")
    assert answer.status_code == 400
    assert "Please enter your first name." in answer.text
    assert "Please enter your date of birth." in answer.text
    bad_contact = await _join(
        client, code, given_name="A", family_name="B", birth_date="2000-01-01", contact="12"
    )
    assert bad_contact.status_code == 400
    assert "mobile phone number or an email" in bad_contact.text
    assert (await client.get("/join/NOWHERE")).status_code == 404
