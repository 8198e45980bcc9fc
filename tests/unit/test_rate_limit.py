"""Rate limits: fixed windows in memory or in Redis, shared by processes, never raw addresses."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.clock import set_clock
from app.services import rate_limit
from app.services.rate_limit import (
    KEY_PREFIX,
    RateLimiter,
    RateRule,
    rate_key,
    rate_limit_allow,
    rate_limit_ip,
    rate_limit_reset,
)
from tests.factories import unique

REDIS_URL = "redis://127.0.0.1:6379/15"
CLOSED_PORT_URL = "redis://127.0.0.1:1/15"
IP = "203.0.113.7"
START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
async def fresh_limits() -> AsyncIterator[None]:
    await rate_limit_reset()
    yield
    await rate_limit_reset()


@pytest.fixture
def rule() -> RateRule:
    """A rule of its own per test, so counts never carry over."""
    return RateRule(unique("test-rule-"), 3, timedelta(minutes=10))


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except (RedisError, OSError):
        await client.aclose()
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not running at {REDIS_URL}")
        pytest.skip(f"Redis is not running at {REDIS_URL}")
    yield client
    keys = [key async for key in client.scan_iter(match=f"{KEY_PREFIX}test-rule-*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def at(moment: datetime) -> None:
    set_clock(lambda: moment)


async def test_memory_allows_up_to_the_limit_then_refuses(rule: RateRule) -> None:
    at(START)
    assert [await rate_limit_allow(rule, IP) for _ in range(4)] == [True, True, True, False]
    assert await rate_limit_allow(rule, "198.51.100.9")  # another address has its own count


async def test_a_new_window_allows_again(rule: RateRule) -> None:
    at(START + timedelta(minutes=9))
    for _ in range(3):
        assert await rate_limit_allow(rule, IP)
    assert not await rate_limit_allow(rule, IP)
    at(START + timedelta(minutes=10))
    assert await rate_limit_allow(rule, IP)


async def test_the_same_key_under_another_rule_counts_apart(rule: RateRule) -> None:
    at(START)
    other = RateRule(unique("test-rule-"), 1, timedelta(minutes=10))
    for _ in range(3):
        assert await rate_limit_allow(rule, IP)
    assert await rate_limit_allow(other, IP)
    assert not await rate_limit_allow(other, IP)


async def test_memory_counters_stay_bounded(rule: RateRule) -> None:
    limiter = RateLimiter(secret="s", max_entries=100)
    at(START)
    for number in range(250):
        await limiter.hit(rule, f"10.0.{number // 256}.{number % 256}")
    assert len(limiter.memory) == 100
    # Once their window has passed, old counters go at the next prune.
    at(START + timedelta(hours=1))
    await limiter.hit(rule, IP)
    assert len(limiter.memory) == 1


async def test_processes_share_counts_through_redis(redis: Redis, rule: RateRule) -> None:
    one = RateLimiter(secret="shared-secret", redis_url=REDIS_URL)
    two = RateLimiter(secret="shared-secret", redis_url=REDIS_URL)
    try:
        at(START)
        assert await one.allow(rule, IP)
        assert await two.allow(rule, IP)
        assert await one.allow(rule, IP)
        assert not await two.allow(rule, IP)
        assert not await one.allow(rule, IP)
        assert len(one.memory) == len(two.memory) == 0  # nothing counted in process
        at(START + timedelta(minutes=10))
        assert await two.allow(rule, IP)
    finally:
        await one.close()
        await two.close()


async def test_redis_keys_hold_no_raw_address(redis: Redis, rule: RateRule) -> None:
    limiter = RateLimiter(secret="shared-secret", redis_url=REDIS_URL)
    try:
        await limiter.hit(rule, IP)
    finally:
        await limiter.close()
    keys = [key.decode() async for key in redis.scan_iter(match=f"{KEY_PREFIX}{rule.name}:*")]
    assert len(keys) == 1
    assert IP not in keys[0]
    _, _, name, digest, _ = keys[0].split(":")
    assert name == rule.name
    assert len(digest) == 32
    ttl = await redis.ttl(keys[0])
    assert 0 < ttl <= rule.window.total_seconds() + 60


async def test_a_closed_redis_falls_back_to_memory_and_warns_once(
    rule: RateRule, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RateLimiter(secret="s", redis_url=CLOSED_PORT_URL)
    at(START)
    try:
        with caplog.at_level(logging.WARNING, logger=rate_limit.__name__):
            results = [await limiter.allow(rule, IP) for _ in range(4)]
    finally:
        await limiter.close()
    assert results == [True, True, True, False]
    warnings = [r for r in caplog.records if r.name == rate_limit.__name__]
    assert len(warnings) == 1
    assert IP not in warnings[0].getMessage()
    assert "127.0.0.1" not in warnings[0].getMessage()


async def test_ipv6_addresses_count_by_their_64(rule: RateRule) -> None:
    at(START)
    for host in range(1, 4):
        assert await rate_limit_ip(rule, ip=f"2001:db8:aa:bb::{host}", user_agent="t")
    # A fresh address from the same /64 is the same client, not a fresh allowance.
    assert not await rate_limit_ip(rule, ip="2001:db8:aa:bb:1234:5678:9abc:def0", user_agent="t")
    assert await rate_limit_ip(rule, ip="2001:db8:aa:bc::1", user_agent="t")
    # IPv4 addresses stay whole, also when written as IPv4-mapped IPv6.
    assert rate_key("203.0.113.7") == "203.0.113.7"
    assert rate_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert rate_key("2001:db8:aa:bb:1:2:3:4") == "2001:db8:aa:bb::/64"
