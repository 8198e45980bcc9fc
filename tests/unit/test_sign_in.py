"""Sign-in codes: one use, ten minutes, five tries, limited, and silent about who exists."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from app.clock import set_clock
from app.notices import send_caregiver_invite_code
from app.services.sessions import token_hash
from app.services.sign_in import (
    CONTACT_DAY_LIMIT,
    CONTACT_GUESS_BUDGET,
    CONTACT_LIMIT,
    IP_LIMIT,
    MAX_CODE_ATTEMPTS,
    CodeError,
    CodeTarget,
    _mac,
    code_choose,
    code_confirm,
    code_issue,
    code_request,
    code_verify,
    normalise_contact,
)
from app.tables import OutboxMessage, SignInCode, WebSession
from tests.factories import (
    code_sent_to,
    grant,
    make_person,
    make_reachable_person,
    unique,
    with_contacts,
    years_ago,
)

SECRET = "test-secret"


async def _ask(contact: str, ip: str = "10.1.1.1") -> str:
    return await code_request(contact=contact, secret=SECRET, ip=ip, user_agent="t")


async def _check(handle: str, code: str) -> str | None:
    return await code_verify(
        handle=handle,
        code=code,
        secret=SECRET,
        lifetime=timedelta(hours=1),
        ip="10.1.1.1",
        user_agent="t",
    )


def test_contacts_are_understood_as_people_type_them() -> None:
    assert normalise_contact("(555) 010-1234") == ("sms", "+15550101234")
    assert normalise_contact("+44 20 7946 0958") == ("sms", "+442079460958")
    assert normalise_contact(" Maria@Example.com ") == ("email", "maria@example.com")
    assert normalise_contact("maria") is None
    assert normalise_contact("12345") is None


async def test_a_code_to_the_phone_on_file_signs_in_once() -> None:
    _, phone, _ = await make_reachable_person()
    handle = await _ask(phone.replace("+1", ""))
    code = await code_sent_to(phone)
    assert await _check(handle, code)
    with pytest.raises(CodeError) as again:
        await _check(handle, code)
    assert again.value.reason == "expired"


async def test_an_unknown_contact_gets_the_same_answer_and_no_message() -> None:
    before = await OutboxMessage.count()
    handle = await _ask("+15559990000")
    assert handle
    assert await OutboxMessage.count() == before
    with pytest.raises(CodeError) as wrong:
        await _check(handle, "123456")
    assert wrong.value.reason == "wrong"


async def test_five_wrong_codes_end_it_even_for_the_right_one_after() -> None:
    _, phone, _ = await make_reachable_person()
    handle = await _ask(phone)
    code = await code_sent_to(phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(MAX_CODE_ATTEMPTS - 1):
        with pytest.raises(CodeError, match="wrong"):
            await _check(handle, wrong)
    with pytest.raises(CodeError, match="expired"):
        await _check(handle, wrong)
    with pytest.raises(CodeError, match="expired"):
        await _check(handle, code)


async def test_a_code_expires_after_ten_minutes() -> None:
    _, phone, _ = await make_reachable_person()
    handle = await _ask(phone)
    code = await code_sent_to(phone)
    later = datetime.now(UTC) + timedelta(minutes=10, seconds=1)
    set_clock(lambda: later)
    with pytest.raises(CodeError, match="expired"):
        await _check(handle, code)


async def test_codes_for_one_contact_are_limited() -> None:
    _, phone, _ = await make_reachable_person()
    for _ in range(CONTACT_LIMIT):
        await _ask(phone, ip=unique("10.9."))
    with pytest.raises(CodeError, match="limit"):
        await _ask(phone, ip=unique("10.9."))
    # The limit is the same for a contact nobody has, so it reveals nothing either.
    for _ in range(CONTACT_LIMIT):
        await _ask("+15559990001", ip=unique("10.8."))
    with pytest.raises(CodeError, match="limit"):
        await _ask("+15559990001", ip=unique("10.8."))


async def _account_of(token: str | None) -> int | None:
    assert token is not None
    row = (
        await WebSession.select(WebSession.account)
        .where(WebSession.token_hash == token_hash(token))
        .first()
    )
    return row["account"] if row else None


async def _choose(handle: str, birth: date) -> str:
    return await code_choose(
        handle=handle,
        birth_date=birth,
        secret=SECRET,
        lifetime=timedelta(hours=1),
        ip="10.1.1.1",
        user_agent="t",
    )


async def test_a_phone_two_people_share_asks_whose_birth_date_and_never_picks() -> None:
    first, phone, _ = await make_reachable_person()
    spouse = await make_person("Sam", birth=date(1979, 2, 3))
    await with_contacts(spouse.patient, phone=phone)
    handle = await _ask(phone)
    # The right code alone signs nobody in: the date of birth says who.
    assert await _check(handle, await code_sent_to(phone)) is None
    with pytest.raises(CodeError, match="mismatch"):
        await _choose(handle, date(1979, 2, 4))
    token = await _choose(handle, spouse.patient.birth_date)
    assert await _account_of(token) == spouse.account.id != first.account.id
    with pytest.raises(CodeError, match="expired"):
        await _choose(handle, spouse.patient.birth_date)


async def test_the_birth_date_step_needs_the_right_code_first() -> None:
    _, phone, _ = await make_reachable_person()
    spouse = await make_person("Sam", birth=date(1979, 2, 3))
    await with_contacts(spouse.patient, phone=phone)
    handle = await _ask(phone)
    with pytest.raises(CodeError, match="expired"):
        await _choose(handle, spouse.patient.birth_date)


async def test_a_family_phone_does_not_sign_into_a_teenagers_own_account() -> None:
    teen = await make_person("Teo", birth=years_ago(15))
    phone = "+15550" + unique("")[-6:]
    await with_contacts(teen.patient, phone=phone)  # on the record, not marked as his
    before = await OutboxMessage.count()
    handle = await _ask(phone)
    assert await OutboxMessage.count() == before
    with pytest.raises(CodeError, match="wrong"):
        await _check(handle, "123456")
    # The parent with the same phone gets their own account, never the teenager's.
    parent = await make_person("Paula")
    await with_contacts(parent.patient, phone=phone)
    await grant(parent.account, teen.patient, kind="proxy", relationship="parent")
    handle = await _ask(phone, ip="10.1.1.2")
    token = await _check(handle, await code_sent_to(phone))
    assert await _account_of(token) == parent.account.id
    # Marked as his own, but the parent uses it too: still not his account's way in.
    await with_contacts(teen.patient, phone=phone, phone_is_own=True)
    handle = await _ask(phone, ip="10.1.1.3")
    token = await _check(handle, await code_sent_to(phone))
    assert await _account_of(token) == parent.account.id


async def test_a_teenagers_own_phone_signs_them_in_and_a_childs_never_does() -> None:
    teen = await make_person("Teo", birth=years_ago(15))
    phone = "+15550" + unique("")[-6:]
    await with_contacts(teen.patient, phone=phone, phone_is_own=True)
    token = await _check(await _ask(phone), await code_sent_to(phone))
    assert await _account_of(token) == teen.account.id
    child = await make_person("Nina", birth=years_ago(8))
    child_phone = "+15550" + unique("")[-6:]
    await with_contacts(child.patient, phone=child_phone, phone_is_own=True)
    before = await OutboxMessage.count()
    await _ask(child_phone)
    assert await OutboxMessage.count() == before


async def _paused_notices(phone: str) -> int:
    return await OutboxMessage.count().where(
        OutboxMessage.recipient == phone, OutboxMessage.kind == "codes_paused"
    )


async def test_a_contact_gets_ten_codes_a_day_then_codes_pause_and_the_person_is_told() -> None:
    _, phone, _ = await make_reachable_person()
    start = datetime.now(UTC)
    for number in range(CONTACT_DAY_LIMIT):
        # Three per quarter hour: spread out, as a patient attacker would.
        set_clock(lambda n=number: start + timedelta(minutes=16 * (n // CONTACT_LIMIT)))
        await _ask(phone, ip=unique("10.7."))
    assert await _paused_notices(phone) == 1
    notice = (
        await OutboxMessage.select(OutboxMessage.body)
        .where(OutboxMessage.kind == "codes_paused", OutboxMessage.recipient == phone)
        .first()
    )
    assert notice is not None
    assert "call your clinic" in notice["body"]
    set_clock(lambda: start + timedelta(hours=3))
    with pytest.raises(CodeError, match="locked"):
        await _ask(phone, ip=unique("10.7."))
    assert await _paused_notices(phone) == 1  # told once, not at every refusal
    set_clock(lambda: start + timedelta(days=1, hours=2))
    assert await _ask(phone, ip=unique("10.7."))


async def test_wrong_codes_over_many_codes_share_one_daily_budget() -> None:
    _, phone, _ = await make_reachable_person()
    wrong_answers = []
    ip = unique("10.5.")
    for _ in range(2):
        handle = await _ask(phone, ip=ip)
        code = await code_sent_to(phone)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for _ in range(MAX_CODE_ATTEMPTS - 1):  # four per code: each code stays open
            with pytest.raises(CodeError, match="wrong"):
                await _check(handle, wrong)
            wrong_answers.append(wrong)
    handle = await _ask(phone, ip=ip)
    code = await code_sent_to(phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(CodeError, match="wrong"):
        await _check(handle, wrong)
    assert await _paused_notices(phone) == 0
    with pytest.raises(CodeError, match="locked"):  # the tenth wrong code today
        await _check(handle, wrong)
    assert await _paused_notices(phone) == 1
    with pytest.raises(CodeError, match="locked"):  # even the right one, until tomorrow
        await _check(handle, code)
    with pytest.raises(CodeError, match="locked"):
        await _ask(phone, ip=unique("10.6."))
    assert len(wrong_answers) + 2 == CONTACT_GUESS_BUDGET


async def test_addresses_in_one_ipv6_64_share_one_limit() -> None:
    for number in range(IP_LIMIT):
        await _ask(f"+1555098{number:04d}", ip=f"2001:db8:1:2::{number + 1:x}")
    with pytest.raises(CodeError, match="limit"):
        await _ask("+15550989999", ip="2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert await _ask("+15550989999", ip="2001:db8:1:3::1")  # the next /64 is someone else


async def _contact_proof(contact: str, ip: str) -> tuple[str, str]:
    """A code that proves `contact` is held (as a caregiver's invitation asks), sent as the
    invitation sends it: its handle, and the code read from what was sent."""

    async def nobody() -> CodeTarget:
        return CodeTarget()

    async def send(code: str) -> None:
        await send_caregiver_invite_code(to=("email", contact), code=code)

    handle = await code_issue(
        channel="email",
        value=contact,
        find=nobody,
        secret=SECRET,
        ip=ip,
        user_agent="t",
        proof_of_contact=send,
    )
    rows = await OutboxMessage.select(OutboxMessage.body).where(OutboxMessage.recipient == contact)
    found = re.search(r"(\d{6})", rows[-1]["body"])
    assert found is not None
    return handle, found.group(1)


async def test_racing_wrong_contact_proofs_get_five_tries_and_one_right_one_wins() -> None:
    """A caregiver's proof-of-contact code: concurrent guesses are counted one by one (on
    PostgreSQL they really run at once), and of two right answers only one uses it."""
    import asyncio

    from app.services.sign_in import code_confirm

    async def issue(contact: str) -> tuple[str, str]:
        return await _contact_proof(contact, ip=f"10.7.{unique('')[-2:]}.1")

    async def confirm(handle: str, code: str, contact: str) -> str:
        try:
            await code_confirm(
                handle=handle,
                code=code,
                secret=SECRET,
                contact=contact,
                ip="10.7.0.1",
                user_agent="t",
            )
        except CodeError as error:
            return error.reason
        return "ok"

    contact = f"{unique('proof')}@mail.test"
    handle, code = await issue(contact)
    wrong = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 21)]
    outcomes = await asyncio.gather(*(confirm(handle, guess, contact) for guess in wrong))
    assert outcomes.count("wrong") == MAX_CODE_ATTEMPTS - 1
    assert await confirm(handle, code, contact) == "expired"

    contact = f"{unique('proof')}@mail.test"
    handle, code = await issue(contact)
    outcomes = await asyncio.gather(*(confirm(handle, code, contact) for _ in range(6)))
    assert sorted(outcomes) == ["expired"] * 5 + ["ok"]


def test_a_phone_typed_in_other_scripts_digits_is_one_contact() -> None:
    """Fullwidth or Arabic-Indic digits name the same phone as ASCII ones: one contact,
    so one set of limits and one invitation."""
    assert normalise_contact("＋１ ２０２ ５５５ ０１４３") == ("sms", "+12025550143")
    assert normalise_contact("٢٠٢٥٥٥٠١٤٣") == ("sms", "+12025550143")


async def test_codes_asked_for_at_once_stay_within_the_contact_limit() -> None:
    """On PostgreSQL the requests really run at once: each must count the others' codes."""
    _, phone, _ = await make_reachable_person()
    ips = [f"10.44.{n}.1" for n in range(9)]
    outcomes = await asyncio.gather(*(_try_ask(phone, ip) for ip in ips))
    assert outcomes.count("ok") == CONTACT_LIMIT
    texts = await OutboxMessage.count().where(
        OutboxMessage.recipient == phone, OutboxMessage.kind == "sign_in_code"
    )
    assert texts == CONTACT_LIMIT


async def _try_ask(contact: str, ip: str) -> str:
    try:
        await _ask(contact, ip)
    except CodeError as error:
        return error.reason
    return "ok"


async def test_wrong_codes_sent_at_once_stay_within_the_day_budget() -> None:
    """Guesses on the contact's several codes at once are checked against the day's budget
    one after another, so they stop at the budget, not at five per code."""
    _, phone, _ = await make_reachable_person()
    handles = [await _ask(phone, ip=f"10.45.{n}.1") for n in range(CONTACT_LIMIT)]
    code = await code_sent_to(phone)
    assert CONTACT_LIMIT * MAX_CODE_ATTEMPTS > CONTACT_GUESS_BUDGET

    async def guess(handle: str, n: int) -> str:
        try:
            await _check(handle, f"{(int(code) + n) % 1_000_000:06d}")
        except CodeError as error:
            return error.reason
        return "ok"

    tries = [(handle, n) for handle in handles for n in range(1, MAX_CODE_ATTEMPTS + 1)]
    await asyncio.gather(*(guess(handle, n) for handle, n in tries))
    rows = await SignInCode.select(SignInCode.failed_attempts).where(
        SignInCode.contact_hash == _mac(SECRET, phone)
    )
    assert sum(row["failed_attempts"] for row in rows) == CONTACT_GUESS_BUDGET


async def test_contact_proof_codes_keep_to_the_contact_s_daily_guess_budget() -> None:
    """A caregiver's code to prove the invited contact pauses with the day's wrong guesses,
    as a sign-in code does: three codes a quarter hour give no fifteen guesses."""

    contact = f"{unique('proof')}@mail.test"
    ip = unique("10.9.")
    issued = [await _contact_proof(contact, ip=ip) for _ in range(CONTACT_LIMIT)]

    async def confirm(handle: str, code: str) -> str:
        try:
            await code_confirm(
                handle=handle, code=code, secret=SECRET, contact=contact, ip=ip, user_agent="t"
            )
        except CodeError as error:
            return error.reason
        return "ok"

    def wrong(code: str, n: int) -> str:
        return f"{(int(code) + n) % 1_000_000:06d}"

    for handle, code in issued[:2]:
        for n in range(1, MAX_CODE_ATTEMPTS + 1):
            await confirm(handle, wrong(code, n))
    handle, code = issued[2]
    assert await confirm(handle, wrong(code, 1)) == "locked"
    assert await confirm(handle, code) == "locked"  # even the right one, until tomorrow


def test_a_contact_longer_than_any_kept_is_no_contact() -> None:
    assert normalise_contact("a" * 190 + "@example.org") is None
    assert normalise_contact("ana@example.org") == ("email", "ana@example.org")
