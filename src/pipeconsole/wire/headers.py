"""Kafka header names of our own that more than one part reads or writes."""

from __future__ import annotations

from typing import Final

__all__ = ["DLQ_PREFIX"]

DLQ_PREFIX: Final = "pipeconsole.dlq."
"""What the device actors add to a dead-lettered record (``pipeconsole.actors.dlq``: source
topic, partition, offset, code, reason, ...), and what the console's model reads back."""
