"""Log scrubbing: e-mail addresses and phone numbers never reach the server's written log lines."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from recdrill.data.pseudonymise import Pseudonymiser, ScrubbingFilter
from recdrill.serving.logs import FORMAT, SERVER_LOGGERS, ScrubbingFormatter, install_log_scrubbing

PSEUDONYMISER = Pseudonymiser(b"k" * 32)
EMAIL = "ann.smith@example.com"


def isolate_loggers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty handler lists on the root and the server's loggers, restored after the test. Called in
    the test body: pytest adds its capturing handlers to the root logger for each test phase."""
    for name in ("", *SERVER_LOGGERS):
        monkeypatch.setattr(logging.getLogger(name), "handlers", [])


def record(message: str, *args: object, exc_info: bool = False) -> logging.LogRecord:
    return logging.LogRecord(
        "recdrill.serving", logging.WARNING, __file__, 1, message, args, sys.exc_info() if exc_info else None
    )


def test_the_formatter_scrubs_the_formatted_line() -> None:
    formatter = ScrubbingFormatter(logging.Formatter("%(levelname)s %(message)s"), PSEUDONYMISER)
    line = formatter.format(record("order for %s failed", EMAIL))
    assert line == f"WARNING order for {PSEUDONYMISER.scrub_text(EMAIL)} failed"
    assert EMAIL not in line and "e_" in line


def test_the_formatter_defaults_to_the_server_format() -> None:
    line = ScrubbingFormatter(pseudonymiser=PSEUDONYMISER).format(record("plain text"))
    assert line.endswith(" WARNING recdrill.serving: plain text")
    assert FORMAT == "%(asctime)s %(levelname)s %(name)s: %(message)s"


def test_the_formatter_scrubs_tracebacks_too() -> None:
    formatter = ScrubbingFormatter(logging.Formatter("%(message)s"), PSEUDONYMISER)
    try:
        raise ValueError(f"no account for {EMAIL} or +44 20 7946 0958")
    except ValueError:
        line = formatter.format(record("lookup failed", exc_info=True))
    assert "Traceback" in line and "ValueError: no account for e_" in line
    assert EMAIL not in line and "7946" not in line


def test_install_wraps_every_handler_of_the_server_loggers_once(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_loggers(monkeypatch)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    inner = logging.Formatter("%(name)s|%(message)s")
    handler.setFormatter(inner)
    logging.getLogger("uvicorn.error").addHandler(handler)
    install_log_scrubbing(PSEUDONYMISER)
    install_log_scrubbing(PSEUDONYMISER)  # idempotent: each app start-up calls it
    assert sum(isinstance(f, ScrubbingFilter) for f in handler.filters) == 1
    assert isinstance(handler.formatter, ScrubbingFormatter) and handler.formatter.inner is inner
    logging.getLogger("uvicorn.error").error("bad request from %s", EMAIL)
    assert stream.getvalue() == f"uvicorn.error|bad request from {PSEUDONYMISER.scrub_text(EMAIL)}\n"


def test_without_any_handler_recdrill_gets_a_scrubbed_stderr_handler_for_warnings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolate_loggers(monkeypatch)
    install_log_scrubbing(PSEUDONYMISER)
    (handler,) = logging.getLogger("recdrill").handlers
    assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr
    assert handler.level == logging.WARNING
    assert isinstance(handler.formatter, ScrubbingFormatter)
    assert any(isinstance(f, ScrubbingFilter) for f in handler.filters)


def test_with_handlers_on_the_root_logger_nothing_is_added(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVER_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "handlers", [])
    monkeypatch.setattr(logging.getLogger(), "handlers", [logging.NullHandler()])
    install_log_scrubbing(PSEUDONYMISER)
    assert logging.getLogger("recdrill").handlers == []
