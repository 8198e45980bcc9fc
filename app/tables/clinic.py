"""The clinic: Organization, Location and Practitioner in FHIR terms."""

from piccolo.columns import Boolean, ForeignKey, OnDelete, Serial, Varchar
from piccolo.table import Table

from app.tables.columns import public_id_column


class Organization(Table):
    id: Serial
    public_id = public_id_column()
    name = Varchar(length=200)
    phone = Varchar(length=40)
    timezone = Varchar(length=64, default="America/New_York")


class Location(Table):
    id: Serial
    public_id = public_id_column()
    organization = ForeignKey(references=Organization, on_delete=OnDelete.restrict)
    code = Varchar(length=20, unique=True)
    name = Varchar(length=200)
    address_line = Varchar(length=200)
    city = Varchar(length=100)
    state = Varchar(length=40)
    postal_code = Varchar(length=20)
    phone = Varchar(length=40)
    timezone = Varchar(length=64, default="America/New_York")


class Clinician(Table):
    """FHIR Practitioner (with a PractitionerRole's specialty and location folded in)."""

    id: Serial
    public_id = public_id_column()
    prefix = Varchar(length=20, default="")
    given_name = Varchar(length=100)
    family_name = Varchar(length=100)
    credentials = Varchar(length=40, default="")
    specialty = Varchar(length=100)
    npi = Varchar(length=10, null=True, unique=True)
    location = ForeignKey(references=Location, on_delete=OnDelete.restrict)
    accepts_online_booking = Boolean(default=True)
