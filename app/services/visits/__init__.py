"""Visits: the patient's list and details, booking, changes, the waitlist, reminders and
calendar files. Each module holds one part; the names other areas use are here."""

from app.services.visits.listing import (
    Suggestion,
    VisitDetail,
    VisitLine,
    visit_open,
    visits_home,
    visits_list,
    visits_upcoming,
)
from app.services.visits.reminders import visit_reminders_send

__all__ = [
    "Suggestion",
    "VisitDetail",
    "VisitLine",
    "visit_open",
    "visit_reminders_send",
    "visits_home",
    "visits_list",
    "visits_upcoming",
]
