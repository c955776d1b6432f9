"""Reads that tolerate lag go to a PostgreSQL streaming replica; a caller's own writes stay
visible to that caller.

- `DATABASE_REPLICA_URL` names one or more standbys (comma-separated). `ReplicaSet.refresh`
  asks each, every `REPLICA_CHECK_INTERVAL_SECONDS`, how far it has replayed the primary's
  WAL (`pg_last_wal_replay_lsn()`); one that cannot be reached, or lags the primary by more
  than `REPLICA_MAX_LAG_SECONDS`, is skipped until it catches up, and `/readyz` says so.
- **Read-your-writes.** After a caller's mutation commits, the primary's current WAL position
  is remembered for that caller (`WriteMarks`: in Redis when `REDIS_URL` is set, so every API
  process behind the load balancer knows it; in the process otherwise). The caller's reads
  stay on the primary until a replica has replayed past that position. The positions a
  replica reports are read before the mark can be compared, so an old reading only ever
  sends a read to the primary, never a read to a replica that lacks the write.
- Everything that writes, and every read inside a mutation, uses the primary: the router
  only ever hands out a replica for a query's lag-tolerant reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.metrics import READ_ROUTING

log = structlog.get_logger(__name__)

# The primary's position, and each replica's replayed position and the age of the last
# transaction it replayed (which measures lag only while the primary is writing).
PRIMARY_POSITION = text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
REPLICA_POSITION = text(
    "SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn, "
    "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
)
# A write whose position could not be read: past any replica's, so the caller reads on the
# primary until the mark expires.
UNKNOWN_WRITE_POSITION = 2**62


@dataclass
class Replica:
    """One standby and what its last check found."""

    name: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    replayed: int | None = None  # WAL position (bytes) replayed at the last check
    lag_seconds: float | None = None
    healthy: bool = False
    problem: str | None = "not checked yet"
    reads: int = 0  # reads routed here by this process


@dataclass
class WriteMarks:
    """Each caller's last write position, shared through Redis when there is one.

    The key is an HMAC of the caller's subject (an IIN for a citizen): Redis never holds one.
    A mark outlives any lag a replica may have and still be used (`ttl_seconds`).
    """

    key: bytes
    ttl_seconds: int
    redis: Any = None  # redis.asyncio.Redis
    _local: dict[str, tuple[int, float]] = field(default_factory=dict)

    # Keep the larger position: two processes may mark the same caller out of order.
    _KEEP_MAX = """
    local current = tonumber(redis.call('GET', KEYS[1]) or '0')
    if tonumber(ARGV[1]) > current then
      redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
    else
      redis.call('EXPIRE', KEYS[1], ARGV[2])
    end
    return 1
    """

    def _name(self, caller: str) -> str:
        digest = hmac.new(self.key, caller.encode(), hashlib.sha256).hexdigest()[:32]
        return f"socialwallet:rw:{digest}"

    async def mark(self, caller: str, position: int) -> None:
        """Remember that `caller` wrote up to `position`."""
        name = self._name(caller)
        if self.redis is not None:
            try:
                await self.redis.eval(self._KEEP_MAX, 1, name, position, self.ttl_seconds)
                return
            except Exception as exc:  # Redis away: this process still remembers
                log.warning("replicas.mark_unshared", error=type(exc).__name__)
        old = self._local.get(name, (0, 0.0))[0]
        self._local[name] = (max(old, position), time.monotonic() + self.ttl_seconds)

    async def position(self, caller: str) -> int:
        """The caller's last write position, 0 if none is remembered."""
        name = self._name(caller)
        local, expires = self._local.get(name, (0, 0.0))
        if expires < time.monotonic():
            local = 0
        if self.redis is not None:
            try:
                shared = await self.redis.get(name)
                return max(local, int(shared or 0))
            except Exception:
                # Without the shared mark the replica may lack the caller's write: be safe.
                return 2**63
        return local


class ReplicaSet:
    """The replicas of this process, their health, and the choice for each read."""

    def __init__(
        self,
        *,
        primary: AsyncEngine,
        replicas: list[Replica],
        marks: WriteMarks,
        max_lag_seconds: float,
    ) -> None:
        self.primary = primary
        self.replicas = replicas
        self.marks = marks
        self.max_lag_seconds = max_lag_seconds
        self._turn = itertools.count()

    async def refresh(self) -> None:
        """Check every replica once (position, lag, reachable)."""
        try:
            async with self.primary.connect() as connection:
                primary_at = int(await connection.scalar(PRIMARY_POSITION))
        except Exception:
            primary_at = None
        for replica in self.replicas:
            await self._check(replica, primary_at)

    async def _check(self, replica: Replica, primary_at: int | None) -> None:
        try:
            async with asyncio.timeout(2):
                async with replica.engine.connect() as connection:
                    row = (await connection.execute(REPLICA_POSITION)).one()
        except Exception as exc:
            was = replica.healthy
            replica.healthy, replica.problem = False, f"unreachable ({type(exc).__name__})"
            if was:
                log.warning("replicas.down", replica=replica.name, error=type(exc).__name__)
            return
        replica.replayed = int(row[0]) if row[0] is not None else None
        caught_up = (
            primary_at is not None
            and replica.replayed is not None
            and (replica.replayed >= primary_at)
        )
        replica.lag_seconds = 0.0 if caught_up else float(row[1] or 0.0)
        if replica.replayed is None:
            replica.healthy, replica.problem = False, "not a standby"
        elif replica.lag_seconds > self.max_lag_seconds:
            replica.healthy = False
            replica.problem = f"lags {replica.lag_seconds:.1f} s"
        else:
            if not replica.healthy:
                log.info("replicas.up", replica=replica.name)
            replica.healthy, replica.problem = True, None

    async def run(self, stop: asyncio.Event, interval_seconds: float) -> None:
        """Refresh until `stop` is set."""
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("replicas.refresh_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_seconds)

    async def choose(self, caller: str | None) -> Replica | None:
        """A healthy replica that has replayed the caller's last write, or None (primary)."""
        healthy = [replica for replica in self.replicas if replica.healthy]
        if not healthy:
            READ_ROUTING.labels(target="primary").inc()
            return None
        needed = await self.marks.position(caller) if caller else 0
        ready = [r for r in healthy if r.replayed is not None and r.replayed >= needed]
        if not ready:
            READ_ROUTING.labels(target="primary").inc()
            return None
        replica = ready[next(self._turn) % len(ready)]
        replica.reads += 1
        READ_ROUTING.labels(target=replica.name).inc()
        return replica

    async def mark_write(self, caller: str) -> None:
        """After `caller`'s mutation committed: its reads wait for the replicas to catch up."""
        async with self.primary.connect() as connection:
            position = int(await connection.scalar(PRIMARY_POSITION))
        await self.marks.mark(caller, position)

    def status(self) -> list[dict[str, Any]]:
        """What /readyz shows of each replica."""
        return [
            {
                "replica": replica.name,
                "healthy": replica.healthy,
                "lagSeconds": replica.lag_seconds,
                "problem": replica.problem,
            }
            for replica in self.replicas
        ]


def replica_set_from_settings(
    settings: Any, *, primary: AsyncEngine, redis: Any = None
) -> ReplicaSet | None:
    """The replicas DATABASE_REPLICA_URL names (None without any), each with its own pool."""
    from app.db import create_engine

    urls = settings.replica_urls
    if not urls:
        return None
    replicas = []
    for number, url in enumerate(urls, start=1):
        engine = create_engine(settings.model_copy(update={"database_url": url}))
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        replicas.append(Replica(f"replica-{number}", engine, sessions))
    # A mark must outlive the largest lag at which a replica is still used.
    ttl = max(60, int(settings.replica_max_lag_seconds * 4))
    return ReplicaSet(
        primary=primary,
        replicas=replicas,
        marks=WriteMarks(key=settings.audit_key, ttl_seconds=ttl, redis=redis),
        max_lag_seconds=settings.replica_max_lag_seconds,
    )


async def dispose(replicas: ReplicaSet) -> None:
    """Close every replica's pool."""
    for replica in replicas.replicas:
        await replica.engine.dispose()
