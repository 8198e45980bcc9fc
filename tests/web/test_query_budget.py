"""Pages send a fixed, small number of queries, however much data a patient has."""

from __future__ import annotations

from httpx import AsyncClient

from app.services.outreach.news import news_latest
from app.tables import Message, Patient
from tests.factories import make_patient, make_person, make_report, make_thread, unique
from tests.querycount import counting_queries
from tests.web.conftest import sign_in, staff_signed_in


async def test_session_and_patient_context_cost_one_query(client: AsyncClient) -> None:
    await sign_in(client, await make_person())
    with counting_queries() as queries:
        response = await client.get("/more")
    assert response.status_code == 200
    assert len(queries) == 1, queries


async def _queries_for(client: AsyncClient, path: str, reports: int) -> int:
    person = await make_person()
    for days_ago in range(reports):
        await make_report(person.patient, days_ago=days_ago + 1)
    await sign_in(client, person)
    await news_latest()  # the clinic's note, kept in memory once any visitor has seen home
    with counting_queries() as queries:
        response = await client.get(path)
    assert response.status_code == 200
    return len(queries)


async def test_home_and_results_do_not_grow_with_the_record(client: AsyncClient) -> None:
    for path in ("/home", "/results"):
        few = await _queries_for(client, path, reports=1)
        many = await _queries_for(client, path, reports=12)
        assert few == many, path
        # One for the session and context, the page's own reads (home's include the bill
        # card; the clinic's What's new note is kept in memory), one for its audit rows.
        assert many <= 6, path


async def _search_queries(client: AsyncClient, matches: int) -> int:
    family = unique("Budget")
    for _ in range(matches):
        patient = await make_patient(given="Listed")
        await Patient.update({Patient.family_name: family}).where(Patient.id == patient.id)
    with counting_queries() as queries:
        response = await client.get("/staff", params={"q": family})
    assert response.status_code == 200
    assert response.text.count("/staff/patients/") >= matches
    return len(queries)


async def test_a_staff_search_costs_the_same_however_many_patients_it_shows(
    client: AsyncClient,
) -> None:
    await staff_signed_in(client)
    # Each patient shown gets an audit row, written together at commit.
    assert await _search_queries(client, matches=1) == await _search_queries(client, matches=6)


async def _thread_queries(client: AsyncClient, replies: int) -> int:
    person = await make_person()
    thread = await make_thread(person.patient)
    for number in range(replies):
        await Message.insert(
            Message(conversation=thread.id, sender="clinic", body=f"Reply {number}")
        )
    await sign_in(client, person)
    with counting_queries() as queries:
        response = await client.get(f"/messages/{thread.public_id}")
    assert response.status_code == 200
    return len(queries)


async def test_a_conversation_costs_the_same_however_long_it_is(client: AsyncClient) -> None:
    assert await _thread_queries(client, replies=1) == await _thread_queries(client, replies=12)


async def _queue_queries(client: AsyncClient, waiting: int) -> int:
    for _ in range(waiting):
        await make_thread((await make_person()).patient)
    with counting_queries() as queries:
        response = await client.get("/staff/messages")
    assert response.status_code == 200
    return len(queries)


async def test_the_message_queue_costs_the_same_however_much_waits(client: AsyncClient) -> None:
    await staff_signed_in(client, role="nurse")
    # Each patient shown gets an audit row, written together at commit.
    assert await _queue_queries(client, waiting=1) == await _queue_queries(client, waiting=6)


async def test_the_dashboard_costs_the_same_however_many_facts_there_are(
    client: AsyncClient,
) -> None:
    from app.db import write_transaction
    from app.services.dashboard import dashboard_refresh
    from app.services.facts import record_fact

    await staff_signed_in(client, role="admin")

    async def page_queries() -> int:
        await dashboard_refresh(months=2)
        with counting_queries() as queries:
            response = await client.get("/staff/dashboard")
        assert response.status_code == 200
        return len(queries)

    few = await page_queries()
    patient = await make_patient()
    async with write_transaction():
        for kind in ("signed_in", "message_sent", "visit_booked", "survey_ease") * 10:
            await record_fact(kind, patient.id, channel="portal", value=4.0)
    # The session, the location, the year's figures, the locations, the comments.
    assert await page_queries() == few <= 6
