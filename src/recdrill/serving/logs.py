"""The server's log output, scrubbed of e-mail addresses and phone numbers before it is written.

uvicorn configures handlers for its own loggers (``uvicorn``, ``uvicorn.error``, ``uvicorn.access``)
and none for the root logger, so recdrill's warnings would reach stderr through Python's last-resort
handler, which no filter can be attached to. :func:`install_log_scrubbing` therefore gives the
``recdrill`` logger a stderr handler of its own when nothing else would write its records, and puts
a :class:`~recdrill.data.pseudonymise.ScrubbingFilter` and a :class:`ScrubbingFormatter` on every
handler of those loggers. The filter scrubs the message (so every later handler sees the scrubbed
record); the formatter scrubs the whole written line, tracebacks included, which the filter cannot.

User ids are not recognisable in free text: code must log ``pseudonymise_id(user)``, never a raw id.
When a test harness (pytest) already has handlers on the root logger, nothing is added: records
reach those handlers as they did.
"""

from __future__ import annotations

import logging
import sys

from recdrill.data.pseudonymise import Pseudonymiser, ScrubbingFilter, default_pseudonymiser

SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "recdrill")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ScrubbingFormatter(logging.Formatter):
    """Formats with ``inner`` (default: :data:`FORMAT`), then scrubs the text, traceback included."""

    def __init__(self, inner: logging.Formatter | None = None, pseudonymiser: Pseudonymiser | None = None):
        super().__init__()
        self.inner = inner or logging.Formatter(FORMAT)
        self._pseudonymiser = pseudonymiser

    def format(self, record: logging.LogRecord) -> str:
        return (self._pseudonymiser or default_pseudonymiser()).scrub_text(self.inner.format(record))


def install_log_scrubbing(pseudonymiser: Pseudonymiser | None = None) -> None:
    """Scrub every handler of the server's loggers (idempotent: safe to call in each app start-up)."""
    ours = logging.getLogger("recdrill")
    if not ours.handlers and not logging.getLogger().handlers:
        to_stderr = logging.StreamHandler(sys.stderr)
        to_stderr.setLevel(logging.WARNING)  # what the last-resort handler wrote before
        ours.addHandler(to_stderr)
    for name in SERVER_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, ScrubbingFilter) for f in handler.filters):
                handler.addFilter(ScrubbingFilter(pseudonymiser))
            if not isinstance(handler.formatter, ScrubbingFormatter):
                handler.setFormatter(ScrubbingFormatter(handler.formatter, pseudonymiser))
