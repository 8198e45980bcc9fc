"""Staff roles and what each may do in the clinic console (docs/security.md: access by role).

Later features add their permissions here, so one table answers "who may do what". The
console's route groups enforce it with one guard each (app/web/guards.py: staff_permission);
pages ask `staff_may` only to leave out what a role cannot use.
"""

from __future__ import annotations

from app.errors import NotPermittedError
from app.i18n import N_

ROLE_LABELS: dict[str, str] = {
    "front_desk": N_("Front desk"),
    "nurse": N_("Nurse"),
    "clinician": N_("Clinician"),
    "billing": N_("Billing"),
    "admin": N_("Administrator"),
    # Runs the clinic's outreach (campaigns, What's new) and reads its monthly dashboard.
    "manager": N_("Practice manager"),
}
ROLES = tuple(ROLE_LABELS)

_EVERYONE = frozenset(ROLES)
# Those who answer patients' messages: everyone but the practice manager.
_CARE = _EVERYONE - {"manager"}
PERMISSIONS: dict[str, frozenset[str]] = {
    # Find a patient and see who they are (not their health data).
    "patients.search": _EVERYONE,
    # Send or show an enrollment link: the people who meet patients.
    "patients.invite": frozenset({"front_desk", "nurse", "clinician", "admin"}),
    # Follow up on people who scanned a poster and matched no record.
    "join_requests": frozenset({"front_desk", "admin"}),
    # Invite a minor's parent or guardian (after checking the relationship), end a grant.
    "grants.manage": frozenset({"front_desk", "nurse", "admin"}),
    "posters": frozenset({"front_desk", "admin"}),
    # Read held and new results, add the care team's note, release a held result.
    "results.review": frozenset({"nurse", "clinician", "admin"}),
    # Search the audit trail: who looked at which record, when, from where.
    "audit.search": frozenset({"admin"}),
    # Texts, emails and pushes that could not be delivered (the dead letters).
    "deliveries": frozenset({"front_desk", "admin"}),
    # The day's visits (who is coming, confirmed, cancelled, booked where).
    "scheduling": frozenset({"front_desk", "admin"}),
    # What can be booked: appointment types, clinicians' weekly hours, blocked time.
    "scheduling.inventory": frozenset({"admin"}),
    # Bills: find an account, read its ledger, post an adjustment, refund a payment.
    "billing": frozenset({"billing", "admin"}),
    # The demo clinic's outgoing texts and emails (demo mode only).
    "outbox": frozenset({"front_desk", "admin"}),
    # The message queue: every role answers at least one pool (the pools below).
    "messages": _CARE,
    # Patients' messages: each pool is answered by the roles that can answer its topic.
    "messages.pool.clinical": frozenset({"nurse", "clinician", "admin"}),
    "messages.pool.refills": frozenset({"nurse", "clinician", "admin"}),
    "messages.pool.front_desk": frozenset({"front_desk", "admin"}),
    "messages.pool.billing": frozenset({"billing", "admin"}),
    # Approve or deny a refill: the prescriber's decision.
    "messages.refills.decide": frozenset({"clinician"}),
    # Mark a conversation as documented in the chart, with a short note.
    "messages.document": frozenset({"clinician"}),
    # Keep the reply templates (placeholders for the patient's first name, the clinic phone).
    "messages.templates": frozenset({"admin"}),
    # Outreach campaigns (segments, templates, schedule, results) and "What's new" notes.
    "campaigns": frozenset({"manager", "admin"}),
    # The demo's stand-in for a phone: send a text to the clinic as a number (demo only).
    "texts.simulate": frozenset({"front_desk", "manager", "admin"}),
    # The clinic's monthly figures, retention and survey comments; reminding invited patients.
    "dashboard": frozenset({"admin", "manager"}),
}
# The message pools, in the order the queue lists them.
MESSAGE_POOLS = ("clinical", "refills", "front_desk", "billing")


def staff_may(role: str, permission: str) -> bool:
    return role in PERMISSIONS.get(permission, frozenset())


def staff_require(role: str, permission: str) -> None:
    if not staff_may(role, permission):
        raise NotPermittedError(permission)


def staff_pools(role: str) -> tuple[str, ...]:
    """The message pools this role answers (every role answers at least one)."""
    return tuple(pool for pool in MESSAGE_POOLS if staff_may(role, f"messages.pool.{pool}"))
