"""The console's hands: one :class:`~pipeconsole.actions.layer.ActionLayer`, used from worker
threads only, one action at a time.

The layer blocks (broker acks, window reads), so the UI never calls it on its own thread except
for :meth:`Operator.prepare`, which only builds and validates (no I/O). The layer is built on
first use by an injectable factory (tests pass one with a temporary outbox and audit log);
:meth:`close` flushes its producer when the app unmounts. A console connected to Kafka settles,
at start, what an earlier one left in the outbox (:meth:`reconcile_earlier`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from pipeconsole.actions import access
from pipeconsole.actions.layer import ActionLayer, ScheduleSpec, Sender
from pipeconsole.actions.outbox import Reconciled
from pipeconsole.config import Profile
from pipeconsole.wire.validate import FieldError

__all__ = ["LayerFactory", "Operator"]

T = TypeVar("T")

LayerFactory = Callable[[Profile], ActionLayer]
"""Builds the action layer for a profile (the seam for tests)."""


def default_layer(profile: Profile) -> ActionLayer:
    return ActionLayer(profile, send_timeout_s=10.0)


class Operator:
    """Serialises the console's actions on one lazily built action layer."""

    def __init__(self, profile: Profile, make_layer: LayerFactory | None = None) -> None:
        self.profile = profile
        self._make_layer = make_layer or default_layer
        self._layer: ActionLayer | None = None
        self._lock = threading.Lock()
        """One action at a time: the layer's outbox and producer are shared."""
        self._build_lock = threading.RLock()

    @property
    def layer(self) -> ActionLayer:
        with self._build_lock:
            if self._layer is None:
                self._layer = self._make_layer(self.profile)
            return self._layer

    def producer(self) -> Sender:
        """The layer's confirming producer (built now if needed); thread-safe. The chaos
        runner shares it for its events and protocol traffic."""
        with self._build_lock:
            return self.layer.sender

    def check(self, action: access.Action) -> access.Refusal | None:
        """Whether the profile may act at all (no I/O; the layer refuses and audits again)."""
        return access.check(self.profile, action)

    def prepare(self, spec: ScheduleSpec) -> list[FieldError]:
        """The validator's field errors for ``spec`` (build only: safe on the UI thread)."""
        _req, errors = self.layer.prepare(spec)
        return errors

    def run(self, job: Callable[[ActionLayer], T]) -> T:
        """Run ``job`` on the layer, one at a time. Call from a worker thread only."""
        with self._lock:
            return job(self.layer)

    def reconcile_earlier(self) -> list[Reconciled]:
        """Settle the actions an earlier console journalled but never saw acknowledged (it was
        killed mid-send): read the topics and mark each delivered or not. Worker thread only;
        nothing to do (and no I/O) when the outbox has no open entry for this cluster."""
        with self._lock:
            layer = self.layer
            if not layer.outbox.open_entries(self.profile.bootstrap):
                return []
            return layer.reconcile(timeout_s=max(10.0, layer.send_timeout_s))

    def close(self) -> None:
        with self._build_lock:
            layer, self._layer = self._layer, None
        if layer is not None:
            layer.close()
