"""The live grants selector: one answer to "is this grant live, and what does it open?"."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from app.access.grants import Grant, PatientRef, live_grants
from app.clock import set_clock
from app.tables import AccessGrant
from tests.factories import grant, make_account, make_patient, make_person, years_ago

NOW = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)
TODAY = date(2027, 3, 10)


def _grant(*, born: date, relationship: str | None = "parent", **changes: object) -> Grant:
    base = Grant(
        id=1,
        public_id="g",
        account_id=1,
        account_name="Maria",
        patient=PatientRef(1, "p", "Lucas", "Diaz", None, born),
        kind="proxy",
        scope="full",
        relationship=relationship,
        granted_by_account=None,
        granted_by_staff=7,
        starts_at=NOW - timedelta(days=30),
        expires_at=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_revoked_not_yet_started_and_expired_grants_are_not_live() -> None:
    child = date(2020, 1, 1)
    assert _grant(born=child).is_live(NOW, TODAY)
    assert not _grant(born=child, revoked_at=NOW - timedelta(seconds=1)).is_live(NOW, TODAY)
    assert not _grant(born=child, starts_at=NOW + timedelta(seconds=1)).is_live(NOW, TODAY)
    assert not _grant(born=child, expires_at=NOW).is_live(NOW, TODAY)
    assert _grant(born=child, expires_at=NOW + timedelta(seconds=1)).is_live(NOW, TODAY)


def test_a_clinic_given_guardian_grant_ends_on_the_18th_birthday() -> None:
    eve, birthday = date(2009, 3, 11), date(2009, 3, 10)
    assert _grant(born=eve).is_live(NOW, TODAY)  # 18 tomorrow
    assert not _grant(born=birthday).is_live(NOW, TODAY)
    # Given by the adult patient, or to someone who is not a guardian: age does not end it.
    assert _grant(born=birthday, granted_by_account=5).is_live(NOW, TODAY)
    assert _grant(born=birthday, relationship="spouse").is_live(NOW, TODAY)


def test_a_guardian_s_view_narrows_at_12_and_confidential_items_stay_with_the_patient() -> None:
    seven, eleven_eve, twelve = date(2020, 1, 1), date(2015, 3, 11), date(2015, 3, 10)
    assert _grant(born=seven).areas(TODAY) == {
        "results",
        "appointments",
        "messages",
        "billing",
        "record",
    }
    assert "messages" in _grant(born=eleven_eve).areas(TODAY)
    teen = _grant(born=twelve)
    assert teen.areas(TODAY) == {"appointments", "billing", "results", "record"}
    assert teen.may_hear_of("results", False, TODAY)
    assert not teen.may_hear_of("messages", False, TODAY)
    assert not teen.may_hear_of("results", True, TODAY)
    assert not _grant(born=seven).may_hear_of("results", True, TODAY)
    own = _grant(born=twelve, kind="self", relationship=None)
    assert own.may_hear_of("messages", True, TODAY)
    # A scope narrower than the age rules stays as narrow.
    assert _grant(born=twelve, scope="billing").areas(TODAY) == {"billing"}


async def test_the_selector_reads_live_grants_by_account_or_by_record() -> None:
    parent = await make_person("Maria")
    child = await make_patient(given="Emma", birth=years_ago(7))
    grown = await make_patient(given="Ana", birth=years_ago(18, days=2))  # 18 two days ago
    gone = await make_patient(given="Old")
    await grant(parent.account, child, kind="proxy", relationship="parent")
    grown_grant = await grant(parent.account, grown, kind="proxy", relationship="parent")
    await AccessGrant.update({AccessGrant.starts_at: datetime.now(UTC) - timedelta(days=90)}).where(
        AccessGrant.id == grown_grant.id
    )  # given while Ana was 17, and not yet tidied away by housekeeping
    await grant(
        parent.account,
        gone,
        kind="proxy",
        relationship="child",
        revoked_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    mine = await live_grants(account_id=parent.account.id)
    assert [g.patient.first_name for g in mine] == ["Maria", "Emma"]  # own record first
    other = await make_account("Other")
    await grant(other, child, kind="proxy", relationship="guardian", scope="billing")
    on_child = await live_grants(patient_id=child.id, kind="proxy")
    assert {g.account_id for g in on_child} == {parent.account.id, other.id}
    assert await live_grants(patient_id=grown.id) == []
    assert await live_grants(patient_id=gone.id) == []
    # Two days earlier Ana was 17: the same grant was live.
    set_clock(lambda: datetime.now(UTC) - timedelta(days=3))
    assert [g.patient.id for g in await live_grants(patient_id=grown.id)] == [grown.id]
