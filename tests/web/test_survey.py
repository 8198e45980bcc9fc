"""The one-question survey after a task: shown after booking, at most once a month per
person (skipping counts), its answer a fact for the dashboard; and the portal's install to
the home screen, counted once per record."""

from __future__ import annotations

from datetime import timedelta

from httpx import AsyncClient

from app.clock import utcnow
from app.tables import Fact, SurveyAnswer
from tests.factories import make_person, make_visit
from tests.web.conftest import csrf_from, flashed, sign_in


async def _booked_page(client: AsyncClient, patient_id: int) -> str:
    from app.tables import Patient

    patient = await Patient.objects().where(Patient.id == patient_id).first()
    assert patient is not None
    visit = await make_visit(patient, starts_at=utcnow() + timedelta(days=5))
    # The visit's page right after booking: it carries the "Your visit is booked." notice.
    client.cookies.set("portal_notice", "visit_booked")
    page = await client.get(f"/visits/{visit.public_id}")
    client.cookies.delete("portal_notice")
    assert page.status_code == 200
    return page.text


async def test_after_booking_the_patient_is_asked_once_a_month_and_the_answer_counts(
    client: AsyncClient,
) -> None:
    person = await make_person()
    await sign_in(client, person)
    page = await _booked_page(client, person.patient.id)
    assert "How easy was that?" in page
    assert "recommend us" in page  # the first time, the quarterly question too
    # Each scale's ends are read with its question, before the numbers.
    assert '<fieldset class="scale" aria-describedby="ease-ends">' in page
    assert '<p class="muted small" id="ease-ends">1 is very hard, 5 is very easy.</p>' in page
    assert '<fieldset class="scale" aria-describedby="recommend-ends">' in page
    assert 'id="recommend-ends">0 is not at all likely' in page
    answered = await client.post(
        "/survey",
        data={
            "_csrf_token": csrf_from(page),
            "task": "booking",
            "ease": "4",
            "recommend": "9",
            "comment": "Quick   and clear.",
        },
    )
    assert answered.status_code == 303
    assert flashed(answered) == "survey_thanks"
    facts = await Fact.select(Fact.kind, Fact.value).where(
        Fact.patient == person.patient.id, Fact.kind.is_in(["survey_ease", "survey_recommend"])
    )
    assert sorted((row["kind"], row["value"]) for row in facts) == [
        ("survey_ease", 4.0),
        ("survey_recommend", 9.0),
    ]
    comment = await SurveyAnswer.select(SurveyAnswer.comment).where(
        SurveyAnswer.account == person.account.id, SurveyAnswer.question == "ease"
    )
    assert comment == [{"comment": "Quick and clear."}]

    # The next booking this month asks nothing, and a second answer is not kept.
    page = await _booked_page(client, person.patient.id)
    assert "How easy was that?" not in page
    await client.post(
        "/survey", data={"_csrf_token": csrf_from(page), "task": "booking", "ease": "1"}
    )
    assert await SurveyAnswer.count().where(SurveyAnswer.account == person.account.id) == 2


async def test_not_now_counts_as_asked_and_records_no_score(client: AsyncClient) -> None:
    person = await make_person()
    await sign_in(client, person)
    page = await _booked_page(client, person.patient.id)
    skipped = await client.post(
        "/survey", data={"_csrf_token": csrf_from(page), "task": "booking", "skip": "1"}
    )
    assert flashed(skipped) is None
    assert not await Fact.exists().where(
        Fact.patient == person.patient.id, Fact.kind == "survey_ease"
    )
    assert "How easy was that?" not in await _booked_page(client, person.patient.id)


async def test_a_score_off_the_scale_is_not_kept(client: AsyncClient) -> None:
    person = await make_person()
    await sign_in(client, person)
    page = await _booked_page(client, person.patient.id)
    await client.post(
        "/survey", data={"_csrf_token": csrf_from(page), "task": "booking", "ease": "9"}
    )
    assert await SurveyAnswer.count().where(SurveyAnswer.account == person.account.id) == 0


async def test_installing_the_portal_counts_once_per_record(client: AsyncClient) -> None:
    person = await make_person()
    await sign_in(client, person)
    page = await client.get("/more")
    assert 'data-installed="/installed"' in page.text
    for how in ("appinstalled", "standalone"):
        answer = await client.post(
            "/installed", data={"how": how}, headers={"X-CSRFToken": csrf_from(page.text)}
        )
        assert answer.status_code == 204
    assert (
        await Fact.count().where(Fact.patient == person.patient.id, Fact.kind == "app_installed")
        == 1
    )
