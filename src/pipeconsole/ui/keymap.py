"""Binding ids, one constructor for bindings, and remapping from the profile's keymap.

Every key the console answers to is a :class:`textual.binding.Binding` declared on the class
that owns the action, built with :func:`bind` so it always has an id, a description and a
tooltip (STYLE habit 8). Operators remap by id in their profile::

    [profiles.local.keymap]
    "app.filter" = "slash,f"
    "graph.upstream" = "U"

:func:`keymap_for` checks the ids against :data:`BINDING_IDS` and returns the map for
``App.set_keymap`` plus one warning per unknown id (shown on the log screen, never fatal).
No destructive action is bound to a common key (k9s #1121, #1391): there is none here at all.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.binding import Binding

__all__ = ["BINDING_IDS", "bind", "keymap_for"]

BINDING_IDS: dict[str, str] = {}
"""Every binding id declared through :func:`bind` -> its description."""


def bind(
    key: str,
    action: str,
    description: str,
    binding_id: str,
    *,
    tooltip: str = "",
    show: bool = True,
    priority: bool = False,
    key_display: str | None = None,
) -> Binding:
    """A binding with a stable id (for the keymap) and a description (for help and footer)."""
    BINDING_IDS[binding_id] = description
    return Binding(
        key,
        action,
        description,
        show=show,
        priority=priority,
        tooltip=tooltip or description,
        id=binding_id,
        key_display=key_display,
    )


def keymap_for(keymap: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Split the profile's keymap into the usable part and warnings about unknown ids."""
    usable: dict[str, str] = {}
    warnings: list[str] = []
    for binding_id, keys in keymap.items():
        if binding_id not in BINDING_IDS:
            warnings.append(f"keymap: unknown binding id {binding_id!r} ignored")
        elif not keys.strip():
            warnings.append(f"keymap: {binding_id!r} has no keys; ignored")
        else:
            usable[binding_id] = keys
    return usable, warnings
