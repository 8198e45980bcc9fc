"""Results are scoped to the patient, held until released, and confidential for proxies."""

from __future__ import annotations

from app.services.results import results_list
from app.tables import AuditEvent
from tests.factories import grant, make_patient, make_person, make_report, years_ago


async def test_a_patient_sees_only_their_own_released_results_newest_first() -> None:
    person = await make_person()
    other = await make_person()
    await make_report(person.patient, name="Older panel", days_ago=30)
    await make_report(person.patient, name="Newer panel", days_ago=2)
    await make_report(person.patient, name="Held panel", days_ago=1, released=False)
    await make_report(other.patient, name="Someone else's panel", days_ago=1)
    names = [report.name for report in await results_list(await person.context())]
    assert names == ["Newer panel", "Older panel"]


async def test_confidential_results_are_hidden_from_a_guardian_but_not_the_patient() -> None:
    teen = await make_person("Lucas", birth=years_ago(15))
    parent = await make_person("Maria")
    await grant(parent.account, teen.patient, kind="proxy", relationship="parent")
    await make_report(teen.patient, name="Routine panel")
    await make_report(teen.patient, name="Confidential test", confidential=True)
    own = [r.name for r in await results_list(await teen.context())]
    guardian = [r.name for r in await results_list(await parent.context(teen.patient.id))]
    assert "Confidential test" in own
    assert guardian == ["Routine panel"]


async def test_every_results_view_is_audited_for_the_patient_viewed() -> None:
    parent = await make_person()
    child = await make_patient(given="Emma", birth=years_ago(7))
    await grant(parent.account, child, kind="proxy", relationship="parent")
    await results_list(await parent.context(child.id))
    rows = await AuditEvent.select(AuditEvent.action, AuditEvent.patient).where(
        AuditEvent.actor_account == parent.account.id
    )
    assert rows == [{"action": "results.list", "patient": child.id}]


async def test_abnormal_values_are_counted_per_report() -> None:
    person = await make_person()
    await make_report(person.patient, value=140)
    [report] = await results_list(await person.context())
    assert report.abnormal_count == 1
    assert report.observations[0].interpretation == "H"


async def test_the_home_headlines_follow_the_same_rules_as_the_list() -> None:
    from app.services.results import results_latest

    teen = await make_person("Lucas", birth=years_ago(15))
    parent = await make_person("Maria")
    await grant(parent.account, teen.patient, kind="proxy", relationship="parent")
    await make_report(teen.patient, name="Routine panel", days_ago=5, value=140)
    await make_report(teen.patient, name="Confidential test", days_ago=2, confidential=True)
    await make_report(teen.patient, name="Held panel", days_ago=1, released=False)
    own = await results_latest(await teen.context(), limit=3)
    guardian = await results_latest(await parent.context(teen.patient.id), limit=3)
    assert [r.name for r in own] == ["Confidential test", "Routine panel"]
    assert [(r.name, r.abnormal_count, r.is_new) for r in guardian] == [("Routine panel", 1, True)]
