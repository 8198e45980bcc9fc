"""`portal import-fhir`: FHIR R4 transaction/collection bundles and bulk-data NDJSON into the
record.

Each resource is checked with `fhir.resources` (its R4B models: R4B is R4 with technical
corrections only, and the package's default models are R5, which refuse R4 data), then
mapped onto our tables. What makes the import safe to run again and again:

- **Idempotent by source system + id.** Every imported resource leaves a FhirSource row
  keyed `<source>|<Type>/<id>` with a hash of the resource: the same resource again is
  "unchanged" and writes nothing; a changed one replaces the row it became ("updated").
- **Patients are matched by MRN** (an identifier of type MR), never by name: a Patient
  without one is skipped with everything that belongs to it, and an MRN that belongs to a
  record with another birth date is refused rather than merged.
- **Never half a patient.** A patient and their resources are written in one transaction;
  anything unexpected rolls the whole patient back and every resource of it is reported.
- **Bounded memory.** NDJSON is read line by line and written in batches of patients; a
  bundle is one file read at a time. Reference data (Practitioner, Organization, Location)
  is kept only as names for what refers to it.

A report line per resource says what happened: created, updated, unchanged, or skipped with
the reason. Lines carry resource types and ids only, never a name or a value (no PHI).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from app.access.grants import age_on
from app.clock import utcnow
from app.db import write_transaction
from app.services.record.documents import document_filename, document_store, is_pdf
from app.services.results.catalog import catalog_codes, lab_reference_range
from app.services.results.release import release_plan
from app.tables import (
    Allergy,
    FhirSource,
    Immunization,
    LabObservation,
    LabReport,
    Medication,
    Patient,
    Problem,
    RecordDocument,
    VisitSummary,
)

DEFAULT_SOURCE = "fhir"
BATCH_LINES = 2000
MB = 1024 * 1024
# Limits that keep one oversized or hostile file from filling memory: a bundle is read
# whole, an NDJSON line is one resource, and a document is kept like a message attachment.
MAX_BUNDLE_BYTES = 200 * MB
MAX_LINE_BYTES = 20 * MB
MAX_DOCUMENT_BYTES = 10 * MB
# Errors that reading one file or line may raise (deep nesting, bytes that are not UTF-8).
UNREADABLE = (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError)
# Where our own fields live in the FHIR we export (read back on import, so nothing is lost).
EXTENSION = "urn:patient-portal:fhir"
LAST_FILLED = f"{EXTENSION}:last-filled"
VISIT_NOTES = f"{EXTENSION}:after-visit-notes"
# meta.security codes (HL7 v3 Confidentiality and ActCode sensitivity) that make an item
# the patient's own, hidden from every proxy.
CONFIDENTIAL_CODES = frozenset(
    {"R", "V", "ETH", "HIV", "PSY", "PSYTHPN", "SDV", "SEX", "STD", "SUD", "SOC", "MH"}
)
MRN_TYPE = "MR"
# The resource types the portal keeps, in the order a patient's resources are written.
KEPT = (
    "Patient",
    "Condition",
    "Encounter",
    "DiagnosticReport",
    "Observation",
    "MedicationRequest",
    "MedicationStatement",
    "AllergyIntolerance",
    "Immunization",
    "DocumentReference",
)
REFERENCE_DATA = ("Practitioner", "Organization", "Location")
ORDER = {name: place for place, name in enumerate(REFERENCE_DATA + KEPT)}
LAB_CATEGORIES = frozenset({"laboratory", "LAB"})
# Days a date may lie ahead (time zones) before it counts as in the future.
FUTURE_SLACK = timedelta(days=1)


class Skip(Exception):
    """A resource left out, with the reason its report line gives."""


@dataclass(frozen=True)
class ReportLine:
    resource_type: str
    resource_id: str
    outcome: str  # created | updated | unchanged | skipped
    reason: str = ""

    def __str__(self) -> str:
        where = f"{self.resource_type}/{self.resource_id or '?'}"
        return f"{self.outcome:<9} {where}" + (f"  {self.reason}" if self.reason else "")


@dataclass
class ImportReport:
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    patients: Counter[str] = field(default_factory=Counter)
    on_line: Callable[[ReportLine], None] | None = None
    lines: list[ReportLine] = field(default_factory=list)
    keep_lines: bool = True

    def add(self, line: ReportLine) -> None:
        self.counts[(line.resource_type, line.outcome)] += 1
        if line.resource_type == "Patient":
            self.patients[line.outcome] += 1
        if self.keep_lines:
            self.lines.append(line)
        if self.on_line is not None:
            self.on_line(line)

    def total(self, outcome: str, resource_type: str | None = None) -> int:
        return sum(
            count
            for (kind, seen), count in self.counts.items()
            if seen == outcome and (resource_type is None or kind == resource_type)
        )

    def by_type(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (kind, _), count in self.counts.items():
            totals[kind] += count
        return dict(totals)


# Reading ------------------------------------------------------------------------------------


@dataclass
class Entry:
    resource: dict[str, Any]
    full_url: str = ""

    @property
    def type(self) -> str:
        return str(self.resource.get("resourceType", ""))

    @property
    def id(self) -> str:
        return str(self.resource.get("id") or "")


@dataclass
class Group:
    """One patient's resources (or, with no patient, reference data or orphans)."""

    patient: Entry | None
    entries: list[Entry] = field(default_factory=list)
    patient_ref: str = ""


def _is_ndjson(path: Path) -> bool:
    return path.suffix.lower() in (".ndjson", ".jsonl")


def _unreadable(error: Exception) -> str:
    if isinstance(error, RecursionError):
        return "not JSON this portal reads: nested too deeply"
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON: {error.msg}"
    return "not JSON"


def _ndjson_entries(
    path: Path, report: ImportReport, max_line: int = MAX_LINE_BYTES
) -> Iterator[Entry]:
    with path.open("rb") as handle:
        number = 0
        while True:
            raw = handle.readline(max_line + 1)
            if not raw:
                break
            number += 1
            where = f"{path.name}:{number}"
            if len(raw) > max_line:
                while raw and not raw.endswith(b"\n"):  # the rest of the line, unread
                    raw = handle.readline(max_line)
                report.add(
                    ReportLine("?", where, "skipped", f"line longer than {max_line // MB} MB")
                )
                continue
            if not raw.strip():
                continue
            try:
                resource = json.loads(raw.decode("utf-8"))
            except UNREADABLE as error:
                report.add(ReportLine("?", where, "skipped", _unreadable(error)))
                continue
            if not isinstance(resource, dict):
                report.add(ReportLine("?", where, "skipped", "not a resource"))
                continue
            yield Entry(resource)


def _bundle_entries(
    path: Path, report: ImportReport, max_bytes: int = MAX_BUNDLE_BYTES
) -> list[Entry]:
    try:
        size = path.stat().st_size
    except OSError:
        report.add(ReportLine("Bundle", path.name, "skipped", "the file cannot be read"))
        return []
    if size > max_bytes:
        report.add(ReportLine("Bundle", path.name, "skipped", f"larger than {max_bytes // MB} MB"))
        return []
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UNREADABLE as error:
        report.add(ReportLine("Bundle", path.name, "skipped", _unreadable(error)))
        return []
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        if isinstance(data, dict) and data.get("resourceType"):
            return [Entry(data)]
        report.add(ReportLine("Bundle", path.name, "skipped", "not a FHIR Bundle or resource"))
        return []
    if data.get("type") not in ("transaction", "collection", "batch", "searchset"):
        report.add(
            ReportLine(
                "Bundle", path.name, "skipped", f"bundle type {data.get('type')!r} is not imported"
            )
        )
        return []
    entries = []
    for raw in _list(data.get("entry")):
        resource = raw.get("resource") if isinstance(raw, dict) else None
        if not isinstance(resource, dict):
            report.add(ReportLine("?", "", "skipped", "bundle entry without a resource"))
            continue
        entries.append(Entry(resource, str(raw.get("fullUrl") or "")))
    return entries


def _reference(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("reference") or "")
    return ""


def _patient_reference(resource: dict[str, Any]) -> str:
    return _reference(resource.get("subject")) or _reference(resource.get("patient"))


def _ref_keys(entry: Entry) -> list[str]:
    """The ways another resource may refer to this one."""
    keys = [f"{entry.type}/{entry.id}", f"urn:uuid:{entry.id}"]
    if entry.full_url:
        keys.append(entry.full_url)
    return keys


def _groups(entries: list[Entry]) -> Iterator[Group]:
    """A file's resources by patient: reference data first, then each patient's own."""
    by_ref: dict[str, Group] = {}
    groups: list[Group] = []
    reference = Group(patient=None)
    orphans = Group(patient=None)
    for entry in entries:
        if entry.type == "Patient":
            group = Group(patient=entry, entries=[entry])
            groups.append(group)
            for key in _ref_keys(entry):
                by_ref.setdefault(key, group)
    for entry in entries:
        if entry.type == "Patient":
            continue
        if entry.type in REFERENCE_DATA:
            reference.entries.append(entry)
            continue
        target = by_ref.get(_patient_reference(entry.resource))
        (target or orphans).entries.append(entry)
    if reference.entries:
        yield reference
    yield from groups
    if orphans.entries:
        yield orphans


# Values -------------------------------------------------------------------------------------


def _clean(text: Any, length: int = 200) -> str:
    """Text as stored: NFC-normalised (one way to write "é"), trimmed, cut to the column."""
    if text is None:
        return ""
    return unicodedata.normalize("NFC", str(text)).strip()[:length]


def parse_moment(value: Any) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware UTC datetime (a date is its midnight
    UTC; a year or a month its first day)."""
    if not value:
        return None
    text = str(value)
    if len(text) == 4:
        text += "-01-01"
    elif len(text) == 7:
        text += "-01"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _not_future(moment: datetime | None, what: str) -> datetime | None:
    if moment is not None and moment > utcnow() + FUTURE_SLACK:
        raise Skip(f"{what} is in the future ({moment.date().isoformat()})")
    return moment


def _concept(value: Any, systems: tuple[str, ...] = ()) -> tuple[str, str, str]:
    """(code, display, text) of a CodeableConcept, the coding of a preferred system first."""
    if not isinstance(value, dict):
        return "", "", ""
    codings = [c for c in value.get("coding") or [] if isinstance(c, dict)]
    codings.sort(key=lambda c: 0 if any(s in str(c.get("system", "")) for s in systems) else 1)
    first = codings[0] if codings else {}
    return (
        _clean(first.get("code"), 40),
        _clean(first.get("display")),
        _clean(value.get("text")),
    )


def _status(value: Any) -> str:
    code, _, _ = _concept(value)
    return code


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _confidential(resource: dict[str, Any]) -> bool:
    meta = resource.get("meta")
    security = _list(meta.get("security")) if isinstance(meta, dict) else []
    return any(isinstance(s, dict) and s.get("code") in CONFIDENTIAL_CODES for s in security)


def _links(resource: dict[str, Any]) -> list[str]:
    """What a resource is about or part of: its reasons, its visit, a report's results.
    An item is as confidential as anything it links to (a visit for a restricted
    condition, a report holding a restricted test, the PDF of a restricted visit)."""
    refs: list[Any] = [*_list(resource.get("reasonReference")), resource.get("encounter")]
    context = resource.get("context")
    refs += _list(context.get("encounter")) if isinstance(context, dict) else [context]
    if resource.get("resourceType") == "DiagnosticReport":
        refs += _list(resource.get("result"))
    return [ref for ref in (_reference(value) for value in refs) if ref]


def _confidential_refs(entries: list[Entry]) -> set[str]:
    """Every way to refer to a resource of the group that is confidential, by its own label
    or through what it links to (followed until nothing more changes)."""
    hidden: set[str] = set()
    for entry in entries:
        if _confidential(entry.resource):
            hidden.update(_ref_keys(entry))
    linked = [(entry, _links(entry.resource)) for entry in entries]
    changed = True
    while changed:
        changed = False
        for entry, links in linked:
            keys = _ref_keys(entry)
            if keys[0] not in hidden and any(link in hidden for link in links):
                hidden.update(keys)
                changed = True
    return hidden


def _extension(resource: dict[str, Any], url: str) -> Any:
    for extension in resource.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == url:
            for key, value in extension.items():
                if key.startswith("value"):
                    return value
    return None


def content_hash(resource: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    ).hexdigest()


def validate(resource: dict[str, Any]) -> None:
    """Raise Skip unless the resource is valid FHIR R4 (fhir.resources' R4B models)."""
    try:
        model = get_fhir_model_class(resource["resourceType"])
    except (KeyError, ValueError, ImportError, AttributeError):
        raise Skip("not a FHIR R4 resource type") from None
    try:
        model.model_validate(resource)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise Skip(f"not valid FHIR R4: {where}: {first.get('msg', '')}"[:200]) from None


# Mapping onto our tables ----------------------------------------------------------------------


@dataclass
class Names:
    """Display names of reference data, by every way a resource may refer to them."""

    by_ref: dict[str, str] = field(default_factory=dict)

    def add(self, entry: Entry) -> None:
        resource = entry.resource
        name = ""
        if entry.type == "Practitioner":
            human = (resource.get("name") or [{}])[0]
            parts = [*(human.get("prefix") or []), *(human.get("given") or []), human.get("family")]
            name = _clean(" ".join(str(part) for part in parts if part)) or _clean(
                human.get("text")
            )
        else:
            name = _clean(resource.get("name"))
        if not name:
            return
        for key in _ref_keys(entry):
            self.by_ref[key] = name
        for identifier in resource.get("identifier") or []:
            if isinstance(identifier, dict) and identifier.get("value"):
                key = (
                    f"{entry.type}?identifier={identifier.get('system', '')}|{identifier['value']}"
                )
                self.by_ref[key] = name

    def of(self, value: Any) -> str:
        if not isinstance(value, dict):
            return ""
        return _clean(value.get("display")) or self.by_ref.get(_reference(value), "")


def _mrn(resource: dict[str, Any]) -> tuple[str, str]:
    """(system, value) of the patient's MRN (the identifier of type MR): the value alone
    is only unique within its system."""
    for identifier in _list(resource.get("identifier")):
        if not isinstance(identifier, dict):
            continue
        kind = identifier.get("type")
        codings = _list(kind.get("coding")) if isinstance(kind, dict) else []
        codes = {c.get("code") for c in codings if isinstance(c, dict)}
        if MRN_TYPE in codes and identifier.get("value"):
            return _clean(identifier.get("system"), 200), _clean(identifier["value"], 64)
    return "", ""


def _patient_values(resource: dict[str, Any]) -> dict[Any, Any]:
    names = [n for n in resource.get("name") or [] if isinstance(n, dict)]
    names.sort(key=lambda n: 0 if n.get("use") == "official" else 1)
    human = names[0] if names else {}
    given = _clean(" ".join(human.get("given") or []), 100)
    family = _clean(human.get("family"), 100)
    if not given and not family:
        raise Skip("the patient has no name")
    birth = parse_moment(resource.get("birthDate"))
    if birth is None:
        raise Skip("the patient has no birth date")
    if birth > utcnow() + FUTURE_SLACK:
        raise Skip(f"birth date is in the future ({birth.date().isoformat()})")
    telecom = [t for t in resource.get("telecom") or [] if isinstance(t, dict)]
    phone = next((t.get("value") for t in telecom if t.get("system") == "phone"), None)
    email = next((t.get("value") for t in telecom if t.get("system") == "email"), None)
    address = next((a for a in resource.get("address") or [] if isinstance(a, dict)), {})
    language = "en"
    for communication in resource.get("communication") or []:
        code, _, _ = _concept((communication or {}).get("language"))
        if code[:2].lower() in ("en", "es"):
            language = code[:2].lower()
            break
    deceased_at = None
    if resource.get("deceasedDateTime"):
        deceased_at = _not_future(parse_moment(resource["deceasedDateTime"]), "date of death")
    elif resource.get("deceasedBoolean") is True:
        deceased_at = utcnow()
    return {
        Patient.given_name: given or "-",
        Patient.family_name: family or "-",
        Patient.birth_date: birth.date(),
        Patient.sex: resource.get("gender") or "unknown",
        Patient.phone: _clean(phone, 40) or None,
        Patient.email: _clean(email) or None,
        Patient.preferred_language: language,
        Patient.address_line: _clean(" ".join(address.get("line") or [])),
        Patient.city: _clean(address.get("city"), 100),
        Patient.state: _clean(address.get("state"), 40),
        Patient.postal_code: _clean(address.get("postalCode"), 20),
        Patient.deceased_at: deceased_at,
    }


@dataclass
class PatientFacts:
    id: int
    sex: str
    birth_date: date


@dataclass
class Mapped:
    table: Any
    values: dict[Any, Any]
    note: str = ""


def _medication(resource: dict[str, Any], names: Names, _: PatientFacts) -> Mapped:
    code, display, text = _concept(resource.get("medicationCodeableConcept"), ("rxnorm",))
    name = text or display or names.of(resource.get("medicationReference"))
    if not name:
        raise Skip("no medication name or known code")
    dosage: dict[str, Any] = next(
        (d for d in resource.get("dosageInstruction") or resource.get("dosage") or []), {}
    )
    repeats = (resource.get("dispenseRequest") or {}).get("numberOfRepeatsAllowed")
    prescribed = resource.get("authoredOn") or resource.get("dateAsserted")
    return Mapped(
        Medication,
        {
            Medication.name: name,
            Medication.code: code,
            Medication.instructions: _clean((dosage or {}).get("text"), 1000),
            Medication.prescriber: names.of(
                resource.get("requester") or resource.get("informationSource")
            ),
            Medication.prescribed_at: _not_future(parse_moment(prescribed), "prescription date"),
            Medication.last_filled_at: parse_moment(_extension(resource, LAST_FILLED)),
            Medication.refills_left: int(repeats) if isinstance(repeats, int) else None,
            Medication.status: _clean(resource.get("status"), 20) or "active",
        },
    )


def _allergy(resource: dict[str, Any], _: Names, __: PatientFacts) -> Mapped:
    code, display, text = _concept(resource.get("code"))
    substance = text or display
    if not substance:
        raise Skip("no substance name or known code")
    reaction = next((r for r in resource.get("reaction") or [] if isinstance(r, dict)), {})
    manifestation: dict[str, Any] = next(iter(reaction.get("manifestation") or []), {})
    _code, shown, said = _concept(manifestation)
    return Mapped(
        Allergy,
        {
            Allergy.substance: substance,
            Allergy.code: code,
            Allergy.reaction: said or shown,
            Allergy.severity: _clean(reaction.get("severity"), 10),
            Allergy.status: _status(resource.get("clinicalStatus")) or "active",
            Allergy.recorded_at: _not_future(
                parse_moment(resource.get("recordedDate")), "recorded date"
            ),
        },
    )


def _immunization(resource: dict[str, Any], _: Names, __: PatientFacts) -> Mapped:
    code, display, text = _concept(resource.get("vaccineCode"), ("cvx",))
    vaccine = text or display
    if not vaccine:
        raise Skip("no vaccine name or known code")
    occurred = _not_future(parse_moment(resource.get("occurrenceDateTime")), "vaccination date")
    if occurred is None:
        raise Skip("no vaccination date")
    return Mapped(
        Immunization,
        {
            Immunization.vaccine: vaccine,
            Immunization.code: code[:20],
            Immunization.occurred_at: occurred,
            Immunization.lot_number: _clean(resource.get("lotNumber"), 40),
            Immunization.status: _clean(resource.get("status"), 20) or "completed",
        },
    )


def _condition(resource: dict[str, Any], _: Names, __: PatientFacts) -> Mapped:
    code, display, text = _concept(resource.get("code"), ("snomed",))
    name = display or text
    if not name:
        raise Skip("no problem name or known code")
    return Mapped(
        Problem,
        {
            Problem.name: name,
            Problem.plain_name: text if text and text != name else "",
            Problem.code: code,
            Problem.status: _status(resource.get("clinicalStatus")) or "active",
            Problem.onset_at: _not_future(
                parse_moment(resource.get("onsetDateTime")), "onset date"
            ),
            Problem.abated_at: _not_future(
                parse_moment(resource.get("abatementDateTime")), "end date"
            ),
        },
    )


def _encounter(resource: dict[str, Any], names: Names, _: PatientFacts) -> Mapped:
    status = resource.get("status")
    if status in ("planned", "cancelled", "entered-in-error"):
        raise Skip(f"a {status} visit has no summary")
    period = resource.get("period") or {}
    started = _not_future(parse_moment(period.get("start")), "visit date")
    if started is None:
        raise Skip("no visit date")
    _kind, kind_display, kind_text = _concept(next(iter(resource.get("type") or []), None))
    _why, reason_display, reason_text = _concept(next(iter(resource.get("reasonCode") or []), None))
    participant = next((p for p in resource.get("participant") or [] if isinstance(p, dict)), {})
    location = next((loc for loc in resource.get("location") or [] if isinstance(loc, dict)), {})
    return Mapped(
        VisitSummary,
        {
            VisitSummary.kind: kind_text or kind_display,
            VisitSummary.reason: reason_text or reason_display,
            VisitSummary.clinician: names.of(participant.get("individual")),
            VisitSummary.place: names.of(location.get("location"))
            or names.of(resource.get("serviceProvider")),
            VisitSummary.started_at: started,
            VisitSummary.ended_at: parse_moment(period.get("end")),
            VisitSummary.notes: _clean(_extension(resource, VISIT_NOTES), 20000),
        },
    )


IMPORTERS: dict[str, Callable[[dict[str, Any], Names, PatientFacts], Mapped]] = {
    "MedicationRequest": _medication,
    "MedicationStatement": _medication,
    "AllergyIntolerance": _allergy,
    "Immunization": _immunization,
    "Condition": _condition,
    "Encounter": _encounter,
}


# Writing ------------------------------------------------------------------------------------


@dataclass
class Run:
    source: str
    report: ImportReport
    started: datetime
    names: Names = field(default_factory=Names)
    seen: set[str] = field(default_factory=set)
    lab_codes: frozenset[str] = field(default_factory=catalog_codes)

    def key(self, entry: Entry) -> str:
        # The source is the one this run was given, never the resource's own meta.source:
        # a file must not choose whose rows its resources replace.
        return f"{self.source}|{entry.type}/{entry.id}"


@dataclass
class Written:
    """What this patient's transaction wrote, to resolve references within it."""

    local: dict[str, int] = field(default_factory=dict)  # reference key -> local id
    kinds: dict[str, str] = field(default_factory=dict)  # reference key -> resource type
    hidden: set[str] = field(default_factory=set)  # reference keys of confidential resources
    report_of: dict[str, int] = field(default_factory=dict)  # observation ref -> lab report id
    lines: list[ReportLine] = field(default_factory=list)


async def _source_row(key: str) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (
        await FhirSource.select(
            FhirSource.id,
            FhirSource.local_id,
            FhirSource.content_hash,
            FhirSource.imported_at,
            FhirSource.patient,
        )
        .where(FhirSource.source_key == key)
        .first()
    )
    return row


async def _remember(
    key: str, entry: Entry, patient_id: int | None, local_id: int, digest: str, existing: Any
) -> None:
    if existing is None:
        await FhirSource.insert(
            FhirSource(
                source_key=key[:400],
                resource_type=entry.type,
                patient=patient_id,
                local_id=local_id,
                content_hash=digest,
                imported_at=utcnow(),
            )
        )
    else:
        await FhirSource.update(
            {
                FhirSource.local_id: local_id,
                FhirSource.content_hash: digest,
                FhirSource.imported_at: utcnow(),
                FhirSource.patient: patient_id,
            }
        ).where(FhirSource.id == existing["id"])


async def _upsert(table: Any, values: dict[Any, Any], existing_local: int | None) -> int:
    if existing_local:
        exists = await table.exists().where(table.id == existing_local)
        if exists:
            await table.update(values).where(table.id == existing_local)
            return existing_local
    row = table(**{column._meta.name: value for column, value in values.items()})
    await table.insert(row)
    return int(row.id)


def _check_duplicate(run: Run, key: str, existing: dict[str, Any] | None, digest: str) -> None:
    if key in run.seen:
        raise Skip("duplicate id in this import: the first one was kept")
    if (
        existing is not None
        and existing["content_hash"] != digest
        and existing["imported_at"] >= run.started
    ):
        raise Skip("duplicate id in this import: the first one was kept")


async def _import_patient(run: Run, group: Group) -> list[ReportLine]:
    """One patient and their resources, inside the caller's transaction."""
    assert group.patient is not None
    entry = group.patient
    written = Written()
    key = run.key(entry)
    digest = content_hash(entry.resource)
    validate(entry.resource)
    mrn_system, mrn = _mrn(entry.resource)
    if not mrn:
        raise Skip("no MRN identifier (type MR): patients are matched by MRN, never by name")
    values = _patient_values(entry.resource)
    existing = await _source_row(key)
    _check_duplicate(run, key, existing, digest)
    run.seen.add(key)
    found = (
        await Patient.select(
            Patient.id, Patient.birth_date, Patient.phone, Patient.email, Patient.mrn_system
        )
        .where(Patient.mrn == mrn)
        .first()
    )
    if found is not None and found["mrn_system"] not in ("", mrn_system):
        raise Skip("the MRN belongs to a record of another identifier system: not merged")
    if found is not None and found["birth_date"] != values[Patient.birth_date]:
        raise Skip("the MRN belongs to a record with another birth date: not merged")
    note = "deceased: no invitations, notices or sign-in" if values[Patient.deceased_at] else ""
    if found is None:
        row = Patient(
            mrn=mrn,
            mrn_system=mrn_system,
            source_id=_clean(entry.id, 80) or None,
            **{column._meta.name: value for column, value in values.items()},
        )
        await Patient.insert(row)
        patient_id, outcome = int(row.id), "created"
    else:
        patient_id = int(found["id"])
        if not found["mrn_system"] and mrn_system:
            # A record made here (or imported before systems were kept) takes the first one.
            await Patient.update({Patient.mrn_system: mrn_system}).where(Patient.id == patient_id)
        if existing is not None and existing["content_hash"] == digest:
            outcome = "unchanged"
        else:
            # Staff's own marks (whose phone it is, the language chosen here) stay ours.
            values.pop(Patient.preferred_language)
            # ...but a mark is about one phone or address: a new one (often a parent's, on a
            # minor's chart) is nobody's own until staff check it again.
            if values[Patient.phone] != found["phone"]:
                values[Patient.phone_is_own] = False
            if values[Patient.email] != found["email"]:
                values[Patient.email_is_own] = False
            await Patient.update(values).where(Patient.id == patient_id)
            outcome = "updated"
    if outcome != "unchanged":
        await _remember(key, entry, patient_id, patient_id, digest, existing)
    written.lines.append(ReportLine("Patient", entry.id, outcome, note))
    facts = PatientFacts(patient_id, str(values[Patient.sex]), values[Patient.birth_date])
    for ref in _ref_keys(entry):
        written.local[ref] = patient_id
        written.kinds[ref] = "Patient"
    written.hidden = _confidential_refs(group.entries)
    for item in sorted(group.entries[1:], key=lambda e: ORDER.get(e.type, 99)):
        written.lines.append(await _import_one(run, item, facts, written))
    return written.lines


async def _import_one(run: Run, entry: Entry, facts: PatientFacts, written: Written) -> ReportLine:
    if entry.type not in KEPT:
        return ReportLine(
            entry.type, entry.id, "skipped", f"{entry.type} is not kept by the portal"
        )
    if not entry.id:
        return ReportLine(entry.type, "", "skipped", "no id: cannot be matched on a later import")
    key = run.key(entry)
    try:
        validate(entry.resource)
        confidential = await _is_confidential(run, entry, facts, written)
        derived = confidential and not _confidential(entry.resource)
        # A flag that comes from what the resource links to is part of what was imported:
        # when it changes, the row is written again.
        digest = content_hash(
            entry.resource | {"_confidential": True} if derived else entry.resource
        )
        existing = await _source_row(key)
        if existing is not None and existing["patient"] not in (None, facts.id):
            # Sources reuse ids ("Condition/1"): the row is another patient's, never moved.
            raise Skip("its id belongs to another patient's record: not moved")
        _check_duplicate(run, key, existing, digest)
        run.seen.add(key)
        if existing is not None and existing["content_hash"] == digest:
            for ref in _ref_keys(entry):
                written.local[ref] = int(existing["local_id"])
                written.kinds[ref] = entry.type
            if entry.type == "DiagnosticReport":
                for result in entry.resource.get("result") or []:
                    written.report_of[_reference(result)] = int(existing["local_id"])
            return ReportLine(entry.type, entry.id, "unchanged")
        local_id, note = await _write(run, entry, facts, written, existing, confidential)
        await _remember(key, entry, facts.id, local_id, digest, existing)
        for ref in _ref_keys(entry):
            written.local[ref] = local_id
            written.kinds[ref] = entry.type
        return ReportLine(entry.type, entry.id, "updated" if existing else "created", note)
    except Skip as reason:
        return ReportLine(entry.type, entry.id, "skipped", str(reason))


async def _is_confidential(run: Run, entry: Entry, facts: PatientFacts, written: Written) -> bool:
    """Labelled so, or linked to something of this patient that is: in this group, or a
    condition or visit of theirs imported before (bulk data sends each type on its own)."""
    if any(ref in written.hidden for ref in _ref_keys(entry)):
        return True
    earlier = {
        f"{run.source}|{link}": link.split("/")[0]
        for link in _links(entry.resource)
        if link.startswith(("Condition/", "Encounter/"))
    }
    if not earlier:
        return False
    rows = await FhirSource.select(FhirSource.resource_type, FhirSource.local_id).where(
        FhirSource.source_key.is_in(list(earlier)), FhirSource.patient == facts.id
    )
    for row in rows:
        table: Any = Problem if row["resource_type"] == "Condition" else VisitSummary
        if await table.exists().where(table.id == row["local_id"], table.confidential.eq(True)):
            return True
    return False


async def _write(
    run: Run,
    entry: Entry,
    facts: PatientFacts,
    written: Written,
    existing: Any,
    confidential: bool,
) -> tuple[int, str]:
    resource = entry.resource
    existing_local = int(existing["local_id"]) if existing else None
    if entry.type in IMPORTERS:
        mapped = IMPORTERS[entry.type](resource, run.names, facts)
        values = mapped.values | {
            mapped.table.patient: facts.id,
            mapped.table.confidential: confidential,
        }
        return await _upsert(mapped.table, values, existing_local), mapped.note
    if entry.type == "DiagnosticReport":
        return await _diagnostic_report(run, entry, facts, written, existing_local, confidential)
    if entry.type == "Observation":
        return await _observation(run, entry, facts, written, existing_local, confidential)
    return await _document(entry, facts, written, existing_local, confidential)


async def _diagnostic_report(
    run: Run,
    entry: Entry,
    facts: PatientFacts,
    written: Written,
    existing_local: int | None,
    confidential: bool,
) -> tuple[int, str]:
    resource = entry.resource
    code, display, text = _concept(resource.get("code"), ("loinc",))
    name = text or display
    if not name:
        raise Skip("no report name or known code")
    effective = _not_future(parse_moment(resource.get("effectiveDateTime")), "report date")
    issued = _not_future(parse_moment(resource.get("issued")), "issue date") or effective
    if effective is None or issued is None:
        raise Skip("no report date")
    status = _clean(resource.get("status"), 20)
    if status not in ("final", "amended", "corrected", "appended", "preliminary", "registered"):
        raise Skip(f"a {status or 'status-less'} report is not shown")
    final = status in ("final", "amended", "corrected", "appended")
    values = {
        LabReport.patient: facts.id,
        LabReport.loinc: code[:20],
        LabReport.name: name,
        LabReport.status: status,
        LabReport.effective_at: effective,
        LabReport.issued_at: issued,
        **(
            await _release(code[:20], issued, existing_local)
            if final
            else {LabReport.released_at: None, LabReport.first_viewed_at: None}
        ),
        LabReport.clinician_comment: _clean(resource.get("conclusion"), 4000) or None,
        LabReport.confidential: confidential,
    }
    report_id = await _upsert(LabReport, values, existing_local)
    results = [_reference(result) for result in resource.get("result") or []]
    for reference in results:
        written.report_of[reference] = report_id
    # Kept for tests that arrive later (bulk data sends Observation.ndjson on its own).
    keys = [_result_key(run, reference) for reference in results if reference]
    if keys:
        known = {
            row["source_key"]
            for row in await FhirSource.select(FhirSource.source_key).where(
                FhirSource.source_key.is_in(keys)
            )
        }
        if known:
            await FhirSource.update({FhirSource.local_id: report_id}).where(
                FhirSource.source_key.is_in(list(known))
            )
        fresh = [key for key in keys if key not in known]
        if fresh:
            await FhirSource.insert(
                *(
                    FhirSource(
                        source_key=key[:400],
                        resource_type="DiagnosticReport.result",
                        patient=facts.id,
                        local_id=report_id,
                        content_hash="",
                        imported_at=utcnow(),
                    )
                    for key in fresh
                )
            )
    return report_id, ""


async def _release(loinc: str, issued: datetime, existing_report: int | None) -> dict[Any, Any]:
    """When an imported final report reaches the patient: the clinic's hold applies as to
    any new result while it lasts; imported history (its hold long over) is not news, it
    was seen where it was first reported. A report already released stays released."""
    if existing_report:
        row = (
            await LabReport.select(LabReport.released_at)
            .where(LabReport.id == existing_report)
            .first()
        )
        if row is not None and row["released_at"] is not None:
            return {}
    plan = release_plan(loinc, issued)
    if plan.hold_until is not None and plan.hold_until > utcnow():
        return {
            LabReport.released_at: None,
            LabReport.hold_until: plan.hold_until,
            LabReport.first_viewed_at: None,
        }
    return {
        LabReport.released_at: issued,
        LabReport.hold_until: None,
        LabReport.first_viewed_at: issued,
    }


def _result_key(run: Run, reference: str) -> str:
    """Where a report's result reference is kept: the report's id, for its test to find."""
    return f"{run.source}|DiagnosticReport.result|{reference}"


async def _observation(
    run: Run,
    entry: Entry,
    facts: PatientFacts,
    written: Written,
    existing_local: int | None,
    confidential: bool,
) -> tuple[int, str]:
    resource = entry.resource
    categories = {
        coding.get("code")
        for category in resource.get("category") or []
        for coding in (category or {}).get("coding") or []
    }
    report_id = next(
        (written.report_of[ref] for ref in _ref_keys(entry) if ref in written.report_of), None
    )
    if report_id is None:
        linked = (
            await FhirSource.select(FhirSource.local_id)
            .where(FhirSource.source_key.is_in([_result_key(run, ref) for ref in _ref_keys(entry)]))
            .first()
        )
        report_id = int(linked["local_id"]) if linked else None
    if report_id is None and not categories & LAB_CATEGORIES:
        shown = ", ".join(sorted(str(c) for c in categories if c)) or "uncategorised"
        raise Skip(f"{shown} observations are not shown in the portal (only lab results)")
    code, display, text = _concept(resource.get("code"), ("loinc",))
    name = text or display
    if not name:
        raise Skip("no test name or known code")
    effective = _not_future(
        parse_moment(resource.get("effectiveDateTime") or resource.get("issued")), "test date"
    )
    if effective is None:
        raise Skip("no test date")
    quantity = resource.get("valueQuantity") or {}
    value_number = quantity.get("value")
    value_text = (
        _clean(resource.get("valueString"), 200)
        or _concept(resource.get("valueCodeableConcept"))[2]
        or _concept(resource.get("valueCodeableConcept"))[1]
    )
    if value_number is None and not value_text:
        raise Skip("no value")
    notes = []
    unit = _clean(quantity.get("unit") or quantity.get("code"), 40)
    if value_number is not None and not unit:
        notes.append("no unit")
    if code not in run.lab_codes:
        notes.append("code not in our lab catalog: shown with its own name")
    low = high = None
    for ranged in resource.get("referenceRange") or []:
        low = (ranged.get("low") or {}).get("value")
        high = (ranged.get("high") or {}).get("value")
        break
    if low is None and high is None and value_number is not None:
        age = age_on(facts.birth_date, effective.date())
        found = lab_reference_range(code, sex=facts.sex, age=age)
        if found is not None and (not unit or found.unit == unit):
            low, high = found.low, found.high
            notes.append("usual range from our catalog")
        else:
            notes.append("no usual range")
    interpretation = _interpretation(resource, value_number, low, high)
    if report_id is not None and confidential:
        # A test has no flag of its own: a restricted one hides its whole report.
        await LabReport.update({LabReport.confidential: True}).where(LabReport.id == report_id)
    if report_id is None:
        # A lab result on its own: a report of one test, so it shows like any other.
        status = _clean(resource.get("status"), 20) or "final"
        report_values = {
            LabReport.patient: facts.id,
            LabReport.loinc: code[:20],
            LabReport.name: name,
            LabReport.status: status,
            LabReport.effective_at: effective,
            LabReport.issued_at: parse_moment(resource.get("issued")) or effective,
            LabReport.confidential: confidential,
        }
        own = None
        if existing_local:
            own_row = (
                await LabObservation.select(LabObservation.report)
                .where(LabObservation.id == existing_local)
                .first()
            )
            own = int(own_row["report"]) if own_row else None
        report_values |= await _release(code[:20], effective, own)
        report_id = await _upsert(LabReport, report_values, own)
    values = {
        LabObservation.report: report_id,
        LabObservation.patient: facts.id,
        LabObservation.loinc: code[:20],
        LabObservation.name: name,
        LabObservation.value_number: float(value_number) if value_number is not None else None,
        LabObservation.value_text: value_text or None,
        LabObservation.unit: unit,
        LabObservation.reference_low: float(low) if low is not None else None,
        LabObservation.reference_high: float(high) if high is not None else None,
        LabObservation.interpretation: interpretation,
        LabObservation.effective_at: effective,
    }
    return await _upsert(LabObservation, values, existing_local), "; ".join(notes)


def _interpretation(resource: dict[str, Any], value: Any, low: Any, high: Any) -> str | None:
    """The lab's own flag when it gives one, else read from the usual range."""
    code, _, _ = _concept(next(iter(resource.get("interpretation") or []), None))
    if code in ("LL", "L", "N", "H", "HH"):
        return code
    if isinstance(value, int | float) and (low is not None or high is not None):
        if low is not None and value < low:
            return "L"
        if high is not None and value > high:
            return "H"
        return "N"
    return None


async def _document(
    entry: Entry,
    facts: PatientFacts,
    written: Written,
    existing_local: int | None,
    confidential: bool,
) -> tuple[int, str]:
    resource = entry.resource
    attachment = next(
        (
            (content or {}).get("attachment") or {}
            for content in resource.get("content") or []
            if ((content or {}).get("attachment") or {}).get("contentType") == "application/pdf"
        ),
        None,
    )
    if attachment is None:
        raise Skip("only PDF documents are kept")
    if not attachment.get("data"):
        raise Skip("the PDF is not in the bundle (only documents sent inline are kept)")
    if len(attachment["data"]) > (MAX_DOCUMENT_BYTES + 2) // 3 * 4:
        raise Skip(f"the PDF is larger than {MAX_DOCUMENT_BYTES // MB} MB")
    try:
        data = base64.b64decode(attachment["data"], validate=True)
    except (binascii.Error, ValueError):
        raise Skip("the PDF's data is not base64") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise Skip(f"the PDF is larger than {MAX_DOCUMENT_BYTES // MB} MB")
    if not is_pdf(data):
        raise Skip("the document says PDF but is not one")
    written_at = (
        _not_future(
            parse_moment(resource.get("date") or attachment.get("creation")), "document date"
        )
        or utcnow()
    )
    visit = None
    for encounter in (resource.get("context") or {}).get("encounter") or []:
        reference = _reference(encounter)
        if written.kinds.get(reference) != "Encounter":
            continue  # only a visit of this patient's, never another kind's local id
        found = (
            await VisitSummary.select(VisitSummary.confidential)
            .where(VisitSummary.id == written.local[reference], VisitSummary.patient == facts.id)
            .first()
        )
        if found is not None:
            visit = written.local[reference]
            # The PDF of a restricted visit is as restricted as the visit.
            confidential = confidential or bool(found["confidential"])
    note = ""
    if (resource.get("context") or {}).get("encounter") and visit is None:
        note = "its visit was not found: kept without one"
    title = _clean(attachment.get("title") or resource.get("description"), 200) or "Document"
    key = await document_store(data)
    values = {
        RecordDocument.patient: facts.id,
        RecordDocument.visit: visit,
        RecordDocument.title: title,
        RecordDocument.filename: document_filename(title),
        RecordDocument.media_type: "application/pdf",
        RecordDocument.storage_key: key,
        RecordDocument.size: len(data),
        RecordDocument.written_at: written_at,
        RecordDocument.confidential: confidential,
    }
    return await _upsert(RecordDocument, values, existing_local), note


async def _import_reference(run: Run, group: Group) -> list[ReportLine]:
    lines = []
    for entry in group.entries:
        try:
            validate(entry.resource)
            run.names.add(entry)
            key = run.key(entry)
            digest = content_hash(entry.resource)
            existing = await _source_row(key)
            if existing is not None and existing["content_hash"] == digest:
                lines.append(ReportLine(entry.type, entry.id, "unchanged"))
                continue
            async with write_transaction():
                await _remember(key, entry, None, 0, digest, existing)
            lines.append(
                ReportLine(
                    entry.type, entry.id, "updated" if existing else "created", "kept by name"
                )
            )
        except Skip as reason:
            lines.append(ReportLine(entry.type, entry.id, "skipped", str(reason)))
        except Exception as error:  # one odd resource never ends the run
            lines.append(
                ReportLine(entry.type, entry.id, "skipped", f"not imported: {type(error).__name__}")
            )
    return lines


async def _patient_by_reference(run: Run, reference: str) -> tuple[int, str, date] | None:
    """An earlier import's patient, from a reference ("Patient/x" or "urn:uuid:x")."""
    if not reference:
        return None
    patient_id = reference.removeprefix("urn:uuid:").removeprefix("Patient/")
    row = (
        await FhirSource.select(FhirSource.local_id)
        .where(FhirSource.source_key == f"{run.source}|Patient/{patient_id}")
        .first()
    )
    if row is None:
        return None
    found = (
        await Patient.select(Patient.id, Patient.sex, Patient.birth_date)
        .where(Patient.id == row["local_id"])
        .first()
    )
    if found is None:
        return None
    return int(found["id"]), str(found["sex"]), found["birth_date"]


async def _import_group(run: Run, group: Group) -> None:
    if group.patient is None and all(e.type in REFERENCE_DATA for e in group.entries):
        for line in await _import_reference(run, group):
            run.report.add(line)
        return
    if group.patient is None:
        await _import_known_patient_resources(run, group)
        return
    try:
        async with write_transaction():
            lines = await _import_patient(run, group)
    except Skip as reason:
        _skip_group(run, group, str(reason))
        return
    except Exception as error:
        _skip_group(
            run, group, f"not imported, nothing of this patient written: {type(error).__name__}"
        )
        return
    for line in lines:
        run.report.add(line)


def _skip_group(run: Run, group: Group, reason: str) -> None:
    assert group.patient is not None
    run.report.add(ReportLine("Patient", group.patient.id, "skipped", reason))
    for entry in group.entries[1:]:
        run.report.add(ReportLine(entry.type, entry.id, "skipped", "its patient was not imported"))


async def _import_known_patient_resources(run: Run, group: Group) -> None:
    """Resources whose Patient is not beside them (NDJSON, or a broken reference): each
    patient's share in one transaction, matched to an earlier import's patient."""
    by_patient: dict[str, list[Entry]] = {}
    for entry in group.entries:
        by_patient.setdefault(_patient_reference(entry.resource), []).append(entry)
    for reference, entries in by_patient.items():
        found = await _patient_by_reference(run, reference)
        if found is None:
            for entry in entries:
                reason = (
                    f"{entry.type} is not kept by the portal"
                    if entry.type not in KEPT
                    else "refers to a patient that is neither in this import nor imported before"
                )
                run.report.add(ReportLine(entry.type, entry.id, "skipped", reason))
            continue
        facts = PatientFacts(*found)
        written = Written(hidden=_confidential_refs(entries))
        try:
            async with write_transaction():
                lines = [
                    await _import_one(run, entry, facts, written)
                    for entry in sorted(entries, key=lambda e: ORDER.get(e.type, 99))
                ]
        except Exception as error:
            lines = [
                ReportLine(e.type, e.id, "skipped", f"not imported: {type(error).__name__}")
                for e in entries
            ]
        for line in lines:
            run.report.add(line)


def _ndjson_order(path: Path) -> int:
    """Bulk data comes one file per type: patients and reference data first."""
    name = path.name.split(".")[0]
    return ORDER.get(name, 50)


async def fhir_import(
    paths: Iterable[Path],
    *,
    source: str = DEFAULT_SOURCE,
    on_line: Callable[[ReportLine], None] | None = None,
    keep_lines: bool = True,
    batch_lines: int = BATCH_LINES,
) -> ImportReport:
    """Import the files (bundles as .json, bulk data as .ndjson); the report."""
    report = ImportReport(on_line=on_line, keep_lines=keep_lines)
    run = Run(source=source, report=report, started=utcnow())
    files = sorted(paths, key=lambda p: (_is_ndjson(p), _ndjson_order(p) if _is_ndjson(p) else 0))
    for path in files:
        if _is_ndjson(path):
            batch: list[Entry] = []
            for entry in _ndjson_entries(path, report):
                batch.append(entry)
                if len(batch) >= batch_lines:
                    await _import_batch(run, batch)
                    batch = []
            if batch:
                await _import_batch(run, batch)
        else:
            await _import_batch(run, _bundle_entries(path, report))
        run.seen.clear()
    return report


async def _import_batch(run: Run, entries: list[Entry]) -> None:
    for group in _groups(entries):
        await _import_group(run, group)
