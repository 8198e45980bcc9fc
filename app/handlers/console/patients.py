"""The console's patients: find a patient, open their page, send or show an enrollment link,
mark a teenager's own phone and email, and invite or end a caregiver's access."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from app.access import StaffActor, age_rules
from app.handlers.support import htmx_target
from app.i18n import gettext
from app.services.caregivers import InviteError, caregivers_for, guardian_invite, staff_grant_revoke
from app.services.console.patients import (
    join_requests_count,
    patient_card,
    patient_invite,
    patient_own_contacts_set,
    patients_search,
)
from app.services.console.roles import staff_may
from app.services.phones import country_names
from app.services.qr import qr_svg
from app.services.self_access import SelfAccessError
from app.settings import get_settings
from app.templating import current_clinic
from app.web.console import staff_page
from app.web.guards import staff_permission
from app.web.links import redirect_to

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
INVITED_BY = {"sms": "patient_invited_by_sms", "email": "patient_invited_by_email"}


@get("/", name="staff_home")
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
    staff: StaffActor, public_id: str, *, error: str = "", status_code: int = 200
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
        error=error,
        status_code=status_code,
    )


@get("/patients/{public_id:str}", name="staff_patient")
async def patient(staff: NamedDependency[StaffActor], public_id: FromPath[str]) -> Template:
    return await _patient_page(staff, public_id)


# Enrollment links and a teenager's own contacts: the people who meet patients.


@post("/{public_id:str}/invite", name="staff_patient_invite")
async def invite(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    public_id: FromPath[str],
    data: Form,
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
            qr=qr_svg(invitation.link, title=gettext("A code that opens the invitation")),
            link=invitation.link,
        )
    return redirect_to(request, "staff_patient", public_id=public_id, notice=INVITED_BY[via])


@post("/{public_id:str}/own-contacts", name="staff_patient_own_contacts")
async def own_contacts(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    public_id: FromPath[str],
    data: Form,
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
    return redirect_to(request, "staff_patient", public_id=public_id, notice="own_contacts_saved")


# A minor's parent or guardian, and ending anyone's access.


@post("/patients/{public_id:str}/guardian", name="staff_guardian_invite")
async def guardian(
    request: Request[Any, Any, Any],
    staff: NamedDependency[StaffActor],
    public_id: FromPath[str],
    data: Form,
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
    return redirect_to(request, "staff_patient", public_id=public_id, notice="guardian_invited")


@post("/grants/{public_id:str}/revoke", name="staff_grant_revoke")
async def grant_revoke(
    request: Request[Any, Any, Any], staff: NamedDependency[StaffActor], public_id: FromPath[str]
) -> Redirect:
    patient_public_id = await staff_grant_revoke(staff=staff, grant_public_id=public_id)
    return redirect_to(request, "staff_patient", public_id=patient_public_id, notice="grant_ended")


router = Router(
    "/",
    guards=[staff_permission("patients.search")],
    route_handlers=[
        home,
        patient,
        Router(
            "/patients",
            guards=[staff_permission("patients.invite")],
            route_handlers=[invite, own_contacts],
        ),
        Router(
            "/", guards=[staff_permission("grants.manage")], route_handlers=[guardian, grant_revoke]
        ),
    ],
)
