"""Bills under /bills (signed in): statements, paying in two taps, receipts; guest pay under
/pay (a statement's code and a date of birth); the processor's webhook. Thin: each handler
calls one service. What a payment did is a flashed notice, never words in the URL. With
Stripe, a new card is entered on Stripe Checkout's page: the pay form's "Pay with a new card"
is answered with a redirect there, and Stripe sends the person back to .../checkout/..."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from app.access import PatientContext
from app.handlers.support import cookie_name, page
from app.services.bills import (
    PaymentRefusedError,
    bill_pay,
    bill_payment_check,
    bill_receipt,
    pay_page,
    payment_webhook,
)
from app.services.bills.checkout import (
    CheckoutStep,
    bill_checkout,
    bill_checkout_cancelled,
    bill_checkout_left,
    bill_checkout_returned,
    guest_checkout,
    guest_checkout_cancelled,
    guest_checkout_left,
    guest_checkout_returned,
)
from app.services.bills.guest import (
    PASS_SECONDS,
    GuestLimitedError,
    GuestRefusedError,
    Visitor,
    guest_find,
    guest_pass_make,
    guest_pass_read,
    guest_pay,
    guest_pay_page,
    guest_payment_check,
    guest_receipt,
)
from app.services.bills.payments import PaymentResult
from app.services.bills.plans import bills_page, plan_create, plan_page
from app.services.bills.processors import WebhookRefusedError
from app.services.survey import survey_due
from app.settings import get_settings
from app.web.flash import NOTICES, flashed_key
from app.web.guards import account_signed_in
from app.web.links import redirect_to
from app.web.origin import client_ip

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
GUEST_COOKIE = "portal_guest_pay"


def _outcome_notice(result: PaymentResult) -> str:
    """The flashed notice for a payment's end (app/web/flash.py NOTICES)."""
    if result.status == "succeeded":
        return "payment_made"
    if result.status == "processing":
        return "payment_pending"
    if result.status == "action_required":
        return "payment_action_required"
    if result.status == "cancelled":
        return "payment_cancelled"
    if result.status == "review":
        return "payment_review"
    if result.status in ("returning", "returned"):
        return "payment_returned"
    # A reason we have no words for (a processor's new code) reads as a plain decline.
    reason = f"payment_{result.decline_reason}"
    return reason if reason in NOTICES else "payment_declined"


def _to_stripe(request: Request[Any, Any, Any], url: str) -> Response[Any]:
    """On to Stripe Checkout's page (its address came from Stripe, checked to be Stripe's).
    htmx could not follow a redirect to another site, so it is told to load the page."""
    if request.headers.get("hx-request"):
        return Response(None, status_code=200, headers={"hx-redirect": url})
    return Redirect(url, status_code=303)


def _after_checkout(
    request: Request[Any, Any, Any], step: CheckoutStep, *, receipt: str, pay_page: str
) -> Response[Any]:
    if step.url:
        return _to_stripe(request, step.url)
    return _after_payment(request, step.result, receipt=receipt, pay_page=pay_page)


def _after_payment(
    request: Request[Any, Any, Any], result: PaymentResult, *, receipt: str, pay_page: str
) -> Response[Any]:
    """Where a payment's end leads: Stripe's page while its session waits for the card,
    its receipt (paid, still on its way, or being checked), or the pay page with what
    happened (nothing charged)."""
    if result.url:
        return _to_stripe(request, result.url)
    if result.status in ("succeeded", "processing", "review", "returning", "returned"):
        return redirect_to(
            request, receipt, notice=_outcome_notice(result), payment_id=result.public_id
        )
    return redirect_to(request, pay_page, notice=_outcome_notice(result))


@get("", name="bills")
async def bills(context: NamedDependency[PatientContext]) -> Template:
    view, plan = await bills_page(context)
    return page("bills/bills.html", context=context, tab="home", view=view, plan=plan)


@get("/plan", name="bills_plan_page")
async def plan(context: NamedDependency[PatientContext]) -> Template:
    return page(
        "bills/plan.html",
        context=context,
        tab="home",
        choice=await plan_page(context),
    )


@post("/plan", name="bills_plan")
async def plan_post(
    request: Request[Any, Any, Any], context: NamedDependency[PatientContext], data: Form
) -> Redirect:
    try:
        await plan_create(
            context,
            months=int(data.get("months", "0")) if data.get("months", "").isdigit() else 0,
            saved_card=data.get("card", ""),
            number=data.get("number", ""),
            payment_method=data.get("payment_method", ""),
        )
    except PaymentRefusedError as refused:
        return redirect_to(request, "bills_plan_page", notice=f"pay_{refused.reason}")
    return redirect_to(request, "bills", notice="plan_made")


@get("/pay", name="bills_pay_page")
async def pay(context: NamedDependency[PatientContext]) -> Template:
    return page("bills/pay.html", context=context, tab="home", pay=await pay_page(context))


@post("/pay", name="bills_pay")
async def pay_post(
    request: Request[Any, Any, Any], context: NamedDependency[PatientContext], data: Form
) -> Response[Any]:
    if data.get("checkout") == "yes":
        try:
            step = await bill_checkout(
                context,
                key=data.get("key", ""),
                choice=data.get("amount", "full"),
                other=data.get("other", ""),
                save_card=data.get("save") == "yes",
            )
        except PaymentRefusedError as refused:
            return redirect_to(request, "bills_pay_page", notice=f"pay_{refused.reason}")
        return _after_checkout(request, step, receipt="bills_receipt", pay_page="bills_pay_page")
    try:
        result = await bill_pay(
            context,
            key=data.get("key", ""),
            choice=data.get("amount", "full"),
            other=data.get("other", ""),
            saved_card=data.get("card", ""),
            number=data.get("number", ""),
            payment_method=data.get("payment_method", ""),
            save_card=data.get("save") == "yes",
        )
    except PaymentRefusedError as refused:
        return redirect_to(request, "bills_pay_page", notice=f"pay_{refused.reason}")
    return _after_payment(request, result, receipt="bills_receipt", pay_page="bills_pay_page")


@get("/checkout/{payment_id:str}/done", name="bills_checkout_done")
async def checkout_done(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    payment_id: FromPath[str],
) -> Response[Any]:
    """Back from Stripe's page after paying (Stripe adds ?session_id=..., which we do not
    need: the payment knows its session); on to the page again while it is open."""
    result = await bill_checkout_returned(context, payment_id)
    return _after_payment(request, result, receipt="bills_receipt", pay_page="bills_pay_page")


@get("/checkout/{payment_id:str}/cancel", name="bills_checkout_cancel")
async def checkout_cancel(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    payment_id: FromPath[str],
    token: FromQuery[str] = "",
) -> Response[Any]:
    """Back from Stripe's page without paying: nothing charged, back to the pay page. Only
    with the payment's cancel secret (Stripe's cancel_url has it); without it, 404."""
    result = await bill_checkout_left(context, payment_id, token)
    return _after_payment(request, result, receipt="bills_receipt", pay_page="bills_pay_page")


@get("/receipts/{payment_id:str}", name="bills_receipt")
async def receipt(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    payment_id: FromPath[str],
) -> Template:
    # Just paid (the notice it carries says so): the one-question survey, if due.
    paid = flashed_key(request) == "payment_made"
    return page(
        "bills/receipt.html",
        context=context,
        tab="home",
        receipt=await bill_receipt(context, payment_id),
        guest=False,
        survey=await survey_due(context.actor, task="payment") if paid else None,
    )


@post("/receipts/{payment_id:str}/check", name="bills_payment_check")
async def receipt_check(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    payment_id: FromPath[str],
) -> Response[Any]:
    result = await bill_payment_check(context, payment_id)
    if result.url:
        return _to_stripe(request, result.url)
    return redirect_to(
        request, "bills_receipt", notice=_outcome_notice(result), payment_id=result.public_id
    )


@post("/receipts/{payment_id:str}/cancel", name="bills_payment_cancel")
async def receipt_cancel(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    payment_id: FromPath[str],
) -> Response[Any]:
    """ "Cancel this payment" on a Checkout payment's receipt (its payer's, CSRF-checked)."""
    result = await bill_checkout_cancelled(context, payment_id)
    return _after_payment(request, result, receipt="bills_receipt", pay_page="bills_pay_page")


signed_in = Router(
    "/bills",
    guards=[account_signed_in],
    route_handlers=[
        bills,
        plan,
        plan_post,
        pay,
        pay_post,
        checkout_done,
        checkout_cancel,
        receipt,
        receipt_check,
        receipt_cancel,
    ],
)


@post("/bills/webhook", name="bills_webhook", status_code=200)
async def webhook(request: Request[Any, Any, Any]) -> Response[dict[str, bool]]:
    """The processor's signed news of a payment (outside the CSRF check: it is signed)."""
    try:
        await payment_webhook(await request.body(), request.headers.get("stripe-signature", ""))
    except WebhookRefusedError:
        return Response({"received": False}, status_code=400)
    return Response({"received": True})


# Guest pay ------------------------------------------------------------------------------


def _visitor(request: Request[Any, Any, Any]) -> Visitor:
    return Visitor(ip=client_ip(request), user_agent=request.headers.get("user-agent", ""))


def _birth_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _guest_statement(request: Request[Any, Any, Any]) -> str | None:
    return guest_pass_read(request.cookies.get(cookie_name(GUEST_COOKIE)))


@get("/pay", name="guest_pay_find_page")
async def guest_find_page() -> Template:
    return page("bills/guest_find.html", private=True, typed={}, problem="")


@post("/pay", name="guest_pay_find")
async def guest_find_post(request: Request[Any, Any, Any], data: Form) -> Template | Redirect:
    typed = {"code": data.get("code", ""), "birth_date": data.get("birth_date", "")}
    try:
        statement = await guest_find(
            code=typed["code"],
            birth_date=_birth_date(typed["birth_date"]),
            visitor=_visitor(request),
        )
    except GuestLimitedError:
        return page(
            "bills/guest_find.html", private=True, typed=typed, problem="limited", status_code=429
        )
    except GuestRefusedError:
        return page(
            "bills/guest_find.html", private=True, typed=typed, problem="no_match", status_code=400
        )
    response = redirect_to(request, "guest_pay_page")
    response.set_cookie(
        cookie_name(GUEST_COOKIE),
        guest_pass_make(statement),
        path="/",  # `__Host-` cookies (HTTPS) must be set for the whole site
        max_age=PASS_SECONDS,
        httponly=True,
        secure=get_settings().secure_cookies,
        samesite="lax",
    )
    return response


@get("/pay/statement", name="guest_pay_page")
async def guest_statement_page(request: Request[Any, Any, Any]) -> Template | Redirect:
    statement_id = _guest_statement(request)
    if statement_id is None:
        return redirect_to(request, "guest_pay_find_page")
    statement, pay_data = await guest_pay_page(statement_id, _visitor(request))
    return page("bills/guest_pay.html", private=True, statement=statement, pay=pay_data)


@post("/pay/statement", name="guest_pay")
async def guest_pay_post(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    statement_id = _guest_statement(request)
    if statement_id is None:
        return redirect_to(request, "guest_pay_find_page")
    if data.get("checkout") == "yes":
        try:
            step = await guest_checkout(
                statement_id,
                key=data.get("key", ""),
                choice=data.get("amount", "full"),
                other=data.get("other", ""),
                visitor=_visitor(request),
            )
        except PaymentRefusedError as refused:
            return redirect_to(request, "guest_pay_page", notice=f"pay_{refused.reason}")
        return _after_checkout(request, step, receipt="guest_receipt", pay_page="guest_pay_page")
    try:
        result = await guest_pay(
            statement_id,
            key=data.get("key", ""),
            choice=data.get("amount", "full"),
            other=data.get("other", ""),
            number=data.get("number", ""),
            payment_method=data.get("payment_method", ""),
            visitor=_visitor(request),
        )
    except PaymentRefusedError as refused:
        return redirect_to(request, "guest_pay_page", notice=f"pay_{refused.reason}")
    return _after_payment(request, result, receipt="guest_receipt", pay_page="guest_pay_page")


@get("/pay/checkout/{payment_id:str}/done", name="guest_checkout_done")
async def guest_checkout_done(
    request: Request[Any, Any, Any], payment_id: FromPath[str]
) -> Response[Any]:
    statement_id = _guest_statement(request)
    if statement_id is None:
        return redirect_to(request, "guest_pay_find_page")
    result = await guest_checkout_returned(statement_id, payment_id, _visitor(request))
    return _after_payment(request, result, receipt="guest_receipt", pay_page="guest_pay_page")


@get("/pay/checkout/{payment_id:str}/cancel", name="guest_checkout_cancel")
async def guest_checkout_cancel(
    request: Request[Any, Any, Any], payment_id: FromPath[str], token: FromQuery[str] = ""
) -> Response[Any]:
    statement_id = _guest_statement(request)
    if statement_id is None:
        return redirect_to(request, "guest_pay_find_page")
    result = await guest_checkout_left(statement_id, payment_id, token, _visitor(request))
    return _after_payment(request, result, receipt="guest_receipt", pay_page="guest_pay_page")


@get("/pay/receipts/{payment_id:str}", name="guest_receipt")
async def guest_receipt_page(
    request: Request[Any, Any, Any], payment_id: FromPath[str]
) -> Template | Redirect:
    statement_id = _guest_statement(request)
    if statement_id is None:
        return redirect_to(request, "guest_pay_find_page")
    return page(
        "bills/receipt.html",
        private=True,
        receipt=await guest_receipt(statement_id, payment_id, _visitor(request)),
        guest=True,
    )


@post("/pay/receipts/{payment_id:str}/check", name="guest_payment_check")
async def guest_receipt_check(
    request: Request[Any, Any, Any], payment_id: FromPath[str]
) -> Response[Any]:
    statement_id = _guest_statement(request)
    if statement_id is None:
        return redirect_to(request, "guest_pay_find_page")
    result = await guest_payment_check(statement_id, payment_id, _visitor(request))
    if result.url:
        return _to_stripe(request, result.url)
    return redirect_to(
        request, "guest_receipt", notice=_outcome_notice(result), payment_id=result.public_id
    )


@post("/pay/receipts/{payment_id:str}/cancel", name="guest_payment_cancel")
async def guest_receipt_cancel(
    request: Request[Any, Any, Any], payment_id: FromPath[str]
) -> Response[Any]:
    statement_id = _guest_statement(request)
    if statement_id is None:
        return redirect_to(request, "guest_pay_find_page")
    result = await guest_checkout_cancelled(statement_id, payment_id, _visitor(request))
    return _after_payment(request, result, receipt="guest_receipt", pay_page="guest_pay_page")


router = Router(
    "/",
    route_handlers=[
        signed_in,
        webhook,
        guest_find_page,
        guest_find_post,
        guest_statement_page,
        guest_pay_post,
        guest_checkout_done,
        guest_checkout_cancel,
        guest_receipt_page,
        guest_receipt_check,
        guest_receipt_cancel,
    ],
)
