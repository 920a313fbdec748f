"""Short-lived copies, per process, of small rows that report intake reads on every request and
that change rarely: a category, a routing rule's answer, the deadline policy's version, an intake
client's key. A change made through this process counts here as soon as it is committed (the
service that makes it calls ``changed``); other processes see it within ``TTL_S`` seconds.

- Only what was found is kept: a miss (an unknown category code, a bad key) is looked up again.
- A value loaded while a change was being committed is not kept (a generation counter).
- A session that made such a change in its open transaction reads past the caches and fills none
  of them: its uncommitted rows must not reach other requests.
- Callers keep plain values or copies detached from any session, never ORM objects that a
  session may expire or lazy-load later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

TTL_S = 2.0
MAX_ENTRIES = 10_000
CHANGED = "siskamling_cache_changed"  # session.info: this transaction changed cached rows
ON_COMMIT = "siskamling_on_commit"  # session.info: callables to run once the transaction committed

T = TypeVar("T")
_all: list[Recent] = []
_lock = threading.Lock()
_generation = 0


class Recent:
    def __init__(self, ttl_s: float = TTL_S) -> None:
        self.ttl_s = ttl_s
        self._data: dict[Any, tuple[float, Any]] = {}
        with _lock:
            _all.append(self)

    def get(self, key: Any, load: Callable[[], T], db_session: Session | None = None) -> T:
        """The kept value, or ``load()``'s (kept for ``ttl_s`` unless it is None, a change was
        committed meanwhile, or ``db_session`` changed cached rows in its open transaction)."""
        if db_session is not None and db_session.info.get(CHANGED):
            return load()
        now = time.monotonic()
        hit = self._data.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = _generation
        value = load()
        if value is not None and generation == _generation:
            if len(self._data) >= MAX_ENTRIES:
                for stale in [k for k, (until, _v) in list(self._data.items()) if until <= now]:
                    self._data.pop(stale, None)
                if len(self._data) >= MAX_ENTRIES:
                    self._data.clear()
            self._data[key] = (now + self.ttl_s, value)
        return value

    def clear(self) -> None:
        self._data.clear()


def clear_all() -> None:
    """Forget every kept value in this process."""
    global _generation
    with _lock:
        _generation += 1
        for cache in _all:
            cache.clear()


def changed(db_session: Session) -> None:
    """This transaction changes a category, rule, unit, policy or client: forget the kept values
    now and again once it commits (a request that read the old row meanwhile keeps nothing), and
    let this session read past the caches until then."""
    db_session.info[CHANGED] = True
    clear_all()


def on_commit(db_session: Session, fn: Callable[[], None]) -> None:
    """Run ``fn`` once this session's transaction has committed (never if it rolls back)."""
    db_session.info.setdefault(ON_COMMIT, []).append(fn)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(CHANGED, False):
        clear_all()
    for fn in session.info.pop(ON_COMMIT, []):
        fn()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous) -> None:
    if not session.in_transaction():  # the whole transaction, not a savepoint inside it
        session.info.pop(CHANGED, None)
        session.info.pop(ON_COMMIT, None)


def db_key(db_session) -> str:
    """The database a session reads, as part of a cache key (tests use several)."""
    return str(db_session.get_bind().engine.url)
