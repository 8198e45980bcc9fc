"""The shell as a browser without JavaScript sees it: pages, redirects, headers, partials."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from httpx import AsyncClient

from app.clock import utcnow
from app.services.audit import audit_insert, audit_seal_all
from app.settings import Settings
from tests.factories import make_person, make_report
from tests.web.conftest import csrf_from, sign_in

PATIENT_PAGES = ["/home", "/messages", "/visits", "/results", "/more"]


async def test_anonymous_visitors_are_sent_to_the_start_and_come_back(
    client: AsyncClient,
) -> None:
    for path in PATIENT_PAGES:
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/?next={path}"


async def test_htmx_requests_without_a_session_get_a_client_redirect(
    client: AsyncClient,
) -> None:
    response = await client.get("/home", headers={"HX-Request": "true"}, follow_redirects=False)
    assert response.headers["HX-Redirect"] == "/?next=/home"


async def test_every_patient_page_renders_for_its_patient_and_is_never_stored(
    client: AsyncClient,
) -> None:
    person = await make_person("Rosa")
    await sign_in(client, person)
    for path in PATIENT_PAGES:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-store", path
        assert f"Rosa {person.patient.family_name}" in response.text, path


async def test_a_signed_in_visitor_to_the_start_goes_home(client: AsyncClient) -> None:
    await sign_in(client, await make_person())
    response = await client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/home"


async def test_security_headers_are_on_pages_assets_and_errors(client: AsyncClient) -> None:
    for path in ["/", "/static/css/portal.css", "/no-such-page", "/sw.js"]:
        response = await client.get(path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "same-origin", path
        assert "camera=()" in response.headers["permissions-policy"], path


async def test_a_form_post_without_its_csrf_token_is_refused(client: AsyncClient) -> None:
    await client.get("/")
    refused = await client.post("/language", data={"locale": "es"}, follow_redirects=False)
    assert refused.status_code == 403
    page = await client.get("/")
    accepted = await client.post(
        "/language",
        data={"locale": "es", "_csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert accepted.status_code == 303


async def test_choosing_spanish_is_remembered_in_a_cookie_and_on_the_account(
    client: AsyncClient,
) -> None:
    person = await make_person()
    await sign_in(client, person)
    page = await client.get("/more")
    await client.post(
        "/language",
        data={"locale": "es", "next": "/more", "_csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    client.cookies.delete("portal_lang")
    spanish = await client.get("/home", headers={"accept-language": "en-US"})
    assert '<html lang="es">' in spanish.text
    assert "Inicio" in spanish.text


async def test_the_browser_language_picks_spanish_for_visitors(client: AsyncClient) -> None:
    response = await client.get("/", headers={"accept-language": "es-MX,es;q=0.9,en;q=0.5"})
    assert '<html lang="es">' in response.text
    assert "Su salud, en su bolsillo" in response.text
    english = await client.get("/", headers={"accept-language": "fr-FR"})
    assert "Your health, in your pocket" in english.text


async def test_language_change_never_redirects_off_site(client: AsyncClient) -> None:
    page = await client.get("/")
    response = await client.post(
        "/language",
        data={"locale": "en", "next": "//evil.example/", "_csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


async def test_visits_answers_an_htmx_list_request_with_only_the_list(
    client: AsyncClient,
) -> None:
    await sign_in(client, await make_person())
    partial = await client.get(
        "/visits?show=past", headers={"HX-Request": "true", "HX-Target": "visits"}
    )
    assert partial.text.lstrip().startswith('<div id="visits">')
    assert "<html" not in partial.text
    boosted = await client.get(
        "/visits?show=past",
        headers={"HX-Request": "true", "HX-Boosted": "true", "HX-Target": "main"},
    )
    assert "<html" in boosted.text


async def test_errors_have_their_own_page_and_htmx_gets_them_in_place(
    client: AsyncClient,
) -> None:
    page = await client.get("/no-such-page")
    assert page.status_code == 404
    assert "find that page" in page.text
    assert "<html" in page.text
    partial = await client.get("/no-such-page", headers={"HX-Request": "true", "HX-Target": "main"})
    assert partial.status_code == 404
    assert partial.headers["HX-Retarget"] == "#main"
    assert "<html" not in partial.text


async def test_health_check_reports_the_database(client: AsyncClient) -> None:
    await audit_seal_all()
    response = await client.get("/healthz")
    assert response.json() == {"status": "ok", "database": "ok", "audit": "ok"}


async def test_health_check_degrades_while_audit_rows_wait_too_long_for_the_sealer(
    client: AsyncClient, settings: Settings
) -> None:
    await audit_seal_all()
    late = utcnow() - timedelta(seconds=settings.audit_seal_max_seconds + 5)
    await audit_insert(action="test.health.waiting", occurred_at=late)
    response = await client.get("/healthz")
    assert response.status_code == 200  # this server still serves
    assert response.json() == {"status": "degraded", "database": "ok", "audit": "behind"}
    await audit_seal_all()
    assert (await client.get("/healthz")).json()["status"] == "ok"


async def test_manifest_makes_the_portal_installable(client: AsyncClient) -> None:
    response = await client.get("/manifest.webmanifest")
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["display"] == "standalone"
    assert manifest["id"] == "/"
    assert manifest["scope"] == "/"
    sizes = {(icon["sizes"], icon.get("purpose", "any")) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        assert (await client.get(icon["src"])).status_code == 200


async def test_service_worker_precaches_the_shell_and_no_health_page(
    client: AsyncClient,
) -> None:
    response = await client.get("/sw.js")
    assert response.headers["service-worker-allowed"] == "/"
    assert response.headers["cache-control"] == "no-cache"
    script = response.text
    assert "__CACHE_VERSION__" not in script
    precache = json.loads(re.search(r"const PRECACHE_URLS = (\[.*?\]);", script).group(1))
    assert "/offline" in precache
    assert any(url.startswith("/static/css/portal.css?v=") for url in precache)
    assert all(url == "/offline" or url.startswith("/static/") for url in precache)


async def test_the_offline_page_shows_nobody_s_data(client: AsyncClient) -> None:
    await sign_in(client, await make_person("Imelda"))
    response = await client.get("/offline")
    assert "Imelda" not in response.text
    assert 'hx-boost="false"' in response.text


async def test_demo_sign_in_exists_only_in_demo_mode(
    client: AsyncClient, demo_client: AsyncClient
) -> None:
    assert (await client.get("/demo")).status_code == 404
    assert (await demo_client.get("/demo")).status_code == 200


async def test_results_show_values_ranges_and_flags(client: AsyncClient) -> None:
    person = await make_person()
    await make_report(person.patient, value=131)
    await sign_in(client, person)
    page = (await client.get("/results")).text
    assert "Glucose" in page
    assert "131" in page
    assert "70–99" in page
    assert 'class="flag H"' in page
