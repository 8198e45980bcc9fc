"""Outreach over HTTP: Twilio's webhooks refuse anything unsigned, a signed STOP is kept, the
campaign link counts and leads on, a manager runs a campaign from the console, and a What's
new note reaches patients' home."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from httpx import AsyncClient

from app.services.outreach.campaigns import campaigns_send_due
from app.services.outreach.texts import sms_opted_out, twilio_signature
from app.settings import Settings, get_settings
from app.tables import Campaign, CampaignSend, OutboxMessage
from tests.factories import make_reachable_person, phone_number
from tests.web.conftest import csrf_from, flashed, serving, sign_in, staff_signed_in

TOKEN = "twilio-auth-token-for-tests"


@pytest.fixture
def twilio_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("PORTAL_TWILIO_AUTH_TOKEN", TOKEN)
    get_settings.cache_clear()
    yield get_settings()
    monkeypatch.undo()
    get_settings.cache_clear()


def _signed(settings: Settings, path: str, form: dict[str, str], token: str = TOKEN) -> str:
    return twilio_signature(token, f"{settings.base_url}{path}", form.items())


async def test_a_forged_webhook_is_refused_and_changes_nothing(twilio_settings: Settings) -> None:
    number = phone_number()
    form = {"From": number, "To": "+15550100100", "Body": "STOP", "MessageSid": "SM1"}
    async with serving(twilio_settings) as client:
        unsigned = await client.post("/sms", data=form)
        forged = await client.post(
            "/sms",
            data=form,
            headers={"X-Twilio-Signature": _signed(twilio_settings, "/sms", form, "guessed")},
        )
        altered = await client.post(
            "/sms",
            data={**form, "Body": "START"},
            headers={"X-Twilio-Signature": _signed(twilio_settings, "/sms", form)},
        )
        assert [r.status_code for r in (unsigned, forged, altered)] == [403, 403, 403]
        assert not await sms_opted_out(number)

        signed = await client.post(
            "/sms",
            data=form,
            headers={"X-Twilio-Signature": _signed(twilio_settings, "/sms", form)},
        )
        assert signed.status_code == 200
        assert signed.text.endswith("<Response></Response>")
        assert await sms_opted_out(number)


async def test_a_delivery_receipt_must_be_signed_too(twilio_settings: Settings) -> None:
    _, phone, _ = await make_reachable_person("Receipt")
    await OutboxMessage.insert(
        OutboxMessage(
            channel="sms",
            recipient=phone,
            body="",
            idempotency_key=f"receipt-{phone}",
            status="sent",
            provider_id=f"SM{phone[1:]}",
        )
    )
    form = {"MessageSid": f"SM{phone[1:]}", "MessageStatus": "delivered"}
    async with serving(twilio_settings) as client:
        forged = await client.post("/sms/status", data=form, headers={"X-Twilio-Signature": "x"})
        assert forged.status_code == 403
        signed = await client.post(
            "/sms/status",
            data=form,
            headers={"X-Twilio-Signature": _signed(twilio_settings, "/sms/status", form)},
        )
        assert signed.status_code == 204
    row = await OutboxMessage.select(OutboxMessage.delivered_at).where(
        OutboxMessage.provider_id == f"SM{phone[1:]}"
    )
    assert row[0]["delivered_at"] is not None


async def test_without_an_auth_token_every_webhook_is_refused(client: AsyncClient) -> None:
    response = await client.post("/sms", data={"From": "+15550001111", "Body": "STOP"})
    assert response.status_code == 403


async def test_a_manager_runs_a_campaign_and_its_link_counts(client: AsyncClient) -> None:
    person, phone, _ = await make_reachable_person("Linked")
    await staff_signed_in(client, role="manager")
    page = await client.get("/staff/campaigns")
    assert page.status_code == 200
    token = csrf_from(page.text)
    created = await client.post(
        "/staff/campaigns",
        data={
            "_csrf_token": token,
            "name": "Book your physical online",
            "segment": "enrolled_never_booked",
            "template": "book_online",
        },
    )
    assert created.status_code == 303
    assert flashed(created) == "campaign_created"
    preview = await client.get(created.headers["location"])
    assert "people are in this group now" in preview.text
    assert "Reply STOP to end texts." in preview.text
    public_id = created.headers["location"].rsplit("/", 1)[1]
    scheduled = await client.post(
        f"/staff/campaigns/{public_id}/schedule",
        data={"_csrf_token": token, "day": "", "time": "", "per_hour": "500"},
    )
    assert scheduled.status_code == 303
    await campaigns_send_due(only=public_id)

    send = await CampaignSend.select(CampaignSend.token).where(
        CampaignSend.patient == person.patient.id,
        CampaignSend.campaign.public_id == public_id,
    )
    link = f"/go/{send[0]['token']}"
    assert link in await _text_to(phone)
    # A phone drawing the link's preview is not the person tapping it.
    preview = await client.get(
        link, headers={"user-agent": "facebookexternalhit/1.1 Facebot Twitterbot/1.0"}
    )
    assert preview.status_code == 303
    assert preview.headers["location"] == "/visits/new"
    assert not (
        await CampaignSend.select(CampaignSend.clicked_at).where(
            CampaignSend.token == send[0]["token"]
        )
    )[0]["clicked_at"]
    await sign_in(client, person)
    followed = await client.get(link)
    assert followed.status_code == 303
    assert followed.headers["location"] == "/visits/new"
    assert (await client.get("/go/no-such-token")).status_code == 404
    results = await client.get(f"/staff/campaigns/{public_id}")
    assert '<dd id="clicked">1</dd>' in results.text


async def test_a_bad_campaign_form_comes_back_with_what_was_typed(client: AsyncClient) -> None:
    await staff_signed_in(client, role="admin")
    token = csrf_from((await client.get("/staff/campaigns")).text)
    refused = await client.post(
        "/staff/campaigns",
        data={"_csrf_token": token, "name": "Spring", "segment": "everyone", "template": ""},
    )
    assert refused.status_code == 400
    assert 'value="Spring"' in refused.text
    assert not await Campaign.exists().where(Campaign.name == "Spring")


async def test_a_whats_new_note_shows_on_home_in_the_readers_language(
    client: AsyncClient,
) -> None:
    await staff_signed_in(client, role="manager")
    token = csrf_from((await client.get("/staff/campaigns/news")).text)
    published = await client.post(
        "/staff/campaigns/news",
        data={
            "_csrf_token": token,
            "title": "Evening visits on Tuesdays",
            "body": "You asked, so Tuesdays are now open until 7 pm.",
            "title_es": "Citas por la tarde los martes",
            "body_es": "Lo pidieron: los martes abrimos hasta las 7 pm.",
        },
    )
    assert published.status_code == 303
    person, _, _ = await make_reachable_person("Reader")
    await sign_in(client, person)
    home = await client.get("/home")
    assert "Evening visits on Tuesdays" in home.text
    spanish, _, _ = await make_reachable_person("Lectora", locale="es")
    await sign_in(client, spanish)
    assert "Citas por la tarde los martes" in (await client.get("/home")).text


async def test_the_demo_phone_texts_the_clinic_as_a_number(settings: Settings) -> None:
    _, phone, _ = await make_reachable_person("Demo")
    async with serving(replace(settings, demo=True)) as client:
        await staff_signed_in(client, role="front_desk")
        page = await client.get("/staff/texts")
        sent = await client.post(
            "/staff/texts",
            data={"_csrf_token": csrf_from(page.text), "number": phone, "body": "stop"},
        )
        assert sent.status_code == 303
        assert flashed(sent) == "text_stop"
    assert await sms_opted_out(phone)


async def _text_to(phone: str) -> str:
    row = await OutboxMessage.select(OutboxMessage.body).where(
        OutboxMessage.recipient == phone, OutboxMessage.kind == "campaign"
    )
    return str(row[0]["body"])
