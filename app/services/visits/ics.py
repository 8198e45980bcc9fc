""" "Add to calendar": one visit as an iCalendar file (RFC 5545), made with the icalendar
library rather than by hand, so escaping, line folding and time zones are right in every
calendar app. It names the kind of visit, the clinician and the place: what the patient
asked to carry into their own calendar."""

from __future__ import annotations

from icalendar import Calendar, Event

from app.clock import utcnow
from app.i18n import gettext
from app.services.visits.listing import VisitDetail
from app.settings import get_settings

PRODID = "-//Patient Portal//Visits//EN"


def visit_ics(visit: VisitDetail, *, title: str, clinic_name: str) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    # Stable per visit, so adding it again updates the same calendar entry.
    event.add("uid", f"{visit.public_id}@{get_settings().base_url.split('://', 1)[-1]}")
    event.add("dtstamp", utcnow())
    event.add("dtstart", visit.starts_at)
    event.add("dtend", visit.ends_at)
    event.add("summary", f"{title} · {clinic_name}")
    event.add("location", f"{visit.location_name}, {visit.location_address}")
    event.add("description", gettext("With %(name)s.") % {"name": visit.clinician_name})
    event.add("status", "CONFIRMED")
    calendar.add_component(event)
    return bytes(calendar.to_ical())
