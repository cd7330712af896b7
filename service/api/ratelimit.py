"""Per-key rate limiting: one in-memory token bucket per API key (per process).

A bucket holds up to ``per_minute`` tokens and refills at ``per_minute / 60`` tokens a second, so a client may
burst up to a minute's allowance and then sustain the rate. A request takes one token; an empty bucket answers
with the seconds until the next token (the ``Retry-After`` of the 429).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter", "TokenBucket"]


class TokenBucket:
    """A token bucket.

    Args:
        capacity: the most tokens it holds (the burst).
        rate: tokens added per second.
        clock: monotonic time source (seconds).
    """

    def __init__(self, capacity: float, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity <= 0 or rate <= 0:
            raise ValueError(f"capacity and rate must be positive, got capacity={capacity}, rate={rate}")
        self.capacity = float(capacity)
        self.rate = float(rate)
        self._clock = clock
        self.tokens = float(capacity)
        self._stamp = clock()

    def take(self, n: float = 1.0) -> float:
        """Take ``n`` tokens; returns 0.0 on success, else the seconds to wait before ``n`` are available."""
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate


class RateLimiter:
    """Token buckets by key, created on first use.

    Args:
        per_minute: requests a key may make per minute (also the burst); 0 or less disables limiting.
        clock: monotonic time source (seconds).
        max_keys: buckets kept before the fullest (idle) ones are dropped.
    """

    def __init__(
        self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000
    ) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def check(self, key: str, n: float = 1.0) -> int:
        """Take ``n`` tokens for ``key``: 0 if allowed, else the whole seconds to wait (≥ 1) for ``Retry-After``.

        A request whose work is several rankings (a region shortlist, an export) takes one token per ranking.
        """
        if not self.enabled or n <= 0:
            return 0
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._evict()
                bucket = self._buckets[key] = TokenBucket(
                    self.per_minute, self.per_minute / 60.0, self._clock
                )
            wait = bucket.take(min(n, self.per_minute))
        return 0 if wait == 0 else max(1, math.ceil(wait))

    def remaining(self, key: str) -> int:
        """Whole tokens left for ``key`` (the full allowance for an unseen key)."""
        with self._lock:
            bucket = self._buckets.get(key)
            return self.per_minute if bucket is None else int(bucket.tokens)

    def _evict(self) -> None:
        full = sorted(self._buckets, key=lambda k: -self._buckets[k].tokens)[: max(1, self._max_keys // 10)]
        for k in full:
            del self._buckets[k]
