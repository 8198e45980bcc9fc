"""The clinic console under /staff: passkey sign-in, patient search and invitations, join
requests, posters, and the demo outbox. Staff sessions use their own cookie."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from app import i18n
from app.access import StaffActor, age_rules
from app.handlers.passkeys import (
    CHALLENGE_COOKIE,
    ceremony_failed,
    ceremony_refused,
    options_response,
    relying_party,
)
from app.handlers.support import (
    STAFF_COOKIE,
    STAFF_PREFIX,
    client_ip,
    cookie_name,
    htmx_target,
    page,
    safe_next,
    session_lifetime,
    staff_cookie_path,
    with_staff_cookie,
)
from app.services.caregivers import (
    InviteError,
    caregivers_for,
    guardian_invite,
    staff_grant_revoke,
)
from app.services.console.audit_search import AuditFilters, audit_search
from app.services.console.patients import (
    deliveries_failing,
    delivery_retry,
    join_request_close,
    join_requests_count,
    join_requests_open,
    outbox_recent,
    patient_card,
    patient_invite,
    patient_own_contacts_set,
    patients_search,
)
from app.services.console.posters import PAPER, location_codes, poster_layout, poster_location
from app.services.console.roles import staff_may, staff_require
from app.services.console.staff_auth import (
    staff_enroll,
    staff_invite_open,
    staff_registration_options,
)
from app.services.identity import STAFF
from app.services.passkeys import (
    PasskeyError,
    credential_from,
    device_name,
    passkey_authentication_options,
    passkey_sign_in,
)
from app.services.phones import country_names
from app.services.qr import qr_svg
from app.services.rate_limit import PASSKEY_SIGN_IN_PER_IP, rate_limit_ip
from app.services.results.release import INBOX_SHOWS, result_review, results_inbox
from app.services.self_access import SelfAccessError
from app.services.sessions import session_end
from app.settings import get_settings
from app.templating import current_clinic, poster_svg

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _staff_next(request: Request[Any, Any, Any]) -> str:
    """Back to the console page that asked for sign-in, never outside the console."""
    target = safe_next(request.query_params.get("next"), STAFF_PREFIX)
    return target if target.startswith(STAFF_PREFIX) else STAFF_PREFIX


def staff_page(template_name: str, *, staff: StaffActor | None, **data: Any) -> Template:
    """Console pages show patients' details: never stored by the browser or a cache."""
    return page(
        template_name,
        private=True,
        staff=staff,
        staff_may=(lambda permission: staff is not None and staff_may(staff.role, permission)),
        **data,
    )


# Signing in -------------------------------------------------------------------------------


@get("/staff/sign-in", name="staff_sign_in_page")
async def sign_in_page(request: Request[Any, Any, Any]) -> Template:
    return staff_page("console/sign_in.html", staff=None, next_path=_staff_next(request))


@post("/staff/sign-in/options", name="staff_sign_in_options", status_code=200)
async def sign_in_options() -> Response[str]:
    options_json, handle = await passkey_authentication_options(STAFF, rp=relying_party())
    return options_response(options_json, handle)


@post("/staff/sign-in", name="staff_sign_in", status_code=200)
async def sign_in(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    ip, user_agent = client_ip(request), request.headers.get("user-agent", "")
    if not await rate_limit_ip(PASSKEY_SIGN_IN_PER_IP, ip=ip, user_agent=user_agent):
        return ceremony_failed(
            i18n.gettext("Too many tries. Please wait a while and try again."), status_code=429
        )
    try:
        token = await passkey_sign_in(
            STAFF,
            rp=relying_party(),
            handle=request.cookies.get(cookie_name(CHALLENGE_COOKIE), ""),
            credential=credential_from((await request.body()).decode()),
            lifetime=session_lifetime(),
            ip=ip,
            user_agent=user_agent,
        )
    except PasskeyError as error:
        return ceremony_refused(
            error, i18n.gettext("We could not sign you in with that passkey. Please try again.")
        )
    response = Response({"redirect": _staff_next(request)})
    response.delete_cookie(cookie_name(CHALLENGE_COOKIE))
    return with_staff_cookie(response, token)


@get("/staff/enroll/{token:str}", name="staff_enroll_page")
async def enroll_page(token: FromPath[str]) -> Template:
    invite = await staff_invite_open(token)
    return staff_page(
        "console/enroll.html",
        staff=None,
        invite=invite,
        token=token,
        status_code=200 if invite else 410,
    )


@post("/staff/enroll/{token:str}/options", name="staff_enroll_options", status_code=200)
async def enroll_options(token: FromPath[str]) -> Response[Any]:
    try:
        options_json, handle = await staff_registration_options(token=token, rp=relying_party())
    except PasskeyError:
        return ceremony_failed(i18n.gettext("This link no longer works. Ask your administrator."))
    return options_response(options_json, handle)


@post("/staff/enroll/{token:str}", name="staff_enroll", status_code=201)
async def enroll(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
    try:
        session_token = await staff_enroll(
            token=token,
            rp=relying_party(),
            handle=request.cookies.get(cookie_name(CHALLENGE_COOKIE), ""),
            credential=credential_from((await request.body()).decode()),
            device_name=device_name(request.headers.get("user-agent", "")),
            lifetime=session_lifetime(),
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
        )
    except PasskeyError as error:
        return ceremony_refused(
            error, i18n.gettext("That passkey could not be added. Please try again.")
        )
    response = Response({"redirect": STAFF_PREFIX}, status_code=201)
    response.delete_cookie(cookie_name(CHALLENGE_COOKIE))
    return with_staff_cookie(response, session_token)


@post("/staff/sign-out", name="staff_sign_out")
async def sign_out(request: Request[Any, Any, Any]) -> Redirect:
    staff: StaffActor | None = getattr(request.state, "staff", None)
    if staff is not None:
        await session_end(STAFF, principal=staff)
    response = Redirect("/staff/sign-in?signed_out=1", status_code=303)
    response.delete_cookie(cookie_name(STAFF_COOKIE), path=staff_cookie_path())
    return response


# Patients ---------------------------------------------------------------------------------


@get("/staff", name="staff_home")
async def home(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], q: FromQuery[str] = ""
) -> Template:
    patients = await patients_search(staff=staff, text=q) if q.strip() else None
    data = {"q": q, "patients": patients}
    if htmx_target(request) == "search-results":
        return staff_page("console/_search_results.html", staff=staff, **data)
    open_requests = await join_requests_count() if staff_may(staff.role, "join_requests") else 0
    return staff_page("console/home.html", staff=staff, open_requests=open_requests, **data)


async def _patient_page(
    staff: StaffActor, public_id: str, *, sent: str = "", error: str = "", status_code: int = 200
) -> Template:
    card = await patient_card(staff=staff, public_id=public_id)
    caregivers, invites = await caregivers_for(card.id)
    return staff_page(
        "console/patient.html",
        staff=staff,
        card=card,
        caregivers=caregivers,
        invites=invites,
        is_minor=card.age < age_rules().adult,
        is_child=card.age < age_rules().adolescent,
        adolescent_age=age_rules().adolescent,
        sms_countries=country_names(get_settings().sms_countries),
        sent=sent,
        error=error,
        status_code=status_code,
    )


@get("/staff/patients/{public_id:str}", name="staff_patient")
async def patient(
    staff: NamedDependency[StaffActor], public_id: FromPath[str], sent: FromQuery[str] = ""
) -> Template:
    return await _patient_page(staff, public_id, sent=sent)


@post("/staff/patients/{public_id:str}/guardian", name="staff_guardian_invite")
async def guardian(
    staff: NamedDependency[StaffActor], public_id: FromPath[str], data: Form
) -> Template | Redirect:
    """A parent or guardian of a minor, invited once staff have checked the relationship."""
    if data.get("checked") != "yes":
        return await _patient_page(staff, public_id, error="unchecked", status_code=400)
    try:
        await guardian_invite(
            staff=staff,
            patient_public_id=public_id,
            contact=data.get("contact", ""),
            relationship=data.get("relationship", ""),
            base_url=get_settings().base_url,
        )
    except InviteError as error:
        return await _patient_page(staff, public_id, error=error.reason, status_code=400)
    return Redirect(f"/staff/patients/{public_id}?sent=guardian", status_code=303)


@post("/staff/grants/{public_id:str}/revoke", name="staff_grant_revoke")
async def grant_revoke(staff: NamedDependency[StaffActor], public_id: FromPath[str]) -> Redirect:
    patient_public_id = await staff_grant_revoke(staff=staff, grant_public_id=public_id)
    return Redirect(f"/staff/patients/{patient_public_id}?sent=revoked", status_code=303)


@post("/staff/patients/{public_id:str}/invite", name="staff_patient_invite")
async def invite(
    staff: NamedDependency[StaffActor], public_id: FromPath[str], data: Form
) -> Template | Redirect:
    via = data.get("via", "")
    if via not in ("sms", "email", "qr"):
        raise NotFoundException()
    try:
        invitation = await patient_invite(
            staff=staff,
            public_id=public_id,
            via=via,
            base_url=get_settings().base_url,
            clinic_name=current_clinic().name,
        )
    except SelfAccessError as refused:  # a child, or a teenager without a contact of their own
        return await _patient_page(staff, public_id, error=refused.reason, status_code=400)
    except ValueError:  # no phone or email on the record for that channel
        return await _patient_page(staff, public_id, error="no_contact", status_code=400)
    if via == "qr":
        # The link exists only in this answer (we keep its hash), so it is shown, not
        # redirected to; the page is never stored.
        card = await patient_card(staff=staff, public_id=public_id)
        return staff_page(
            "console/invite_qr.html",
            staff=staff,
            card=card,
            qr=qr_svg(invitation.link),
            link=invitation.link,
        )
    return Redirect(f"/staff/patients/{public_id}?sent={via}", status_code=303)


@post("/staff/patients/{public_id:str}/own-contacts", name="staff_patient_own_contacts")
async def own_contacts(
    staff: NamedDependency[StaffActor], public_id: FromPath[str], data: Form
) -> Template | Redirect:
    """Which of a teenager's phone and email are their own (checkboxes: absent means no)."""
    try:
        await patient_own_contacts_set(
            staff=staff,
            public_id=public_id,
            phone_is_own=data.get("phone_is_own") == "yes",
            email_is_own=data.get("email_is_own") == "yes",
        )
    except SelfAccessError as refused:
        return await _patient_page(staff, public_id, error=refused.reason, status_code=400)
    return Redirect(f"/staff/patients/{public_id}?sent=own_contacts", status_code=303)


# Join requests, posters, outbox -----------------------------------------------------------


@get("/staff/join-requests", name="staff_join_requests")
async def join_requests(staff: NamedDependency[StaffActor]) -> Template:
    return staff_page(
        "console/join_requests.html", staff=staff, requests=await join_requests_open(staff=staff)
    )


@post("/staff/join-requests/{public_id:str}/close", name="staff_join_request_close")
async def join_request_done(
    staff: NamedDependency[StaffActor], public_id: FromPath[str], data: Form
) -> Redirect:
    outcome = data.get("outcome", "")
    if outcome not in ("enrolled", "dismissed"):
        raise NotFoundException()
    await join_request_close(staff=staff, public_id=public_id, outcome=outcome)
    return Redirect("/staff/join-requests", status_code=303)


@get("/staff/audit", name="staff_audit")
async def audit(
    staff: NamedDependency[StaffActor],
    mrn: FromQuery[str] = "",
    staff_email: FromQuery[str] = "",
    action: FromQuery[str] = "",
    since: FromQuery[str] = "",
    until: FromQuery[str] = "",
) -> Template:
    staff_require(staff.role, "audit.search")
    typed = {
        "mrn": mrn,
        "staff_email": staff_email,
        "action": action,
        "since": since,
        "until": until,
    }
    try:
        filters = AuditFilters(
            mrn=mrn,
            staff_email=staff_email,
            action=action,
            since=date.fromisoformat(since) if since else None,
            until=date.fromisoformat(until) if until else None,
        )
    except ValueError:
        return staff_page(
            "console/audit.html",
            staff=staff,
            typed=typed,
            lines=None,
            error="date",
            status_code=400,
        )
    if filters.until is not None and filters.until >= date.max:
        # The search runs to the end of that day, which does not exist for the last date.
        return staff_page(
            "console/audit.html",
            staff=staff,
            typed=typed,
            lines=None,
            error="date",
            status_code=400,
        )
    lines = None if filters.empty else await audit_search(staff=staff, filters=filters)
    return staff_page("console/audit.html", staff=staff, typed=typed, lines=lines, error="")


@get("/staff/results", name="staff_results")
async def results(
    staff: NamedDependency[StaffActor], show: FromQuery[str] = "all", page: FromQuery[int] = 1
) -> Template:
    show = show if show in INBOX_SHOWS else "all"
    inbox = await results_inbox(staff=staff, show=show, page=page)
    return staff_page("console/results.html", staff=staff, inbox=inbox, show=show)


@post("/staff/results/{public_id:str}", name="staff_result_review")
async def result_review_post(
    staff: NamedDependency[StaffActor],
    public_id: FromPath[str],
    data: Form,
    show: FromQuery[str] = "all",
    page: FromQuery[int] = 1,
) -> Redirect:
    await result_review(
        staff=staff,
        public_id=public_id,
        comment=data.get("comment", ""),
        release=data.get("release") == "yes",
    )
    # Back to the same filter and page the note was written on.
    show = show if show in INBOX_SHOWS else "all"
    query = "" if (show, page) == ("all", 1) else f"?show={show}&page={max(page, 1)}"
    return Redirect(f"/staff/results{query}", status_code=303)


@get("/staff/posters", name="staff_posters")
async def posters(staff: NamedDependency[StaffActor]) -> Template:
    staff_require(staff.role, "posters")
    locations = [await poster_location(code) for code in await location_codes()]
    return staff_page(
        "console/posters.html",
        staff=staff,
        locations=[location for location in locations if location],
        sizes=tuple(PAPER),
    )


@get("/staff/posters/{code:str}/{size:str}", name="staff_poster")
async def poster(
    staff: NamedDependency[StaffActor], code: FromPath[str], size: FromPath[str]
) -> Response[str]:
    """The poster as an SVG file: open it and print at 100% on Letter or A4 paper."""
    staff_require(staff.role, "posters")
    location = await poster_location(code)
    if location is None or size not in PAPER:
        raise NotFoundException()
    svg = poster_svg(
        poster_layout(
            location=location,
            clinic_name=current_clinic().name,
            base_url=get_settings().base_url,
            size=size,
        )
    )
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={
            "Content-Disposition": f'inline; filename="poster-{location.code}-{size}.svg"',
            "Cache-Control": "no-store",
        },
    )


@get("/staff/deliveries", name="staff_deliveries")
async def deliveries(staff: NamedDependency[StaffActor]) -> Template:
    return staff_page(
        "console/deliveries.html", staff=staff, problems=await deliveries_failing(staff=staff)
    )


@post("/staff/deliveries/{public_id:str}/retry", name="staff_delivery_retry")
async def delivery_retry_post(
    staff: NamedDependency[StaffActor], public_id: FromPath[str]
) -> Redirect:
    await delivery_retry(staff=staff, public_id=public_id)
    return Redirect("/staff/deliveries", status_code=303)


@get("/staff/outbox", name="staff_outbox")
async def outbox(staff: NamedDependency[StaffActor]) -> Template:
    """Mounted in demo mode only (main.py)."""
    return staff_page("console/outbox.html", staff=staff, messages=await outbox_recent(staff=staff))
