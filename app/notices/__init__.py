"""Everything the portal sends people: one function per message, each with its wording for
text, email and push in one place (words.py says how), in the reader's language.

Services say what happened (`await send_caregiver_invite(to=..., link=...)`), not how it is
worded or which channel it takes; delivery.py queues it in the outbox, inside the caller's
transaction. No message says anything about anyone's health, or names a patient.
"""

from app.notices.bills import send_payment_due, send_plan_charge_soon, send_statement_ready
from app.notices.caregivers import (
    send_adulthood_reached,
    send_caregiver_invite,
    send_caregiver_invite_code,
    send_guardian_access_ended,
    send_new_caregiver_notice,
)
from app.notices.delivery import Contact, notify_account, notify_patient
from app.notices.enrollment import send_enrollment_link, send_enrollment_reminder
from app.notices.messages import message_notice_url, send_message_reply
from app.notices.notifications import send_test_notice
from app.notices.outreach import (
    send_book_online,
    send_finish_enrollment,
    send_text_from_unknown_number,
    send_text_received,
    send_texts_help,
    send_texts_started,
    send_texts_stopped,
    send_turn_on_push,
    send_visit_cancelled_by_text,
    send_visit_confirmed_by_text,
    send_visit_not_changed_by_text,
    send_yearly_checkup,
)
from app.notices.passkeys import send_new_passkey_announcement
from app.notices.results import result_notice_url, send_result_ready
from app.notices.sign_in import send_codes_paused, send_shared_sign_in_notice, send_sign_in_code
from app.notices.visits import (
    send_visit_reminder,
    send_waitlist_offer,
    send_waitlist_offer_gone,
)

__all__ = [
    "Contact",
    "message_notice_url",
    "notify_account",
    "notify_patient",
    "result_notice_url",
    "send_adulthood_reached",
    "send_book_online",
    "send_caregiver_invite",
    "send_caregiver_invite_code",
    "send_codes_paused",
    "send_enrollment_link",
    "send_enrollment_reminder",
    "send_finish_enrollment",
    "send_guardian_access_ended",
    "send_message_reply",
    "send_new_caregiver_notice",
    "send_new_passkey_announcement",
    "send_payment_due",
    "send_plan_charge_soon",
    "send_result_ready",
    "send_shared_sign_in_notice",
    "send_sign_in_code",
    "send_statement_ready",
    "send_test_notice",
    "send_text_from_unknown_number",
    "send_text_received",
    "send_texts_help",
    "send_texts_started",
    "send_texts_stopped",
    "send_turn_on_push",
    "send_visit_cancelled_by_text",
    "send_visit_confirmed_by_text",
    "send_visit_not_changed_by_text",
    "send_visit_reminder",
    "send_waitlist_offer",
    "send_waitlist_offer_gone",
    "send_yearly_checkup",
]
