"""The clinic's public profile (name, phone, time zone), read once and kept."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

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
