"""Python logging -> the console's log view (librdkafka logs arrive here via the kafka package).

A TUI owns the terminal: a log line written to stderr would corrupt the screen. While the app
runs, :class:`UiLogHandler` sits on the root logger and turns records into
:class:`~pipeconsole.ui.messages.LogRecorded` messages (``post_message`` is thread-safe, so
reader threads may log freely). The record text stays raw; the log view sanitizes it.
"""

from __future__ import annotations

import logging
from typing import Protocol

from pipeconsole.ui.messages import LogRecorded

__all__ = ["UiLogHandler"]


class _Poster(Protocol):
    def post_message(self, message: LogRecorded) -> bool: ...


class UiLogHandler(logging.Handler):
    """Posts every record at INFO or above to the app."""

    def __init__(self, app: _Poster, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.app = app

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            self.app.post_message(
                LogRecorded(int(record.created * 1000), record.levelname, record.name, text)
            )
        except Exception:  # a log call must never take the caller down
            self.handleError(record)
