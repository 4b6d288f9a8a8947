"""ExecuteCommand: the attempts of one DeviceRequest against its device, under its deadline.

Every attempt's timeout is what is left of the request's budget when it starts — never a fixed
number — and no attempt starts once the deadline has passed. Each attempt carries
``X-Request-Id`` (the idempotency key), ``X-Deadline-Remaining-Ms`` and ``X-Attempt``.

Retries happen only for answers that may succeed later (connection refused or reset, 429, 500,
502, 503, a 504 that is not the device's own deadline refusal), and only while all three hold:
attempts left (QoS ``max_attempts``, capped), time left before the deadline after the backoff,
and a token in the shared :class:`~pipeconsole.actors.retry.RetryBudget`. Backoff is full
jitter. The result is an :class:`ExecResult`: outcome, last status, attempts and why.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

import aiohttp
from yarl import URL

from pipeconsole.actors.http import NO_CEIL as _NO_CEIL
from pipeconsole.actors.http import read_capped
from pipeconsole.actors.retry import Deadline, RetryBudget, RetryPolicy, full_jitter
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse

__all__ = ["MAX_RESPONSE_BYTES", "ExecResult", "Executor"]

MAX_RESPONSE_BYTES = 1024 * 1024
"""Response entities are digested up to this size, then the rest is ignored."""

_RETRIABLE = frozenset({429, 500, 502, 503, 504})

Outcome: TypeAlias = DeviceResponse.Outcome.ValueType


@dataclass(frozen=True, slots=True)
class ExecResult:
    outcome: Outcome
    status_code: int
    """HTTP status of the last attempt; 0 when no answer."""
    attempts: int
    """Attempts started."""
    reason: str
    entity_digest: str = ""
    duplicate: bool = False
    """The device answered ``X-Duplicate: 1``: it had executed this request id before."""


@dataclass(frozen=True, slots=True)
class _Try:
    status: int
    reason: str
    retriable: bool
    digest: str = ""
    duplicate: bool = False
    deadline_refused: bool = False


class Executor:
    """Runs requests' attempts. One per service; shares the retry budget.

    The HTTP session is passed per call; the service keeps one :class:`aiohttp.ClientSession`
    whose connector bounds connections overall (``limit``) and per device
    (``limit_per_host``: every device has its own host:port). httpx was replaced because
    httpcore scans every pooled connection on each request (75 % of the CPU in the profile)."""

    def __init__(
        self,
        budget: RetryBudget,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float],
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._budget = budget
        self._policy = policy
        self._clock = clock
        self._rng = rng
        self.attempts_started = 0
        """Attempts started by this executor (all requests)."""

    async def execute(
        self,
        session: aiohttp.ClientSession,
        *,
        url: str,
        method: str,
        headers: Mapping[str, str],
        content: bytes,
        content_type: str,
        request_id: str,
        deadline: Deadline,
        max_attempts: int,
        on_attempt: Callable[[int], None] | None = None,
    ) -> ExecResult:
        """Attempt until success, a final answer, or a limit; never raises."""
        allowed = self._policy.attempts_for(max_attempts)
        self._budget.deposit()
        attempt = 0
        last: _Try | None = None
        while True:
            now = self._clock()
            if deadline.passed(now):
                why = "deadline passed before the first attempt"
                if last is not None:
                    why = f"deadline passed after attempt {attempt} ({last.reason})"
                return ExecResult(
                    DeviceResponse.DEADLINE_EXCEEDED, last.status if last else 0, attempt, why
                )
            attempt += 1
            self.attempts_started += 1
            if on_attempt is not None:
                on_attempt(attempt)
            last = await self._attempt(
                session, url, method, headers, content, content_type, request_id, deadline, attempt
            )
            if last.status and 200 <= last.status < 300:
                return ExecResult(
                    DeviceResponse.OK,
                    last.status,
                    attempt,
                    "duplicate: the device returned its first result" if last.duplicate else "",
                    last.digest,
                    last.duplicate,
                )
            if last.deadline_refused or deadline.passed(self._clock()):
                return ExecResult(
                    DeviceResponse.DEADLINE_EXCEEDED, last.status, attempt, last.reason
                )
            if not last.retriable:
                return ExecResult(DeviceResponse.FAILED, last.status, attempt, last.reason)
            if attempt >= allowed:
                return ExecResult(
                    DeviceResponse.FAILED,
                    last.status,
                    attempt,
                    f"{last.reason}; no attempts left ({allowed})",
                )
            pause = full_jitter(
                attempt, self._policy.backoff_base_s, self._policy.backoff_cap_s, self._rng
            )
            if deadline.remaining(self._clock()) <= pause:
                return ExecResult(
                    DeviceResponse.DEADLINE_EXCEEDED,
                    last.status,
                    attempt,
                    f"{last.reason}; no time left for a retry",
                )
            if not self._budget.try_withdraw():
                return ExecResult(
                    DeviceResponse.FAILED,
                    last.status,
                    attempt,
                    f"{last.reason}; retry budget exhausted",
                )
            await asyncio.sleep(pause)

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        url: str,
        method: str,
        headers: Mapping[str, str],
        content: bytes,
        content_type: str,
        request_id: str,
        deadline: Deadline,
        attempt: int,
    ) -> _Try:
        now = self._clock()
        left = deadline.remaining(now)
        send = dict(headers)
        if content_type:
            send["Content-Type"] = content_type
        send["X-Request-Id"] = request_id
        send["X-Deadline-Remaining-Ms"] = str(deadline.remaining_ms(now))
        send["X-Attempt"] = str(attempt)
        try:
            # The ClientTimeout bounds the whole attempt: connecting, sending and reading the
            # body (aiohttp checks its timer on every read), so it is the only timer needed.
            async with session.request(
                method,
                URL(url, encoded=True),
                headers=send,
                data=content or None,
                timeout=aiohttp.ClientTimeout(total=left, ceil_threshold=_NO_CEIL),
                allow_redirects=False,
            ) as resp:
                status = resp.status
                dup = resp.headers.get("X-Duplicate") == "1"
                # At most MAX_RESPONSE_BYTES are read; a longer body closes the connection.
                body, complete = await read_capped(resp.content, MAX_RESPONSE_BYTES)
                if not complete:
                    resp.close()
            if 200 <= status < 300:
                return _Try(status, "", False, hashlib.sha256(body).hexdigest(), dup)
            refused = status == 504 and b"deadline" in body[:4096]
            return _Try(
                status,
                f"HTTP {status}" + (" (device refused: deadline)" if refused else ""),
                status in _RETRIABLE and not refused,
                deadline_refused=refused,
            )
        except TimeoutError:  # includes aiohttp.ServerTimeoutError
            return _Try(0, f"no answer within the remaining {left * 1000:.0f} ms", False)
        except (
            aiohttp.ClientConnectionError,  # refused, reset, server disconnected
            aiohttp.ClientPayloadError,  # body cut short
        ) as exc:
            return _Try(0, f"{type(exc).__name__}: {_why(exc)}", True)
        except aiohttp.ClientError as exc:
            return _Try(0, f"{type(exc).__name__}: {_why(exc)}", False)
        except Exception as exc:  # nothing from the network may raise through the loop
            return _Try(0, f"{type(exc).__name__}: {_why(exc)}", False)


def _why(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:200]
