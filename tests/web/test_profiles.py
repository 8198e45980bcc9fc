"""Caregivers switch whose record they see in one tap, and only to people they may see."""

from __future__ import annotations

import re

from httpx import AsyncClient

from app.tables import AuditEvent
from tests.factories import grant, make_patient, make_person, make_report, years_ago
from tests.web.conftest import csrf_from, sign_in


async def _switch(client: AsyncClient, public_id: str) -> int:
    page = await client.get("/more")
    response = await client.post(
        "/profile",
        data={"patient": public_id, "next": "/home", "_csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    return response.status_code


async def test_a_parent_switches_to_a_child_and_back(client: AsyncClient) -> None:
    parent = await make_person("Maria")
    child = await make_patient(given="Emma", birth=years_ago(7))
    await grant(parent.account, child, kind="proxy", relationship="parent")
    await sign_in(client, parent)

    home = (await client.get("/home")).text
    assert re.search(r">\s*Me\s*<", home)
    assert "Emma, " in home

    assert await _switch(client, child.public_id) == 303
    emma = (await client.get("/home")).text
    assert (
        "You are looking at Emma&#39;s record." in emma
        or "You are looking at Emma's record." in emma
    )
    assert f"Emma {child.family_name}" in emma

    assert await _switch(client, parent.patient.public_id) == 303
    assert "You are looking at" not in (await client.get("/home")).text

    switches = await AuditEvent.select(AuditEvent.patient).where(
        AuditEvent.actor_account == parent.account.id, AuditEvent.action == "profile.switch"
    )
    assert [row["patient"] for row in switches] == [child.id, parent.patient.id]


async def test_switching_to_someone_without_a_grant_is_not_found(client: AsyncClient) -> None:
    person = await make_person()
    stranger = await make_person("Stranger")
    await make_report(stranger.patient, name="Stranger's panel")
    await sign_in(client, person)
    assert await _switch(client, stranger.patient.public_id) == 404
    assert await _switch(client, "no-such-id") == 404
    results = (await client.get("/results")).text
    assert "Stranger&#39;s panel" not in results
    assert "Stranger's panel" not in results


async def test_an_account_with_only_its_own_record_sees_no_switcher(client: AsyncClient) -> None:
    await sign_in(client, await make_person())
    assert 'class="profiles"' not in (await client.get("/home")).text


async def test_a_parent_s_home_says_what_is_new_for_each_child(client: AsyncClient) -> None:
    parent = await make_person("Maya")
    young = await make_patient(given="Ivy", birth=years_ago(7))
    teen = await make_patient(given="Theo", birth=years_ago(15))
    billing_only = await make_patient(given="Gran", birth=years_ago(80))
    await grant(parent.account, young, kind="proxy", relationship="parent")
    await grant(parent.account, teen, kind="proxy", relationship="parent")
    await grant(parent.account, billing_only, kind="proxy", relationship="child", scope="billing")
    await make_report(young)
    await make_report(teen, confidential=True)  # his alone: not even counted for the parent
    await make_report(billing_only)
    await sign_in(client, parent)
    home = await client.get("/home")
    assert "Ivy has 1 new result." in home.text
    assert "Theo has" not in home.text
    assert "Gran has" not in home.text
    assert "Open Ivy&#39;s record" in home.text or "Open Ivy's record" in home.text
