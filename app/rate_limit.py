"""Per-subject rate limits that hold across server workers.

The algorithm is GCRA (the generic cell rate algorithm, a leaky bucket kept as one number):
for each subject we store the "theoretical arrival time" (TAT) of its next request. A
request of cost n is allowed if TAT + n·interval − now ≤ burst; it then moves TAT on by
n·interval. Why GCRA rather than INCR+EXPIRE windows: one key per subject and bucket, one
atomic step, no burst of twice the limit at a window's edge, and the exact wait
(`retry_after`) falls out of the same arithmetic.

With Redis (REDIS_URL) the step is one Lua script, atomic on the server, and it reads the
server's clock (TIME), so workers on several machines with skewed clocks agree. Without
Redis an in-process dict does the same arithmetic: limits then hold per worker only, which
is right for development and tests and says so in the log at start.

If Redis cannot be reached the limiter falls back to the in-process one, never to no limit:
each worker then holds the limits on its own, which bounds a caller at most `workers` times
the limit rather than not at all. The outage is logged once, at warning, when it starts (and
at info when it ends), each check made in process is counted in
`socialwallet_rate_limit_unavailable_total`, and `/readyz` shows `"degraded"`. During an
outage Redis is tried again at most every few seconds, so a hanging server does not add
its timeout to every request; short socket timeouts bound the tries themselves.

Subjects are keyed by an HMAC of the caller's subject (an IIN for citizens), so Redis holds
no personal data.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from app.settings import Settings

# The buckets are named where they are charged, at the GraphQL edge; their limits are here.
from graphql_schema.rate_limits import (
    MERCHANT_MUTATIONS,
    MUTATIONS,
    PRESCRIPTION_LOOKUPS,
    QR_TOKENS,
)

log = structlog.get_logger("socialwallet.rate_limit")

# KEYS[1] the subject's key; ARGV: interval (µs per unit), burst capacity (µs), cost.
# Returns {allowed 0/1, retry_after µs}. Times are microseconds from Redis' own clock.
GCRA_LUA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + cost * interval
local wait = new_tat - now - burst
if wait > 0 then
  return {0, wait}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
"""


@dataclass(frozen=True, slots=True)
class Limit:
    """`count` requests per `period_seconds`, all of them usable at once (the burst)."""

    count: int
    period_seconds: float

    @property
    def interval_us(self) -> int:
        return max(1, int(self.period_seconds * 1_000_000 / self.count))

    @property
    def burst_us(self) -> int:
        return self.interval_us * self.count


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_seconds: int  # whole seconds, rounded up; 0 when allowed


class RateLimiter(Protocol):
    async def hit(self, *, bucket: str, subject: str, cost: int = 1) -> Decision: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...


def _decision(allowed: bool, wait_us: float) -> Decision:
    return Decision(allowed, 0 if allowed else max(1, math.ceil(wait_us / 1_000_000)))


class _Keys:
    def __init__(self, *, key: bytes, prefix: str, limits: dict[str, Limit]) -> None:
        self._key = key
        self.prefix = prefix
        self.limits = limits

    def limit(self, bucket: str) -> Limit:
        try:
            return self.limits[bucket]
        except KeyError:
            raise ValueError(f"no rate limit bucket named {bucket!r}") from None

    def key(self, bucket: str, subject: str) -> str:
        digest = hmac.new(self._key, subject.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{self.prefix}{bucket}:{digest}"


class InProcessRateLimiter(_Keys):
    """GCRA in this process's memory (one worker's view; for development and tests)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._tat: dict[str, float] = {}

    async def hit(self, *, bucket: str, subject: str, cost: int = 1) -> Decision:
        # No await between the read and the write: on one event loop this is atomic.
        limit = self.limit(bucket)
        key = self.key(bucket, subject)
        now = time.monotonic() * 1_000_000
        tat = max(self._tat.get(key, now), now)
        new_tat = tat + cost * limit.interval_us
        wait = new_tat - now - limit.burst_us
        if wait > 0:
            return _decision(False, wait)
        self._tat[key] = new_tat
        if len(self._tat) > 100_000:  # forget subjects whose bucket has drained
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        return _decision(True, 0)

    async def healthy(self) -> bool:
        """Always: nothing outside this process to lose."""
        return True

    async def close(self) -> None:
        return None


class RedisRateLimiter(_Keys):
    """GCRA in Redis: one atomic script per hit, shared by every worker; in this process's
    memory while Redis cannot be reached (see the module's docstring)."""

    def __init__(
        self,
        *,
        redis,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self._redis = redis
        self._script = redis.register_script(GCRA_LUA)
        self._fallback = InProcessRateLimiter(**kwargs)
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._outage_until: float | None = None  # None: Redis answers; else the next try

    @property
    def degraded(self) -> bool:
        """Whether limits are held in process because Redis could not be reached."""
        return self._outage_until is not None

    async def hit(self, *, bucket: str, subject: str, cost: int = 1) -> Decision:
        from redis.exceptions import RedisError

        limit = self.limit(bucket)
        if self._outage_until is None or self._clock() >= self._outage_until:
            try:
                allowed, wait = await self._script(
                    keys=[self.key(bucket, subject)],
                    args=[limit.interval_us, limit.burst_us, cost],
                )
            except (RedisError, OSError) as exc:
                self._unreachable(exc)
            else:
                self._reachable()
                return _decision(bool(allowed), float(wait))
        from app.metrics import RATE_LIMIT_UNAVAILABLE

        RATE_LIMIT_UNAVAILABLE.inc()
        return await self._fallback.hit(bucket=bucket, subject=subject, cost=cost)

    async def healthy(self) -> bool:
        """Ping Redis (unless an outage's next try is not due yet); False while degraded."""
        from redis.exceptions import RedisError

        if self._outage_until is not None and self._clock() < self._outage_until:
            return False
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            self._unreachable(exc)
            return False
        self._reachable()
        return True

    def _unreachable(self, exc: BaseException) -> None:
        if self._outage_until is None:  # once per outage, not once per request
            log.warning(
                "rate_limit.redis_unavailable",
                error=type(exc).__name__,
                fallback="in-process limits: they hold per worker until Redis answers",
            )
        self._outage_until = self._clock() + self._retry_seconds

    def _reachable(self) -> None:
        if self._outage_until is not None:
            log.info("rate_limit.redis_available", note="limits are shared across workers again")
        self._outage_until = None

    async def close(self) -> None:
        await self._redis.aclose()


def limits_from_settings(settings: Settings) -> dict[str, Limit]:
    """The named buckets: every mutation (a merchant's staff tokens have their own, larger
    one), QR-token issuance (vouchers) and a pharmacy's prescription lookups."""
    return {
        MUTATIONS: Limit(settings.rate_limit_mutations_per_minute, 60),
        MERCHANT_MUTATIONS: Limit(settings.rate_limit_merchant_mutations_per_minute, 60),
        QR_TOKENS: Limit(settings.rate_limit_qr_tokens_per_minute, 60),
        PRESCRIPTION_LOOKUPS: Limit(settings.rate_limit_prescription_lookups_per_minute, 60),
    }


def build_rate_limiter(settings: Settings, *, prefix: str = "sw:rl:") -> RateLimiter:
    """Redis-backed when REDIS_URL is set, else in-process."""
    common: dict[str, Any] = {
        "key": settings.audit_key,
        "prefix": prefix,
        "limits": limits_from_settings(settings),
    }
    if settings.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return RedisRateLimiter(redis=redis, **common)
    log.info("rate_limit.in_process", reason="REDIS_URL is not set: limits hold per worker")
    return InProcessRateLimiter(**common)
