"""Rate limits on sign-in and enrollment attempts, per IP address (an IPv6 /64), or any key.

Fixed windows: a counter per (rule, key, window) that starts at zero when the window starts.
Simple and cheap; a burst at a window's edge may reach twice the limit, which is fine for
slowing guessing down. Counters live in Redis when PORTAL_REDIS_URL is set, so every app
process sees the same numbers, else in this process. Keys hold an HMAC of the key, never a
raw IP address. If Redis fails, counting goes on in the process rather than failing requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.clock import utcnow
from app.db import write_transaction
from app.services.audit import audit_anonymous
from app.settings import get_settings

log = logging.getLogger(__name__)

KEY_PREFIX = "portal:rl:"
# Redis keeps a counter a little past its window, so clocks a few seconds apart still agree.
EXPIRY_SLACK_SECONDS = 60
# A slow or unreachable Redis must not hold a sign-in up for long.
REDIS_TIMEOUT_SECONDS = 0.5
# After a Redis failure, count in the process for this long before asking Redis again.
REDIS_RETRY_SECONDS = 30.0
# The in-process counters stay bounded even when a flood comes from many addresses.
MAX_MEMORY_ENTRIES = 50_000
MEMORY_PRUNE_SECONDS = 60.0


@dataclass(frozen=True)
class RateRule:
    name: str
    limit: int
    window: timedelta


# A family, a clinic kiosk or a shared address (clinic Wi-Fi, a carrier's NAT) may enroll
# several people with a typo or two each; guessing dates of birth across many links is not.
# (Each link also dies after five wrong dates.)
ENROLL_PER_IP = RateRule("enroll_ip", 20, timedelta(hours=1))
# A passkey cannot be guessed; this only stops floods of signature checks. Generous, because
# a whole waiting room may sign in from the clinic's one address.
PASSKEY_SIGN_IN_PER_IP = RateRule("passkey_sign_in_ip", 60, timedelta(minutes=15))
# Joining from the clinic poster creates a request for staff to handle: a few per address.
JOIN_PER_IP = RateRule("join_ip", 10, timedelta(hours=1))
# Six-digit codes: each code allows five tries, and this caps guesses over many codes.
CODE_CHECK_PER_IP = RateRule("code_check_ip", 30, timedelta(hours=1))


def rate_key(ip: str) -> str:
    """What per-address limits count under: an IPv4 address, or an IPv6 address's /64.

    One home or phone gets a whole /64 and can pick any address in it, so counting single
    IPv6 addresses would give each client billions of fresh allowances."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class _MemoryCounters:
    """Counters in this process: key -> (count, expires at, epoch seconds)."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._counts: dict[str, tuple[int, float]] = {}
        self._next_prune = 0.0

    def hit(self, key: str, now: float, expires_at: float, amount: int = 1) -> int:
        if now >= self._next_prune:
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            self._next_prune = now + MEMORY_PRUNE_SECONDS
        count, stored_expiry = self._counts.pop(key, (0, expires_at))
        if stored_expiry <= now:
            count = 0
        self._counts[key] = (count + amount, expires_at)  # re-inserted: stays in LRU order
        while len(self._counts) > self._max_entries:
            del self._counts[next(iter(self._counts))]  # the least recently counted key goes
        return count + amount

    def clear(self) -> None:
        self._counts.clear()
        self._next_prune = 0.0

    def __len__(self) -> int:
        return len(self._counts)


class RateLimiter:
    """Counts hits in Redis when given a URL (shared by every process), else in memory."""

    def __init__(
        self, *, secret: str, redis_url: str = "", max_entries: int = MAX_MEMORY_ENTRIES
    ) -> None:
        self._secret = secret.encode()
        self._redis_url = redis_url
        self.memory = _MemoryCounters(max_entries)
        # One client per event loop: its connections belong to the loop that opened them.
        self._client: Redis | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._redis_retry_at: float | None = None  # set while Redis is failing

    def redis_key(self, rule: RateRule, key: str, window_index: int) -> str:
        digest = hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{KEY_PREFIX}{rule.name}:{digest}:{window_index}"

    async def hit(self, rule: RateRule, key: str, amount: int = 1) -> int:
        """Count `amount` hits (0: only look) and return the count so far in the current
        window."""
        window = int(rule.window.total_seconds())
        now = utcnow().timestamp()
        index = int(now // window)
        redis_key = self.redis_key(rule, key, index)
        if self._redis_url and self._redis_usable():
            try:
                count = await self._redis_hit(redis_key, window + EXPIRY_SLACK_SECONDS, amount)
            except (RedisError, OSError) as error:
                self._redis_failed(error)
            else:
                if self._redis_retry_at is not None:
                    log.info("Rate limit counters are back in Redis")
                    self._redis_retry_at = None
                return count
        return self.memory.hit(redis_key, now, float((index + 1) * window), amount)

    async def allow(self, rule: RateRule, key: str) -> bool:
        return await self.hit(rule, key) <= rule.limit

    def _redis_usable(self) -> bool:
        return self._redis_retry_at is None or time.monotonic() >= self._redis_retry_at

    def _redis_failed(self, error: Exception) -> None:
        if self._redis_retry_at is None:
            # The error's type only: its text may carry the server address.
            log.warning(
                "Redis is unavailable for rate limit counters (%s); counting in this process",
                type(error).__name__,
            )
        self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS

    def _redis(self) -> Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = Redis.from_url(
                self._redis_url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                # One quick retry covers a dropped idle connection; more would hold requests.
                retry=Retry(NoBackoff(), 1),
            )
            self._client_loop = loop
        return self._client

    async def _redis_hit(self, key: str, expire_seconds: int, amount: int = 1) -> int:
        async with self._redis().pipeline(transaction=True) as pipe:
            pipe.incrby(key, amount)
            pipe.expire(key, expire_seconds)
            count, _ = await pipe.execute()
        return int(count)

    async def reset(self) -> None:
        """Forget every count (tests): in memory, and this app's keys in Redis."""
        self.memory.clear()
        self._redis_retry_at = None
        if not self._redis_url:
            return
        try:
            client = self._redis()
            keys = [key async for key in client.scan_iter(match=f"{KEY_PREFIX}*", count=500)]
            if keys:
                await client.delete(*keys)
        except (RedisError, OSError) as error:
            self._redis_failed(error)

    async def close(self) -> None:
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.aclose()


_limiter: RateLimiter | None = None


def _default_limiter() -> RateLimiter:
    global _limiter
    if _limiter is None:
        settings = get_settings()
        _limiter = RateLimiter(secret=settings.secret_key, redis_url=settings.redis_url)
    return _limiter


async def rate_limit_allow(rule: RateRule, key: str) -> bool:
    """Count one hit for (rule, key); False once the window's count is over the limit."""
    return await _default_limiter().allow(rule, key)


async def rate_limit_over(rule: RateRule, key: str) -> bool:
    """Whether (rule, key) has already reached its limit in this window (counts nothing)."""
    return await _default_limiter().hit(rule, key, 0) >= rule.limit


async def rate_limit_count(rule: RateRule, key: str) -> None:
    """Count one hit for (rule, key), for rate_limit_over to see."""
    await _default_limiter().hit(rule, key)


async def rate_limit_ip(rule: RateRule, *, ip: str, user_agent: str) -> bool:
    """Count one attempt from this address; False when it is over the limit.

    The first refusal in a window is audited; later ones are not, so a flood of attempts
    does not become a flood of database writes."""
    count = await _default_limiter().hit(rule, rate_key(ip))
    if count <= rule.limit:
        return True
    if count == rule.limit + 1:
        async with write_transaction():
            await audit_anonymous(action="auth.rate_limited", ip=ip, user_agent=user_agent)
    return False


async def rate_limit_reset() -> None:
    """Forget every count (tests)."""
    await _default_limiter().reset()


async def rate_limit_close() -> None:
    """Close the Redis connections (app shutdown)."""
    if _limiter is not None:
        await _limiter.close()
