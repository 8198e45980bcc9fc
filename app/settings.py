"""Settings: one frozen dataclass read once from PORTAL_* environment variables.

Every variable has a safe default for the embedded mode (SQLite under ./var, one process).
Secrets that are not given are generated once into the data directory, never committed.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

SQLITE_PREFIX = "sqlite:///"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _networks(name: str) -> tuple[IPNetwork, ...]:
    """Addresses and CIDR blocks, separated by commas or spaces."""
    networks = []
    for item in os.environ.get(name, "").replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as error:
            raise ValueError(f"{name}: {item!r} is not an IP address or CIDR block") from error
    return tuple(networks)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    base_url: str
    secret_key: str
    vapid_private_key: str
    push_hosts: tuple[str, ...]
    demo: bool
    debug: bool
    log_level: str
    session_idle_minutes: int
    staff_session_idle_minutes: int
    proxy_adolescent_age: int
    proxy_adult_age: int
    result_hold_hours: int
    outbox_keep_days: int
    result_hold_loincs: frozenset[str]
    session_max_hours: int
    embedded_worker: bool
    sms_provider: str
    twilio_account_sid: str
    twilio_auth_token: str
    twilio_from: str
    twilio_base_url: str
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: str
    smtp_starttls: bool
    email_from: str
    redis_url: str
    audit_seal_max_seconds: int
    sms_countries: tuple[str, ...] = ("US",)
    caregiver_invites_open: int = 5
    caregiver_invites_per_day: int = 10
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # Bills: who takes card payments (demo | stripe), and Stripe's keys and address.
    payment_processor: str = "demo"
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_base_url: str = "https://api.stripe.com"
    currency: str = "usd"
    # Invited patients who have not joined after this many days get a reminder (at most
    # follow_up_max of them, one per wait); the worker sends them itself when follow_up_auto.
    follow_up_days: int = 7
    follow_up_max: int = 1
    follow_up_auto: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith(SQLITE_PREFIX)

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file; a relative path is read against the working directory."""
        return Path(self.database_url.removeprefix(SQLITE_PREFIX))

    @property
    def origin(self) -> str:
        """scheme://host[:port] of the public address: what WebAuthn checks."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def rp_id(self) -> str:
        """The WebAuthn relying party: the host name passkeys are bound to."""
        return urlsplit(self.base_url).hostname or "localhost"

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")


def make_private_dir(path: Path) -> None:
    """Create a folder only this user can open (0700): it holds the database and secrets.
    A folder that already exists keeps its mode: it may be shared on purpose."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _new_vapid_key() -> str:
    """A P-256 key for Web Push (VAPID), as PEM: made once, kept, so subscriptions last."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _load_or_create_secrets(data_dir: Path) -> dict[str, str]:
    """Read ./var/secrets.json, creating it (mode 0600) with fresh random values if missing."""
    path = data_dir / "secrets.json"
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    missing = {
        "secret_key": lambda: secrets.token_urlsafe(32),
        "vapid_private_key": _new_vapid_key,
    }
    fresh = {name: make() for name, make in missing.items() if name not in stored}
    if fresh:
        stored.update(fresh)
        make_private_dir(data_dir)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2)
    return stored


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("PORTAL_DATA_DIR", "var"))
    database_url = os.environ.get("PORTAL_DATABASE_URL") or f"{SQLITE_PREFIX}{data_dir}/portal.db"
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url.removeprefix("postgres://")
    env_secret = os.environ.get("PORTAL_SECRET_KEY")
    env_vapid = os.environ.get("PORTAL_VAPID_PRIVATE_KEY", "").replace("\\n", "\n")
    stored = {} if env_secret and env_vapid else _load_or_create_secrets(data_dir)
    secret_key = env_secret or stored["secret_key"]
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        base_url=os.environ.get("PORTAL_BASE_URL", "http://localhost:8000").rstrip("/"),
        secret_key=secret_key,
        vapid_private_key=env_vapid or stored["vapid_private_key"],
        # Web Push endpoints we deliver to: the browsers' push services (our server makes
        # these requests, so it must not post to any address a client names).
        push_hosts=tuple(
            host.strip().lower()
            for host in os.environ.get(
                "PORTAL_PUSH_HOSTS",
                "fcm.googleapis.com,updates.push.services.mozilla.com,"
                ".push.apple.com,.notify.windows.com",
            ).split(",")
            if host.strip()
        ),
        demo=_flag("PORTAL_DEMO", False),
        debug=_flag("PORTAL_DEBUG", False),
        log_level=os.environ.get("PORTAL_LOG_LEVEL", "INFO").upper(),
        session_idle_minutes=_int("PORTAL_SESSION_IDLE_MINUTES", 15),
        # Staff screens sit on shared desks: a shorter idle time (docs/security.md).
        staff_session_idle_minutes=_int("PORTAL_STAFF_SESSION_IDLE_MINUTES", 10),
        # The proxy ages (docs/security.md): a guardian's access narrows at one, ends at the other.
        proxy_adolescent_age=_int("PORTAL_PROXY_ADOLESCENT_AGE", 12),
        proxy_adult_age=_int("PORTAL_PROXY_ADULT_AGE", 18),
        # Results go out when final (Cures Act); a clinic may hold chosen tests (by LOINC,
        # pathology by default) so a clinician can call first. Empty means no holds.
        result_hold_hours=_int("PORTAL_RESULT_HOLD_HOURS", 72),
        # Delivered (or abandoned) messages are deleted after this many days; their text is
        # already removed when they finish.
        outbox_keep_days=max(_int("PORTAL_OUTBOX_KEEP_DAYS", 30), 1),
        result_hold_loincs=frozenset(
            code.strip()
            for code in os.environ.get(
                "PORTAL_RESULT_HOLD_LOINCS", "11526-1,22637-3,60568-3"
            ).split(",")
            if code.strip()
        ),
        session_max_hours=_int("PORTAL_SESSION_MAX_HOURS", 12),
        # The embedded default delivers the outbox inside the server; production runs
        # `portal worker` processes instead.
        embedded_worker=_flag("PORTAL_EMBEDDED_WORKER", database_url.startswith(SQLITE_PREFIX)),
        sms_provider=os.environ.get("PORTAL_SMS_PROVIDER", "console").strip().lower(),
        twilio_account_sid=os.environ.get("PORTAL_TWILIO_ACCOUNT_SID", ""),
        twilio_auth_token=os.environ.get("PORTAL_TWILIO_AUTH_TOKEN", ""),
        twilio_from=os.environ.get("PORTAL_TWILIO_FROM", ""),
        twilio_base_url=os.environ.get("PORTAL_TWILIO_BASE_URL", "https://api.twilio.com"),
        smtp_host=os.environ.get("PORTAL_SMTP_HOST", ""),
        smtp_port=_int("PORTAL_SMTP_PORT", 587),
        smtp_username=os.environ.get("PORTAL_SMTP_USERNAME", ""),
        smtp_password=os.environ.get("PORTAL_SMTP_PASSWORD", ""),
        smtp_starttls=_flag("PORTAL_SMTP_STARTTLS", True),
        email_from=os.environ.get("PORTAL_EMAIL_FROM", "portal@localhost"),
        # Rate limit counters shared by every app process; unset keeps them in each process.
        redis_url=os.environ.get("PORTAL_REDIS_URL", "").strip(),
        # Countries whose phone numbers a patient may have the clinic text (ISO codes).
        sms_countries=tuple(
            code.strip().upper()
            for code in os.environ.get("PORTAL_SMS_COUNTRIES", "US").split(",")
            if code.strip()
        ),
        # Caps on the invitations one account may send, so no one can use the clinic's
        # number to spam or run up its bill: waiting at once, and sent in a day.
        caregiver_invites_open=_int("PORTAL_CAREGIVER_INVITES_OPEN", 5),
        caregiver_invites_per_day=_int("PORTAL_CAREGIVER_INVITES_PER_DAY", 10),
        # Audit rows are sealed into the hash chain about a second after they are written;
        # /healthz and `portal audit verify` report when the oldest waits longer than this.
        audit_seal_max_seconds=_int("PORTAL_AUDIT_SEAL_MAX_SECONDS", 60),
        # Proxies whose X-Forwarded-For/-Proto we believe; none by default, so a client
        # cannot pick the address its attempts are counted under.
        trusted_proxies=_networks("PORTAL_TRUSTED_PROXIES"),
        # Card payments: the demo processor (test card numbers, no money moves) unless
        # Stripe is chosen and given its keys; its address is settable for tests.
        payment_processor=os.environ.get("PORTAL_PAYMENT_PROCESSOR", "demo").strip().lower(),
        stripe_secret_key=os.environ.get("PORTAL_STRIPE_SECRET_KEY", ""),
        stripe_webhook_secret=os.environ.get("PORTAL_STRIPE_WEBHOOK_SECRET", ""),
        stripe_base_url=os.environ.get("PORTAL_STRIPE_BASE_URL", "https://api.stripe.com"),
        currency=os.environ.get("PORTAL_CURRENCY", "usd").strip().lower(),
        follow_up_days=max(_int("PORTAL_FOLLOW_UP_DAYS", 7), 1),
        follow_up_max=max(_int("PORTAL_FOLLOW_UP_MAX", 1), 0),
        follow_up_auto=_flag("PORTAL_FOLLOW_UP_AUTO", False),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
