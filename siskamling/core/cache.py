"""Short-lived copies, per process, of small rows that report intake reads on every request and
that change rarely: a category, a routing rule's answer, the deadline policy's version, an intake
client's key. A change made through this process clears them at once (``clear_all``, called by
the services that change them); other processes see it within ``TTL_S`` seconds.

Values are kept as they were loaded: callers store plain values or copies detached from any
session, never ORM objects that a session may expire or lazy-load later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

TTL_S = 2.0
MAX_ENTRIES = 10_000  # unknown keys are remembered too (a client trying bad keys): cleared when this many

T = TypeVar("T")
_all: list[Recent] = []
_all_lock = threading.Lock()


class Recent:
    def __init__(self, ttl_s: float = TTL_S) -> None:
        self.ttl_s = ttl_s
        self._data: dict[Any, tuple[float, Any]] = {}
        with _all_lock:
            _all.append(self)

    def get(self, key: Any, load: Callable[[], T]) -> T:
        now = time.monotonic()
        hit = self._data.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        if len(self._data) >= MAX_ENTRIES:
            self._data.clear()
        self._data[key] = (now + self.ttl_s, value)
        return value

    def forget(self, key: Any) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()


def clear_all() -> None:
    """Forget every kept value in this process (a category, rule, policy or client changed)."""
    with _all_lock:
        for cache in _all:
            cache.clear()


def db_key(db_session) -> str:
    """The database a session reads, as part of a cache key (tests use several)."""
    return str(db_session.get_bind().engine.url)
