"""Retry rules: a retry budget, backoff with full jitter, and deadline arithmetic.

- :class:`RetryBudget` is a token bucket in the style of Finagle's ``RetryBudget`` and gRPC's
  retry throttling: every request deposits ``ratio`` tokens, a retry withdraws one, and a small
  floor refills ``min_per_s`` tokens per second so that a quiet service can still retry once in
  a while. With the defaults, retries add at most about 10% to the load a failing device sees,
  however many attempts each request may make.
- :func:`full_jitter` is AWS's "full jitter" backoff: uniform in ``[0, min(cap, base·2ⁿ)]``.
- :class:`Deadline` turns an absolute deadline into what is left of the budget *now*, the only
  number an attempt's timeout may use.

Pure logic with an injectable clock; no I/O, unit-tested with plain objects.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Deadline", "RetryBudget", "RetryPolicy", "full_jitter"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a request is retried."""

    default_max_attempts: int = 3
    """Attempts when the request's QoS says 0."""
    max_attempts_cap: int = 5
    """No request may ask for more attempts than this."""
    backoff_base_s: float = 0.05
    """First backoff ceiling; doubles per attempt."""
    backoff_cap_s: float = 2.0
    """Largest backoff ceiling."""

    def attempts_for(self, requested: int) -> int:
        """Attempts allowed for a request whose QoS asks for ``requested`` (0 = default)."""
        wanted = requested if requested > 0 else self.default_max_attempts
        return max(1, min(wanted, self.max_attempts_cap))


def full_jitter(
    attempt: int, base_s: float, cap_s: float, rng: Callable[[], float] = random.random
) -> float:
    """Backoff before retry number ``attempt`` (1 = before the second attempt)."""
    ceiling = min(cap_s, base_s * 2.0 ** max(0, attempt - 1))
    return ceiling * rng()


class RetryBudget:
    """A token bucket of retries: deposits per request, withdrawals per retry.

    Not thread-safe; it lives on the event loop.
    """

    def __init__(
        self,
        ratio: float = 0.1,
        min_per_s: float = 0.2,
        max_tokens: float = 100.0,
        *,
        clock: Callable[[], float],
    ) -> None:
        if ratio < 0 or min_per_s < 0 or max_tokens <= 0:
            raise ValueError("ratio and min_per_s must be >= 0 and max_tokens > 0")
        self.ratio = ratio
        """Tokens each request deposits (0.1: retries may add 10% to the load)."""
        self.min_per_s = min_per_s
        """Floor: tokens added per second whatever the traffic."""
        self.max_tokens = max_tokens
        """Bucket size: how many retries a burst of failures may spend at once."""
        self._clock = clock
        self._tokens = 0.0
        self._last = clock()
        self.withdrawn = 0
        """Retries granted so far."""
        self.refused = 0
        """Retries refused because the bucket was empty."""

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self.max_tokens, self._tokens + elapsed * self.min_per_s)

    def deposit(self) -> None:
        """One request started: it earns the service ``ratio`` of a retry."""
        self._refill()
        self._tokens = min(self.max_tokens, self._tokens + self.ratio)

    def try_withdraw(self) -> bool:
        """Take one retry if the budget has it."""
        self._refill()
        # A tiny epsilon so that ten deposits of 0.1 make one whole token despite rounding.
        if self._tokens >= 1.0 - 1e-9:
            self._tokens = max(0.0, self._tokens - 1.0)
            self.withdrawn += 1
            return True
        self.refused += 1
        return False

    @property
    def tokens(self) -> float:
        """Retries left in the bucket now."""
        self._refill()
        return self._tokens


@dataclass(frozen=True, slots=True)
class Deadline:
    """An absolute deadline on a monotonic clock."""

    at: float
    """Monotonic seconds at which the budget is spent."""

    def remaining(self, now: float) -> float:
        """Seconds left (negative when passed)."""
        return self.at - now

    def remaining_ms(self, now: float) -> int:
        """Whole milliseconds left, never negative: the value of ``X-Deadline-Remaining-Ms``."""
        return max(0, int((self.at - now) * 1000))

    def passed(self, now: float) -> bool:
        return now >= self.at
