"""Billing under /staff/billing: find an account (by name or a statement's code), read its
ledger, post an adjustment with a reason, refund a payment, see payments that did not go
through, and settle money Stripe took that was not posted (post it, or give it back)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from app.access import StaffActor
from app.services.bills.payments import PaymentRefusedError, new_attempt_key
from app.services.bills.review import billing_review_settle
from app.services.bills.staff import (
    ADJUSTMENT_REASONS,
    billing_account_view,
    billing_adjust,
    billing_refund,
    billing_search,
    billing_to_follow_up,
)
from app.web.console import staff_page
from app.web.guards import staff_permission
from app.web.links import redirect_to

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@get("/", name="staff_billing")
async def billing_home(staff: NamedDependency[StaffActor], q: FromQuery[str] = "") -> Template:
    return staff_page(
        "console/billing.html",
        staff=staff,
        q=q,
        accounts=await billing_search(staff, q),
        follow_up=await billing_to_follow_up(staff),
    )


@get("/accounts/{public_id:str}", name="staff_billing_account")
async def billing_account(staff: NamedDependency[StaffActor], public_id: FromPath[str]) -> Template:
    return staff_page(
        "console/billing_account.html",
        staff=staff,
        account_id=public_id,
        view=await billing_account_view(staff, public_id),
        reasons=ADJUSTMENT_REASONS,
        form_key=new_attempt_key(),
    )


@post("/accounts/{public_id:str}/adjustments", name="staff_billing_adjust")
async def billing_adjust_post(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    public_id: FromPath[str],
    data: Form,
) -> Redirect:
    try:
        await billing_adjust(
            staff,
            public_id,
            amount=data.get("amount", ""),
            reason=data.get("reason", ""),
            note=data.get("note", ""),
            form_key=data.get("key", ""),
        )
    except PaymentRefusedError as refused:
        return redirect_to(
            request, "staff_billing_account", notice=f"pay_{refused.reason}", public_id=public_id
        )
    return redirect_to(
        request, "staff_billing_account", notice="billing_adjusted", public_id=public_id
    )


@post("/payments/{public_id:str}/refund", name="staff_billing_refund")
async def billing_refund_post(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    public_id: FromPath[str],
    data: Form,
) -> Redirect:
    try:
        account = await billing_refund(staff, public_id, amount=data.get("amount", ""))
    except PaymentRefusedError as refused:
        return redirect_to(request, "staff_billing", notice=f"pay_{refused.reason}")
    return redirect_to(
        request, "staff_billing_account", notice="billing_refunded", public_id=account
    )


@post("/payments/{public_id:str}/review", name="staff_billing_review")
async def billing_review_post(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    public_id: FromPath[str],
    data: Form,
) -> Redirect:
    action = data.get("action", "")
    try:
        account = await billing_review_settle(staff, public_id, action=action)
    except PaymentRefusedError as refused:
        return redirect_to(request, "staff_billing", notice=f"pay_{refused.reason}")
    notice = "billing_review_posted" if action == "post" else "billing_review_refunded"
    return redirect_to(request, "staff_billing_account", notice=notice, public_id=account)


router = Router(
    "/billing",
    guards=[staff_permission("billing")],
    route_handlers=[
        billing_home,
        billing_account,
        billing_adjust_post,
        billing_refund_post,
        billing_review_post,
    ],
)
