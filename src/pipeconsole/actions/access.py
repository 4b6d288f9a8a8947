"""Who may do what: read-only profiles and roles (DESIGN §6).

This is a client-side guard that the TUI and the CLI share (they both go through
:func:`check` in the action layer), so a read-only profile cannot act from either. The real
enforcement sits below the console: Kafka ACLs on the topics and the device actors' token
check (:mod:`pipeconsole.actions.sign`).

Roles, in increasing power (``config.ROLES``):

=========  =========================================================
viewer     reads only: every write path is refused
operator   schedule, cancel, replay
chaos      everything an operator may do, plus chaos experiments
=========  =========================================================

A refusal is a value (:class:`Refusal`) with a message an operator can act on; the action layer
audits it like any other action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from pipeconsole.config import Profile

__all__ = ["ACTIONS", "Action", "Refusal", "allowed_actions", "check"]

Action = Literal["schedule", "cancel", "replay", "chaos.run"]
"""Every write path of the console."""

ACTIONS: Final[tuple[Action, ...]] = ("schedule", "cancel", "replay", "chaos.run")

_GRANTS: Final[dict[str, frozenset[str]]] = {
    "viewer": frozenset(),
    "operator": frozenset({"schedule", "cancel", "replay"}),
    "chaos": frozenset({"schedule", "cancel", "replay", "chaos.run"}),
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """An action that the profile does not allow, and why."""

    action: str
    code: Literal["read_only", "role"]
    """``read_only``: the profile is read-only; ``role``: the role does not grant the action."""
    message: str
    """One line for the operator: what was refused, why, and what would allow it."""


def check(profile: Profile, action: Action) -> Refusal | None:
    """None when ``profile`` may perform ``action``; otherwise the :class:`Refusal`."""
    if profile.read_only:
        return Refusal(
            action,
            "read_only",
            f"profile {profile.name!r} is read-only: {action} is refused "
            "(set read_only = false in the profile to act)",
        )
    granted = _GRANTS.get(profile.role, frozenset())
    if action not in granted:
        needed = "chaos" if action.startswith("chaos") else "operator or chaos"
        return Refusal(
            action,
            "role",
            f"profile {profile.name!r} has role {profile.role!r}, which may not {action} "
            f"(needs role {needed})",
        )
    return None


def allowed_actions(profile: Profile) -> frozenset[str]:
    """The actions a profile may perform (what a UI should offer at all)."""
    return frozenset(a for a in ACTIONS if check(profile, a) is None)
