"""Pages send a fixed, small number of queries, however much data a patient has."""

from __future__ import annotations

from httpx import AsyncClient

from tests.factories import make_person, make_report
from tests.querycount import counting_queries
from tests.web.conftest import sign_in


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
    with counting_queries() as queries:
        response = await client.get(path)
    assert response.status_code == 200
    return len(queries)


async def test_home_and_results_do_not_grow_with_the_record(client: AsyncClient) -> None:
    for path in ("/home", "/results"):
        few = await _queries_for(client, path, reports=1)
        many = await _queries_for(client, path, reports=12)
        assert few == many, path
        # One for the session and context, the page's own reads, one for its audit rows.
        assert many <= 5, path
