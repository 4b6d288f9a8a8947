"""``safe_text()``: untrusted text as a Textual ``Content``, the only way it reaches a widget.

Textual's ``Static`` and ``Label`` parse markup by default: ``[@click=app.quit]x[/]`` in a device
name becomes a clickable action and ``[/]`` raises ``MarkupError``. ``Content`` built from a plain
string is never parsed, and ``pipeconsole.text.sanitize`` has already made controls, ESC
sequences, bidi overrides and zero-width characters visible (Textual strips only a few of them).

Use it for every externally sourced string; to style around untrusted parts, build the pieces
with ``safe_text`` and join them (``Content.assemble``) or use ``Content.from_markup(template,
name=value)`` where the *template* is ours and the values are substituted literally.
"""

from __future__ import annotations

from textual.content import Content

from pipeconsole.text import sanitize

__all__ = ["safe_text"]


def safe_text(
    value: str | bytes, *, style: str = "", max_len: int = 512, multiline: bool = False
) -> Content:
    """``value`` sanitized, as plain ``Content``; ``style`` is ours, never from the input."""
    text = sanitize(value, max_len=max_len, multiline=multiline)
    if style:
        return Content.styled(text, style)
    return Content(text)
