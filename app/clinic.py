"""The clinic's public profile (name, phone, time zone), read once and kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from app.clock import utcnow
from app.tables import Location, Organization


@dataclass(frozen=True)
class ClinicProfile:
    name: str
    phone: str
    timezone: ZoneInfo
    locations: tuple[tuple[str, str], ...]  # (code, name)


DEFAULT_PROFILE = ClinicProfile(
    name="Patient Portal", phone="", timezone=ZoneInfo("America/New_York"), locations=()
)


async def clinic_profile_load() -> ClinicProfile:
    organization = await Organization.select(
        Organization.name, Organization.phone, Organization.timezone
    ).first()
    if organization is None:
        return DEFAULT_PROFILE
    locations = await Location.select(Location.code, Location.name).order_by(Location.code)
    return ClinicProfile(
        name=organization["name"],
        phone=organization["phone"],
        timezone=ZoneInfo(organization["timezone"]),
        locations=tuple((row["code"], row["name"]) for row in locations),
    )


# The clinic this process serves, loaded at start-up: its time zone decides what "today" is.
_current: ClinicProfile = DEFAULT_PROFILE


def clinic_profile() -> ClinicProfile:
    return _current


def clinic_profile_set(profile: ClinicProfile) -> None:
    global _current
    _current = profile


def clinic_today() -> date:
    """Today where the clinic is (birthdays turn over at local midnight, not UTC's)."""
    return utcnow().astimezone(_current.timezone).date()
