"""One-time notices ("Saved.", "You are signed out."): a redirect flashes a notice's key in a
short-lived cookie, and the next page shows it in the layout's one notice area and clears it.

The cookie holds only a key from NOTICES, never text: nothing a person typed and nothing about
their health can travel in it, and a made-up key shows nothing. Kept out of the URL, a notice
stays out of the history, bookmarks, links people share and the access log, and a reload does
not say "Saved." again. (Not to be confused with app/notices, which words the texts, emails
and pushes the portal sends.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from litestar import Request
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.response import Response
from litestar.types import Message, Scope

from app import i18n
from app.handlers.support import cookie_name
from app.i18n import N_
from app.services.phones import phone_display
from app.settings import get_settings

NOTICE_COOKIE = "portal_notice"
# Long enough for the redirect to be followed, short enough not to greet a later visit.
NOTICE_SECONDS = 60
# Set in the request's scope state when a page showed (and so used up) the notice.
_SHOWN = "portal_notice_shown"


@dataclass(frozen=True, slots=True)
class Notice:
    text: str  # the English source; translated when shown
    error: bool = False  # something to put right, not news
    # Values the text names (%(phone)s), taken from the page that shows it, never the cookie.
    fill: Callable[[Mapping[str, Any]], Mapping[str, object]] | None = None


@dataclass(frozen=True, slots=True)
class ShownNotice:
    text: str
    error: bool


NOTICES: dict[str, Notice] = {
    # Signing out.
    "signed_out": Notice(N_("You are signed out.")),
    "idle_signed_out": Notice(
        N_(
            "To keep your record private, you were signed out after a while without activity."
            " Sign in again to go on where you were."
        )
    ),
    "device_signed_out": Notice(N_("That device is signed out.")),
    # Passkeys.
    "passkey_added": Notice(N_("Passkey added. Next time, sign in with one tap.")),
    "passkey_removed": Notice(N_("Passkey removed.")),
    "passkey_renamed": Notice(N_("Passkey renamed.")),
    "passkey_unnamed": Notice(N_("Please type a name for the passkey."), error=True),
    "passkey_last": Notice(
        N_(
            "This is your only way to sign in, so it cannot be removed. Add another passkey"
            " first, or ask the clinic to put your phone or email on your record."
        ),
        error=True,
    ),
    # Notifications.
    "notifications_saved": Notice(N_("Saved.")),
    "push_subscribed": Notice(N_("Notifications are on for this device.")),
    "push_removed": Notice(N_("This device no longer gets notifications.")),
    "test_notice_sent": Notice(N_("A test notice is on its way.")),
    "test_notice_unsent": Notice(N_("Nothing was sent: choose at least one way to be told below.")),
    "quiet_hours_unreadable": Notice(N_("Please enter the quiet hours as times."), error=True),
    # Who can see my record.
    "caregiver_invited": Notice(N_("Invitation sent. They get access once they accept it.")),
    "caregiver_access_ended": Notice(N_("Access ended. They can no longer see your record.")),
    "caregiver_invite_cancelled": Notice(N_("Invitation cancelled.")),
    # The console's patient page.
    "patient_invited_by_sms": Notice(
        N_("Invitation sent by text message to %(phone)s."),
        fill=lambda page: {"phone": phone_display(page["card"].phone)},
    ),
    "patient_invited_by_email": Notice(
        N_("Invitation sent by email to %(email)s."),
        fill=lambda page: {"email": page["card"].email},
    ),
    "guardian_invited": Notice(N_("Invitation sent to the parent or guardian.")),
    "grant_ended": Notice(N_("Access ended.")),
    "own_contacts_saved": Notice(N_("Saved which phone and email are the patient's own.")),
    # Bills: what a payment did (nothing is charged unless it says so).
    "payment_made": Notice(N_("Thank you. Your payment went through.")),
    "payment_pending": Notice(
        N_(
            "We are still waiting to hear back from your card company. You will not be"
            " charged twice: check again in a minute."
        )
    ),
    "payment_declined": Notice(
        N_("Your card was declined. Nothing was charged. Try another card, or call your bank."),
        error=True,
    ),
    "payment_card_declined": Notice(
        N_("Your card was declined. Nothing was charged. Try another card, or call your bank."),
        error=True,
    ),
    "payment_insufficient_funds": Notice(
        N_(
            "Your card was declined because there is not enough money on it. Nothing was"
            " charged. Try another card, or pay a smaller amount."
        ),
        error=True,
    ),
    "payment_authentication_required": Notice(
        N_(
            "Your bank wants you to confirm this payment. Nothing was charged. Pay with a new"
            " card to confirm it with your bank."
        ),
        error=True,
    ),
    "payment_expired_card": Notice(
        N_("Your card has expired. Nothing was charged. Try another card."), error=True
    ),
    "payment_incorrect_cvc": Notice(
        N_(
            "The security code did not match. Nothing was charged. Check the 3 digits on the"
            " back of the card and try again."
        ),
        error=True,
    ),
    "payment_processing_error": Notice(
        N_("Your card company had a problem. Nothing was charged. Please try again soon."),
        error=True,
    ),
    "payment_action_required": Notice(
        N_(
            "Your bank wants to check it is really you, which this page cannot do yet."
            " Nothing was charged. Try another card, or call the clinic."
        ),
        error=True,
    ),
    "payment_cancelled": Notice(N_("You left the card page before paying. Nothing was charged.")),
    "payment_review": Notice(
        N_("We are checking this payment; the clinic will contact you."), error=True
    ),
    "payment_returned": Notice(
        N_(
            "The clinic gave this payment back to your card. It is not on your bill: pay"
            " again when you are ready."
        ),
        error=True,
    ),
    "pay_nothing_owed": Notice(N_("There is nothing to pay right now.")),
    "pay_in_progress": Notice(
        N_(
            "A payment for this bill is already on its way. See your payments in a minute"
            " before paying again."
        ),
        error=True,
    ),
    "pay_too_much": Notice(
        N_("That is more than you owe. Enter an amount up to your balance."), error=True
    ),
    "pay_too_little": Notice(N_("Please pay at least $1.00, or the whole balance."), error=True),
    "pay_unreadable_amount": Notice(
        N_("Please enter the amount as a number with its cents, like 25.00 or 1500.00."),
        error=True,
    ),
    "pay_too_many_declines": Notice(
        N_(
            "Several cards were declined here in the last hour, so paying online is paused."
            " Nothing was charged. Try again in an hour, or call the clinic."
        ),
        error=True,
    ),
    "pay_no_card": Notice(N_("Please choose a card to pay with."), error=True),
    "pay_no_reason": Notice(N_("Please choose a reason."), error=True),
    "pay_not_a_test_card": Notice(
        N_("This demo takes only test cards, like 4242 4242 4242 4242."), error=True
    ),
    "plan_made": Notice(
        N_("Your payment plan is set. The first payment is charged today, the rest monthly.")
    ),
    "pay_no_plan": Notice(
        N_("A payment plan needs a balance of at least $50.00 and a number of months."),
        error=True,
    ),
    "pay_plan_exists": Notice(N_("There is already a payment plan for this bill."), error=True),
    "pay_processor_timeout": Notice(
        N_("The card processor did not answer. Nothing was recorded: try again in a minute."),
        error=True,
    ),
    "pay_refund_busy": Notice(
        N_(
            "Another refund of this payment is being made. Nothing was refunded: look at"
            " the account, then try again."
        ),
        error=True,
    ),
    # The billing office.
    "pay_adjust_too_much": Notice(
        N_("That is more than the account owes. Enter an amount up to its balance."),
        error=True,
    ),
    "pay_form_expired": Notice(
        N_("This form is out of date. Nothing was posted: open the page again and retry."),
        error=True,
    ),
    "billing_adjusted": Notice(N_("Adjustment posted.")),
    "billing_refunded": Notice(N_("Refund made.")),
    "pay_refund_refused": Notice(
        N_(
            "Stripe did not make this refund (it may have been given back in Stripe already)."
            " Nothing was recorded: look the payment up in Stripe."
        ),
        error=True,
    ),
    "pay_review_given_back": Notice(
        N_(
            "Stripe has given some or all of this payment back, so it cannot be posted. Give"
            " back the rest, and ask the person to pay again."
        ),
        error=True,
    ),
    "pay_refund_unanswered": Notice(
        N_(
            "Stripe did not answer. The payment waits as being given back and cannot be"
            " posted: press Give it back again in a minute."
        ),
        error=True,
    ),
    "pay_review_settled": Notice(
        N_("This payment is no longer waiting for review: it was settled already."),
        error=True,
    ),
    "pay_review_unknown": Notice(
        N_(
            "Stripe does not show this payment as paid, or did not accept the request."
            " Nothing was changed: look it up in Stripe."
        ),
        error=True,
    ),
    "pay_review_amount_differs": Notice(
        N_(
            "Stripe took a different amount than this payment's, so it cannot be posted."
            " Refund it, and ask the person to pay again."
        ),
        error=True,
    ),
    "pay_review_more_than_owed": Notice(
        N_("The account no longer owes this much. Nothing was posted: refund it instead."),
        error=True,
    ),
    "billing_review_posted": Notice(N_("Payment posted to the bill.")),
    "billing_review_refunded": Notice(N_("Payment given back at Stripe.")),
    # Visits.
    "visit_booked": Notice(N_("Your visit is booked.")),
    "visit_moved": Notice(N_("Your visit has a new time.")),
    "visit_cancelled": Notice(N_("Your visit is cancelled.")),
    "visit_confirmed": Notice(N_("Thank you. The clinic knows you are coming.")),
    "visit_waitlisted": Notice(N_("We will tell you if an earlier time opens.")),
    "visit_waitlist_left": Notice(N_("You are off the waitlist.")),
    # Messages.
    "message_sent": Notice(N_("Sent.")),
    # The console's message queue.
    "conversation_claimed": Notice(N_("It is yours now.")),
    "conversation_assigned": Notice(N_("Owner changed.")),
    "conversation_replied": Notice(N_("Reply sent. The patient is told there is a message.")),
    "conversation_noted": Notice(N_("Note added. Only staff can see it.")),
    "conversation_closed": Notice(N_("Conversation closed.")),
    "conversation_reopened": Notice(N_("Conversation open again.")),
    "conversation_decided": Notice(N_("Decision sent to the patient.")),
    "conversation_documented": Notice(N_("Marked as documented in the chart.")),
    "reply_template_saved": Notice(N_("Template saved.")),
    "reply_template_removed": Notice(N_("Template removed.")),
    # Outreach: campaigns, What's new, and the demo's phone.
    "campaign_created": Notice(N_("Campaign saved. Check the preview, then schedule it.")),
    "campaign_scheduled": Notice(N_("Campaign scheduled. The results appear here as it goes.")),
    "news_published": Notice(N_("The note is on patients' home screens.")),
    "news_withdrawn": Notice(N_("The note is no longer shown.")),
    "text_stop": Notice(N_("Texted STOP: this number gets no more texts but codes it asks for.")),
    "text_start": Notice(N_("Texted START: this number gets texts again.")),
    "text_help": Notice(N_("Texted HELP: the answer is in the outbox.")),
    "text_confirmed": Notice(N_("The number's one upcoming visit is confirmed.")),
    "text_cancelled": Notice(N_("The number's one upcoming visit is cancelled.")),
    "text_not_changed": Notice(
        N_("No visit changed: the number has no upcoming visit, or several, or it is too late.")
    ),
    "text_message": Notice(N_("The text is in the message queue.")),
    "text_unknown": Notice(N_("No record has this number: it was told to call the clinic.")),
    "text_unreadable": Notice(
        N_("Please type a number with its country code (+1...) and a text."), error=True
    ),
    # The dashboard and its follow-up list.
    "dashboard_refreshed": Notice(N_("The figures are up to date.")),
    "follow_up_sent": Notice(N_("Reminders sent.")),
    "follow_up_none": Notice(N_("No one was due a reminder."), error=True),
    "follow_up_opted_out": Notice(N_("They will not be reminded again.")),
    # The one-question survey.
    "survey_thanks": Notice(N_("Thank you for telling us.")),
}


def flash(response: Response[Any], key: str) -> None:
    """Show this notice on the next page the browser renders (KeyError for an unknown key)."""
    if key not in NOTICES:
        raise KeyError(key)
    response.set_cookie(
        cookie_name(NOTICE_COOKIE),
        key,
        max_age=NOTICE_SECONDS,
        httponly=True,
        secure=get_settings().secure_cookies,
        samesite="lax",
    )


def flashed_key(request: Request[Any, Any, Any]) -> str | None:
    """The key of the notice this request brings (what the action before it did), if any:
    a page may offer what follows it (the survey after a booking)."""
    key = request.cookies.get(cookie_name(NOTICE_COOKIE))
    return key if key in NOTICES else None


@pass_context
def flashed_notice(context: Context) -> ShownNotice | None:
    """The layout's notice: the flashed one, in the page's language, used up by this page."""
    request = context.get("request")
    if request is None:
        return None
    key = request.cookies.get(cookie_name(NOTICE_COOKIE))
    if key is None:
        return None
    request.scope.setdefault("state", {})[_SHOWN] = True
    notice = NOTICES.get(key)
    if notice is None:
        return None
    text = i18n.gettext(notice.text)
    if notice.fill is not None:
        try:
            text %= notice.fill(context.get_all())
        except (KeyError, AttributeError):
            return None  # not the page it was meant for (an error page): nothing to say
    return ShownNotice(text=text, error=notice.error)


@pass_context
def notice_about(context: Context, *keys: str) -> bool:
    """Whether the flashed notice is one of these keys: a page ties its field to the notice
    that asks to put it right (aria-invalid, aria-describedby="notice")."""
    request = context.get("request")
    return request is not None and request.cookies.get(cookie_name(NOTICE_COOKIE)) in keys


def clear_shown_notice_hook() -> Callable[[Message, Scope], Awaitable[None]]:
    """A before_send hook: once a page showed the notice, the browser drops its cookie."""
    gone = Cookie(
        key=cookie_name(NOTICE_COOKIE),
        value="",
        max_age=0,
        expires=0,
        httponly=True,
        secure=get_settings().secure_cookies,
        samesite="lax",
    ).to_header(header="")

    async def clear(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        if not scope.get("state", {}).get(_SHOWN):
            return
        MutableScopeHeaders.from_message(message).add("set-cookie", gone)

    return clear
