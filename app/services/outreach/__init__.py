"""Outreach: reaching patients beyond the portal. Two-way texts (texts.py: STOP, START,
HELP, "C" and "X", everything else to the message queue), the clinic's campaigns
(campaigns.py: segments, templates, the worker's rounds, results, the /go/ link) and the
"What's new" note on home (news.py)."""

from app.services.outreach.campaigns import campaign_click, campaigns_send_due
from app.services.outreach.news import NewsLine, news_latest
from app.services.outreach.texts import sms_delivery_status, sms_inbound, twilio_signature_valid

__all__ = [
    "NewsLine",
    "campaign_click",
    "campaigns_send_due",
    "news_latest",
    "sms_delivery_status",
    "sms_inbound",
    "twilio_signature_valid",
]
