"""The `portal` command: demo, serve, worker, invite, create-staff, poster, migrate, seed-demo,
audit verify, import-fhir."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

import app  # noqa: F401  (sets PICCOLO_CONF before Piccolo looks for it)
from app.settings import Settings, get_settings

log = logging.getLogger("portal")


async def _migrate() -> None:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from app.db import prepare_sqlite_file

    prepare_sqlite_file(get_settings())
    result = await run_forwards(app_name="portal")
    if not result.success:
        raise SystemExit(f"Migration failed: {result.message}")
    await _minors_own_grants_checked()


async def _minors_own_grants_checked() -> None:
    """Accounts older versions let a child, or a parent through a family phone, open as a
    minor's own are revoked before anyone signs in again (the worker repeats it hourly)."""
    from app.clinic import clinic_profile_load, clinic_profile_set
    from app.services.self_access import self_grants_outside_age_rules

    clinic_profile_set(await clinic_profile_load())
    ended = await self_grants_outside_age_rules()
    if ended:
        log.info("ended %d minors' own grants outside the age rules", ended)


async def _seed(reset: bool) -> bool:
    from app.services.demo.clinic import demo_clinic_seed

    return await demo_clinic_seed(reset=reset)


def cmd_migrate(_: argparse.Namespace) -> int:
    asyncio.run(_migrate())
    print("Database is up to date.")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    asyncio.run(_migrate())
    if asyncio.run(_seed(args.reset)):
        print("Seeded the demo clinic (Riverside Family Health).")
    else:
        print("The database already has data; nothing seeded. Use --reset to start over.")
    return 0


def _print_demo_links(settings: Settings, base_url: str) -> None:
    from app.services.demo.clinic import PERSONAS

    print("\nDemo sign-in links (demo mode only):")
    for persona in PERSONAS:
        print(f"  {persona.summary:<60} {base_url}/demo/sign-in/{persona.slug}")
    print(f"  {'Tom Becker, front desk (clinic console)':<60} {base_url}/demo/staff/front-desk")
    print(f"  {'Rosa Diaz, administrator (clinic console)':<60} {base_url}/demo/staff/admin")
    print(f"  {'Aisha Bello, nurse (message queue)':<60} {base_url}/demo/staff/nurse")
    print(f"  {'Dr. Ana Ruiz, clinician (refill requests)':<60} {base_url}/demo/staff/clinician")
    print(f"\nOpen {base_url} on your phone-sized browser. Ctrl+C stops the server.\n")


def _serve(host: str, port: int, workers: int, settings: Settings) -> int:
    import uvicorn

    from app.logs import uvicorn_log_config

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        # Forwarded headers are read by the app, only from PORTAL_TRUSTED_PROXIES
        # (app/security.py); uvicorn's own reading trusts whatever 127.0.0.1 sends.
        proxy_headers=False,
        server_header=False,
        log_config=uvicorn_log_config(),
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = get_settings()
    asyncio.run(_migrate())
    return _serve(args.host, args.port, args.workers, settings)


def cmd_demo(args: argparse.Namespace) -> int:
    import os

    os.environ["PORTAL_DEMO"] = "1"
    # Passkeys are bound to the address the browser sees.
    os.environ.setdefault("PORTAL_BASE_URL", f"http://localhost:{args.port}")
    get_settings.cache_clear()
    settings = get_settings()
    asyncio.run(_migrate())
    if asyncio.run(_seed(False)):
        print("Seeded the demo clinic (Riverside Family Health).")
    shown_host = "localhost" if args.host in {"127.0.0.1", "0.0.0.0"} else args.host  # noqa: S104
    _print_demo_links(settings, f"http://{shown_host}:{args.port}")
    return _serve(args.host, args.port, 1, settings)


def cmd_worker(_: argparse.Namespace) -> int:
    """Deliver the outbox until stopped (SIGTERM or Ctrl+C finish the current message)."""
    import signal

    from app.db import close_pool, open_pool
    from app.worker import channels_from_settings, run_worker

    settings = get_settings()
    channels = channels_from_settings(settings)

    async def work() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await open_pool()
        try:
            await run_worker(channels, stop)
        finally:
            await close_pool()

    asyncio.run(work())
    return 0


_SELF_ACCESS_REFUSED = {
    "child": "This patient is a child: they cannot have their own account. "
    "Invite a parent or guardian from the staff console instead.",
    "no_own_contact": "This patient is a teenager: their own account needs a phone or email "
    "marked as theirs on the staff patient page (and --via for that contact).",
    "guardian_contact": "That phone or email belongs to a parent or guardian with access; "
    "a teenager's own account needs one of their own.",
    "adult_contact": "That phone or email is also on another adult's record; "
    "a teenager's own account needs one that only they use.",
    "deceased": "This patient is recorded as deceased: no account, invitation or notice.",
}


def cmd_invite(args: argparse.Namespace) -> int:
    """Send (or print) an enrollment link for one patient."""
    from app.clinic import clinic_profile_load
    from app.errors import NotFoundError
    from app.services.enrollment import invite_create
    from app.services.self_access import SelfAccessError

    settings = get_settings()

    async def invite() -> str:
        clinic = await clinic_profile_load()
        invitation = await invite_create(
            mrn=args.patient, via=args.via, base_url=settings.base_url, clinic_name=clinic.name
        )
        return invitation.link

    try:
        link = asyncio.run(invite())
    except NotFoundError:
        print(f"No patient with MRN {args.patient}.", file=sys.stderr)
        return 1
    except SelfAccessError as refused:
        print(_SELF_ACCESS_REFUSED[refused.reason], file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"Cannot invite by {args.via}: {error}.", file=sys.stderr)
        return 1
    if args.via == "print":
        print(link)
    else:
        print(f"Invitation queued by {args.via}; it works once, for seven days.")
    return 0


def cmd_create_staff(args: argparse.Namespace) -> int:
    """Add a staff member (the first administrator, say) and print their one-time link."""
    from app.services.console.staff_auth import STAFF_LINK_LIFETIME, StaffError, staff_create

    if not args.new_link and not (args.given.strip() and args.family.strip()):
        print("A new staff member needs --given and --family names.", file=sys.stderr)
        return 2
    settings = get_settings()
    try:
        created = asyncio.run(
            staff_create(
                email=args.email,
                given_name=args.given,
                family_name=args.family,
                role=args.role,
                base_url=settings.base_url,
                new_link=args.new_link,
            )
        )
    except StaffError as error:
        problem = {
            "exists": f"{args.email} already has a staff account; add --new-link for a new link.",
            "unknown": f"No staff account for {args.email}.",
            "role": f"Unknown role {args.role}.",
        }[error.reason]
        print(problem, file=sys.stderr)
        return 2
    hours = int(STAFF_LINK_LIFETIME.total_seconds() // 3600)
    print(
        f"Sign-up link for {created.display_name} ({args.role}); it works once, for {hours} hours:"
    )
    print(created.link)
    return 0


def cmd_poster(args: argparse.Namespace) -> int:
    """Write a location's printable QR poster: patients scan it to join the portal."""
    import re
    from pathlib import Path

    from app.clinic import clinic_profile_load
    from app.services.console.posters import (
        PosterLocation,
        join_url,
        location_codes,
        poster_layout,
        poster_location,
    )
    from app.templating import poster_svg

    settings = get_settings()

    async def load() -> tuple[PosterLocation | None, str, list[str]]:
        location = await poster_location(args.location)
        if location is None:
            return None, "", await location_codes()
        return location, (await clinic_profile_load()).name, []

    location, clinic_name, known = asyncio.run(load())
    if location is None:
        listed = ", ".join(known) if known else "none yet"
        print(f"No location with code {args.location}. Known codes: {listed}.", file=sys.stderr)
        return 2
    svg = poster_svg(
        poster_layout(
            location=location, clinic_name=clinic_name, base_url=settings.base_url, size=args.size
        )
    )
    # The code is the clinic's own text: keep it from naming a folder or a hidden file.
    safe_code = re.sub(r"[^A-Za-z0-9_-]", "_", location.code)
    out = Path(args.out) if args.out else Path(f"poster-{safe_code}-{args.size}.svg")
    try:
        out.write_text(svg, encoding="utf-8")
    except OSError as error:
        print(f"Cannot write {out}: {error.strerror}.", file=sys.stderr)
        return 1
    print(f"Wrote {out}")
    print(f"Its QR code opens {join_url(settings.base_url, location.code)}")
    return 0


def cmd_audit_verify(_: argparse.Namespace) -> int:
    """Recompute the sealed audit trail's hash chain; exit 1 at the first row that does not
    fit. Rows still waiting to be sealed are counted, and flagged when they wait too long."""
    from app.clock import utcnow
    from app.services.audit import audit_verify

    result = asyncio.run(audit_verify())
    if not result.intact:
        where = "" if result.broken_at is None else f" at row {result.broken_at}"
        print(f"Audit trail broken{where}: {result.reason}.", file=sys.stderr)
        return 1
    rows = "row" if result.rows_checked == 1 else "rows"
    print(f"Audit trail intact: {result.rows_checked} sealed {rows} checked.")
    if result.last_hash:
        # Kept somewhere else, it also shows whether the newest rows were later removed.
        print(f"Newest row hash: {result.last_hash}")
    backlog = result.backlog
    age = int(backlog.age(utcnow()).total_seconds())
    print(f"Waiting to be sealed: {backlog.waiting}, the oldest for {age} seconds.")
    limit = get_settings().audit_seal_max_seconds
    if age > limit:
        print(
            f"Warning: audit rows wait longer than {limit} seconds to be sealed;"
            " is a worker running?",
            file=sys.stderr,
        )
    return 0


def cmd_import_fhir(args: argparse.Namespace) -> int:
    """Import FHIR R4 bundles (.json) and bulk-data NDJSON (.ndjson) into the record: a line
    per resource (created, updated, unchanged, skipped with the reason), then the totals."""
    from pathlib import Path

    from app.services.record.fhir_import import ReportLine, fhir_import

    paths = [Path(name) for name in args.paths]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        print(f"No such file: {', '.join(missing)}", file=sys.stderr)
        return 2

    def show(line: ReportLine) -> None:
        if not args.quiet or line.outcome == "skipped":
            print(line)

    asyncio.run(_migrate())
    report = asyncio.run(fhir_import(paths, source=args.source, on_line=show, keep_lines=False))
    outcomes = ("created", "updated", "unchanged", "skipped")
    print("Totals: " + ", ".join(f"{report.total(name)} {name}" for name in outcomes))
    print("Patients: " + ", ".join(f"{report.patients[name]} {name}" for name in outcomes))
    if not report.total("created") and not report.total("updated"):
        print("Nothing changed: every resource the portal keeps was already imported as it is.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portal", description="The patient portal.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="migrate, seed the demo clinic if empty, serve, print sign-in links"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.set_defaults(func=cmd_demo)

    serve = commands.add_parser("serve", help="migrate and serve the portal")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="app processes (PostgreSQL)")
    serve.set_defaults(func=cmd_serve)

    invite = commands.add_parser("invite", help="send or print a patient's enrollment link")
    invite.add_argument("--patient", required=True, metavar="MRN")
    invite.add_argument("--via", choices=("sms", "email", "print"), default="sms")
    invite.set_defaults(func=cmd_invite)

    from app.services.console.roles import ROLES

    staff = commands.add_parser(
        "create-staff", help="add a staff member and print their one-time passkey sign-up link"
    )
    staff.add_argument("--email", required=True)
    staff.add_argument("--given", default="", help="first name (not needed with --new-link)")
    staff.add_argument("--family", default="", help="last name (not needed with --new-link)")
    staff.add_argument("--role", choices=ROLES, default="front_desk")
    staff.add_argument(
        "--new-link", action="store_true", help="a new link for an existing staff member"
    )
    staff.set_defaults(func=cmd_create_staff)

    poster = commands.add_parser("poster", help="write a location's QR poster (SVG) to print")
    poster.add_argument("--location", required=True, metavar="CODE")
    poster.add_argument("--size", choices=("letter", "a4"), default="letter", help="paper size")
    poster.add_argument("--out", metavar="FILE", help="default: poster-CODE-SIZE.svg here")
    poster.set_defaults(func=cmd_poster)

    worker = commands.add_parser("worker", help="deliver queued SMS and email until stopped")
    worker.set_defaults(func=cmd_worker)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)

    seed = commands.add_parser("seed-demo", help="seed the demo clinic into an empty database")
    seed.add_argument("--reset", action="store_true", help="delete all data first")
    seed.set_defaults(func=cmd_seed_demo)

    imports = commands.add_parser(
        "import-fhir", help="import FHIR R4 bundles (.json) and bulk-data NDJSON (.ndjson)"
    )
    imports.add_argument("paths", nargs="+", metavar="PATH")
    imports.add_argument(
        "--source",
        default="fhir",
        help="the record system the files come from: with each resource's id it makes the key"
        " that a later import matches (a resource's meta.source wins)",
    )
    imports.add_argument("--quiet", action="store_true", help="print only skipped resources")
    imports.set_defaults(func=cmd_import_fhir)

    audit = commands.add_parser("audit", help="check the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser(
        "verify", help="recompute the hash chain; exit 1 if a row was changed or removed"
    )
    verify.set_defaults(func=cmd_audit_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=get_settings().log_level, format="%(levelname)s %(name)s %(message)s")
    # Piccolo announces the database version on every first query; not news to an operator.
    logging.getLogger("piccolo").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
