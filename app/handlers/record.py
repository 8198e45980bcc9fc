"""The Health record: medications, allergies, immunizations (printable), problems and visit
summaries with their documents, each read through the patient context (a caregiver's scope
and a teenager's confidential items apply there, in the services)."""

from __future__ import annotations

from typing import Any

from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Response, Template

from app.access import PatientContext
from app.handlers.support import NO_STORE, file_response, page
from app.services.record import (
    record_document_open,
    record_immunizations,
    record_overview,
    record_summary,
    record_visit_open,
)
from app.services.record.fhir_export import record_export
from app.web.guards import account_signed_in


@get("/", name="record")
async def overview(context: NamedDependency[PatientContext]) -> Template:
    return page(
        "record/record.html", context=context, tab="record", record=await record_overview(context)
    )


@get("/immunizations", name="record_immunizations")
async def immunizations(context: NamedDependency[PatientContext]) -> Template:
    return page(
        "record/immunizations.html",
        context=context,
        tab="record",
        immunizations=await record_immunizations(context),
    )


@get("/visits/{visit_id:str}", name="record_visit")
async def visit(context: NamedDependency[PatientContext], visit_id: FromPath[str]) -> Template:
    return page(
        "record/visit.html",
        context=context,
        tab="record",
        visit=await record_visit_open(context, visit_id),
    )


@get("/documents/{document_id:str}", name="record_document")
async def document(
    context: NamedDependency[PatientContext], document_id: FromPath[str]
) -> Response[Any]:
    found, data = await record_document_open(context, document_id)
    return file_response(found, data)


@get("/summary", name="record_summary")
async def summary(context: NamedDependency[PatientContext]) -> Template:
    summary = await record_summary(context)
    return page(
        "record/summary.html",
        context=context,
        tab="record",
        record=summary.record,
        results=summary.results,
    )


@get("/download", name="record_download")
async def download(context: NamedDependency[PatientContext]) -> Response[bytes]:
    return Response(
        await record_export(context),
        media_type="application/fhir+json",
        headers={
            **NO_STORE,
            "Content-Disposition": 'attachment; filename="health-record.json"',
            "X-Content-Type-Options": "nosniff",
        },
    )


router = Router(
    "/record",
    guards=[account_signed_in],
    route_handlers=[overview, immunizations, visit, document, summary, download],
)
