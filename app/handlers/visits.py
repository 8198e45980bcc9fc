"""Visits under /visits: the list with the suggested next visit, booking (the suggestion's
Book, or type -> day -> time), a visit's page (calendar file, map, change, cancel, confirm,
the waitlist) and waitlist offers. Thin: each handler calls one service."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from app.access import PatientContext, patient_context_resolve
from app.clinic import clinic_profile
from app.errors import NotFoundError
from app.handlers.support import NO_STORE, htmx_target, page
from app.i18n import gettext
from app.services.survey import survey_due
from app.services.visits import visit_open, visits_list
from app.services.visits.booking import (
    CANCEL_REASONS,
    JustTakenError,
    LateChangeError,
    TooManyBookedError,
    appointment_book,
    appointment_cancel,
    appointment_confirm,
    appointment_reschedule,
    booking_preview,
    visit_for_change,
    waitlist_join,
    waitlist_leave,
)
from app.services.visits.ics import visit_ics
from app.services.visits.slots import SlotLine, slots_find, types_bookable
from app.services.visits.waitlist import (
    OfferClosedError,
    offer_accept,
    offer_open,
    offer_patient,
)
from app.web.flash import flashed_key
from app.web.guards import account_signed_in
from app.web.links import redirect_to

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
# The browse view shows this many days that have a free time, first available first.
DAYS_SHOWN = 7


@get("", name="visits")
async def visits(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    show: FromQuery[str] = "upcoming",
) -> Template:
    past = show == "past"
    lines, suggestion = await visits_list(context, past=past)
    # One template, two uses: the whole page, or just the list when htmx swaps it.
    name = "visits/_visit_list.html" if htmx_target(request) == "visits" else "visits/visits.html"
    return page(
        name,
        context=context,
        tab="visits",
        visits=lines,
        past=past,
        suggestion=suggestion,
    )


@get("/new", name="visits_new")
async def choose_type(context: NamedDependency[PatientContext]) -> Template:
    context.require("appointments")
    return page(
        "visits/new.html", context=context, tab="visits", types=await types_bookable(context)
    )


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


async def _times(
    context: PatientContext,
    *,
    type_code: str,
    day: str,
    clinician: str,
    location: str,
    excluding: str = "",
) -> dict[str, Any]:
    """The browse view's data: days with a free time (first available first), and the times
    of the chosen day (else the first such day), in each location's zone."""
    if type_code not in {kind.code for kind in await types_bookable(context)}:
        raise NotFoundError(type_code)
    upcoming = await slots_find(
        type_code=type_code, clinician=clinician, location=location, limit=400, excluding=excluding
    )
    days: list[date] = []
    for slot in upcoming:
        if slot.local_day not in days:
            days.append(slot.local_day)
    chosen = _day(day)
    if chosen not in days:
        chosen = days[0] if days else None
    times: list[SlotLine] = [slot for slot in upcoming if slot.local_day == chosen]
    shown = days[:DAYS_SHOWN]
    if chosen is not None and chosen not in shown:
        shown.append(chosen)
    return {
        "type_code": type_code,
        "days": shown,
        "chosen": chosen,
        "times": times,
        "clinician": clinician,
        "location": location,
        # Filters: everyone who has a free time of this type, and where.
        "clinicians": sorted({(slot.clinician_id, slot.clinician_name) for slot in upcoming}),
        "locations": sorted({(slot.location_id, slot.location_name) for slot in upcoming}),
    }


@get("/new/{type_code:str}", name="visits_times")
async def choose_time(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    type_code: FromPath[str],
    day: FromQuery[str] = "",
    clinician: FromQuery[str] = "",
    location: FromQuery[str] = "",
) -> Template:
    context.require("appointments")
    data = await _times(
        context, type_code=type_code, day=day, clinician=clinician, location=location
    )
    name = "visits/_times.html" if htmx_target(request) == "times" else "visits/times.html"
    return page(name, context=context, tab="visits", moving=None, **data)


@get("/book/{slot_id:str}", name="visits_book_page")
async def book_page(context: NamedDependency[PatientContext], slot_id: FromPath[str]) -> Template:
    try:
        slot = await booking_preview(context, slot_id)
    except JustTakenError as taken:
        return _just_taken(context, taken, moving=None)
    except TooManyBookedError as full:
        return _too_many(context, full)
    return page("visits/confirm.html", context=context, tab="visits", slot=slot, moving=None)


@post("/book/{slot_id:str}", name="visits_book")
async def book(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    slot_id: FromPath[str],
) -> Redirect | Template:
    try:
        booked = await appointment_book(context, slot_public_id=slot_id)
    except JustTakenError as taken:
        return _just_taken(context, taken, moving=None)
    except TooManyBookedError as full:
        return _too_many(context, full)
    return redirect_to(request, "visit", notice="visit_booked", visit_id=booked.public_id)


def _too_many(context: PatientContext, full: TooManyBookedError) -> Template:
    """As many visits booked online as the portal allows: the clinic books more by phone."""
    return page(
        "visits/too_many.html",
        context=context,
        tab="visits",
        booked=full.booked,
        clinic_phone=clinic_profile().phone,
        status_code=409,
    )


def _just_taken(context: PatientContext, taken: JustTakenError, *, moving: str | None) -> Template:
    """ "Just taken — here are the next times": 409, with real free times to pick from."""
    return page(
        "visits/taken.html",
        context=context,
        tab="visits",
        alternatives=taken.alternatives,
        moving=moving,
        status_code=409,
    )


@get("/offers/{token:str}", name="visit_offer")
async def offer_page(context: NamedDependency[PatientContext], token: FromPath[str]) -> Template:
    context = await _offer_context(context, token)
    offer = await offer_open(context, token)
    return page("visits/offer.html", context=context, tab="visits", offer=offer, token=token)


@post("/offers/{token:str}", name="visit_offer_accept")
async def offer_take(
    request: Request[Any, Any, Any], context: NamedDependency[PatientContext], token: FromPath[str]
) -> Redirect | Template:
    context = await _offer_context(context, token)
    try:
        new_id = await offer_accept(context, token)
    except OfferClosedError:
        offer = await offer_open(context, token)
        return page(
            "visits/offer.html",
            context=context,
            tab="visits",
            offer=replace(offer, status="gone" if offer.status == "open" else offer.status),
            token=token,
            status_code=409,
        )
    return redirect_to(request, "visit", notice="visit_moved", visit_id=new_id)


async def _offer_context(context: PatientContext, token: str) -> PatientContext:
    """An offer is for one record: opened from a text, it may be a child's while the parent's
    own record is the one on screen. Any record this account may open will do; no other."""
    patient_id = await offer_patient(token)
    if patient_id is None:
        raise NotFoundError("offer")
    if patient_id == context.patient.id:
        return context
    other = await patient_context_resolve(replace(context.actor, acting_patient_id=patient_id))
    if other is None or other.patient.id != patient_id:
        raise NotFoundError("offer")
    return other


@get("/{visit_id:str}", name="visit")
async def visit(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    visit_id: FromPath[str],
) -> Template:
    detail = await visit_open(context, visit_id)
    # Just booked (the notice it carries says so): the one-question survey, if due.
    booked = flashed_key(request) == "visit_booked"
    survey = await survey_due(context.actor, task="booking") if booked else None
    return page(
        "visits/visit.html",
        context=context,
        tab="visits",
        visit=detail,
        survey=survey,
        clinic_phone=detail.location_phone or clinic_profile().phone,
    )


@get("/{visit_id:str}/calendar.ics", name="visit_calendar")
async def calendar_file(
    context: NamedDependency[PatientContext], visit_id: FromPath[str]
) -> Response[bytes]:
    detail = await visit_open(context, visit_id)
    title = _type_label(detail.visit_type)
    body = visit_ics(detail, title=title, clinic_name=clinic_profile().name)
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={**NO_STORE, "Content-Disposition": 'attachment; filename="visit.ics"'},
    )


def _type_label(code: str) -> str:
    labels = {
        "annual_physical": gettext("Yearly checkup"),
        "follow_up": gettext("Follow-up visit"),
        "sick_visit": gettext("Sick visit"),
        "well_child": gettext("Well-child visit"),
        "lab_visit": gettext("Lab visit"),
        "telehealth": gettext("Video visit"),
    }
    return labels.get(code, gettext("Visit"))


@get("/{visit_id:str}/reschedule", name="visit_reschedule_times")
async def reschedule_times(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    visit_id: FromPath[str],
    day: FromQuery[str] = "",
    clinician: FromQuery[str] = "",
    location: FromQuery[str] = "",
) -> Template:
    try:
        current = await visit_for_change(context, visit_id)
    except LateChangeError as late:
        return _too_late(context, late)
    data = await _times(
        context,
        type_code=current.visit_type,
        day=day,
        clinician=clinician,
        location=location,
    )
    name = "visits/_times.html" if htmx_target(request) == "times" else "visits/times.html"
    return page(name, context=context, tab="visits", moving=current, **data)


@get("/{visit_id:str}/reschedule/{slot_id:str}", name="visit_reschedule_page")
async def reschedule_page(
    context: NamedDependency[PatientContext], visit_id: FromPath[str], slot_id: FromPath[str]
) -> Template:
    try:
        current = await visit_for_change(context, visit_id)
        slot = await booking_preview(context, slot_id, moving=True)
    except LateChangeError as late:
        return _too_late(context, late)
    except JustTakenError as taken:
        return _just_taken(context, taken, moving=visit_id)
    return page("visits/confirm.html", context=context, tab="visits", slot=slot, moving=current)


@post("/{visit_id:str}/reschedule/{slot_id:str}", name="visit_reschedule")
async def reschedule(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    visit_id: FromPath[str],
    slot_id: FromPath[str],
) -> Redirect | Template:
    try:
        moved = await appointment_reschedule(
            context, visit_public_id=visit_id, slot_public_id=slot_id
        )
    except LateChangeError as late:
        return _too_late(context, late)
    except JustTakenError as taken:
        return _just_taken(context, taken, moving=visit_id)
    return redirect_to(request, "visit", notice="visit_moved", visit_id=moved.public_id)


def _too_late(context: PatientContext, late: LateChangeError) -> Template:
    """Inside the type's cancellation window: call the clinic (a tel: link)."""
    return page(
        "visits/cancel.html",
        context=context,
        tab="visits",
        visit=late.visit,
        too_late=True,
        reasons=CANCEL_REASONS,
        clinic_phone=late.visit.location_phone or clinic_profile().phone,
        status_code=409,
    )


@get("/{visit_id:str}/cancel", name="visit_cancel_page")
async def cancel_page(
    context: NamedDependency[PatientContext], visit_id: FromPath[str]
) -> Template:
    try:
        current = await visit_for_change(context, visit_id)
    except LateChangeError as late:
        return _too_late(context, late)
    return page(
        "visits/cancel.html",
        context=context,
        tab="visits",
        visit=current,
        too_late=False,
        reasons=CANCEL_REASONS,
        clinic_phone=current.location_phone or clinic_profile().phone,
    )


@post("/{visit_id:str}/cancel", name="visit_cancel")
async def cancel(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    visit_id: FromPath[str],
    data: Form,
) -> Redirect | Template:
    try:
        await appointment_cancel(context, visit_public_id=visit_id, reason=data.get("reason", ""))
    except LateChangeError as late:
        return _too_late(context, late)
    return redirect_to(request, "visits", notice="visit_cancelled")


@post("/{visit_id:str}/confirm", name="visit_confirm")
async def confirm(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    visit_id: FromPath[str],
) -> Redirect:
    await appointment_confirm(context, visit_public_id=visit_id)
    return redirect_to(request, "visit", notice="visit_confirmed", visit_id=visit_id)


@post("/{visit_id:str}/waitlist", name="visit_waitlist_join")
async def join_waitlist(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    visit_id: FromPath[str],
) -> Redirect:
    await waitlist_join(context, visit_public_id=visit_id)
    return redirect_to(request, "visit", notice="visit_waitlisted", visit_id=visit_id)


@post("/{visit_id:str}/waitlist/leave", name="visit_waitlist_leave")
async def leave_waitlist(
    request: Request[Any, Any, Any],
    context: NamedDependency[PatientContext],
    visit_id: FromPath[str],
) -> Redirect:
    await waitlist_leave(context, visit_public_id=visit_id)
    return redirect_to(request, "visit", notice="visit_waitlist_left", visit_id=visit_id)


router = Router(
    "/visits",
    guards=[account_signed_in],
    route_handlers=[
        visits,
        choose_type,
        choose_time,
        book_page,
        book,
        offer_page,
        offer_take,
        visit,
        calendar_file,
        reschedule_times,
        reschedule_page,
        reschedule,
        cancel_page,
        cancel,
        confirm,
        join_waitlist,
        leave_waitlist,
    ],
)
