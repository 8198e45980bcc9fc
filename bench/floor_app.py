"""The rendering floor: the portal's own app and middleware, plus one page that renders the
signed-in home template from data held in memory (a parent with two children, a next visit,
three results). No query per request: what is left of a home request once the database is
gone. `bench/load.py` serves it the way it serves the portal and reports pages against it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from litestar import get
from litestar.response import Template

from app.access import SCOPE_AREAS, Actor, PatientContext, PatientRef, Profile
from app.access.grants import Grant
from app.handlers.support import page
from app.main import create_app
from app.services.home import Attention, HomeSummary
from app.services.results import ReportHeadline
from app.services.visits import VisitLine

FLOOR_PATH = "/bench/floor-home"

_NOW = datetime.now(UTC)
_ACTOR = Actor(
    account_id=1,
    account_public_id="acct0000000001",
    display_name="Maria Lopez",
    locale="en",
    session_id=1,
    acting_patient_id=1,
    ip="127.0.0.1",
    user_agent="bench",
)
_MARIA = PatientRef(1, "pat00000000001", "Maria", "Lopez", None, date(1988, 4, 2))
_GRANT = Grant(
    id=1,
    public_id="grt00000000001",
    account_id=1,
    account_name="Maria Lopez",
    patient=_MARIA,
    kind="self",
    scope="full",
    relationship=None,
    granted_by_account=None,
    granted_by_staff=None,
    starts_at=_NOW - timedelta(days=400),
    expires_at=None,
)
_CONTEXT = PatientContext(
    actor=_ACTOR,
    grant=_GRANT,
    profiles=(
        Profile("pat00000000001", "Maria", 38, True, True, 1, SCOPE_AREAS["full"]),
        Profile("pat00000000002", "Sofia", 9, False, False, 2, SCOPE_AREAS["full"]),
        Profile("pat00000000003", "Mateo", 14, False, False, 3, SCOPE_AREAS["full"]),
    ),
)
_SUMMARY = HomeSummary(
    unread_messages=1,
    next_visit=VisitLine(
        public_id="vis00000000001",
        starts_at=_NOW + timedelta(days=3),
        ends_at=_NOW + timedelta(days=3, minutes=20),
        visit_type="follow_up",
        status="booked",
        clinician_name="Dr. Ana Reyes",
        location_name="Riverside Family Health, Main Street",
        location_address="100 Main Street",
    ),
    latest_results=[
        ReportHeadline("rep0000000000" + str(n), name, _NOW - timedelta(days=n), n == 1, n % 2)
        for n, name in enumerate(
            ("Complete blood count", "Basic metabolic panel", "Lipid panel"), start=1
        )
    ],
    family=[Attention("pat00000000002", "Sofia", 1, 0), Attention("pat00000000003", "Mateo", 0, 1)],
)


@get(FLOOR_PATH, name="bench_floor_home", sync_to_thread=False)
def floor_home() -> Template:
    return page("home/home.html", context=_CONTEXT, tab="home", summary=_SUMMARY)


app = create_app()
app.register(floor_home)
