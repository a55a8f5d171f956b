"""Logging set-up: klog-style text or JSON lines on stderr, as Kubernetes components write them.

Modules log with the standard library and pass structured fields through `extra`, e.g.
`log.error("Failed to scrape node", extra={"node": name, "err": cause})`. The formatters render
every such field as `key="value"` (text) or as a JSON member, so nothing is lost and nothing
needs a custom logging API.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

_KLOG_SEVERITY = {logging.DEBUG: "I", logging.INFO: "I", logging.WARNING: "W", logging.ERROR: "E"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


def _quote(value: Any) -> str:
    if isinstance(value, BaseException):
        value = str(value) or type(value).__name__
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


class KlogTextFormatter(logging.Formatter):
    """`E1127 14:06:38.123456    4242 scraper.py:88] "Failed to scrape node" node="n1" err="..."`."""

    def format(self, record: logging.LogRecord) -> str:
        severity = _KLOG_SEVERITY.get(record.levelno, "E" if record.levelno > logging.ERROR else "I")
        t = time.gmtime(record.created)
        micros = int((record.created % 1) * 1_000_000)
        head = (
            f"{severity}{t.tm_mon:02d}{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            f".{micros:06d} {record.process:7d} {record.filename}:{record.lineno}]"
        )
        parts = [head, json.dumps(record.getMessage(), ensure_ascii=False)]
        parts.extend(f"{key}={_quote(value)}" for key, value in _fields(record).items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, the shape of klog's JSON output (`ts`, `caller`, `msg`, `v`)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created * 1000, 3),
            "caller": f"{record.filename}:{record.lineno}",
            "msg": record.getMessage(),
        }
        if record.levelno < logging.ERROR:
            out["v"] = 0 if record.levelno >= logging.INFO else 4
        for key, value in _fields(record).items():
            out[key] = value if isinstance(value, (int, float, bool, type(None))) else str(value)
        if record.exc_info:
            out["stacktrace"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class _OurHandler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installed, so a second call replaces only it."""


def configure_logging(fmt: str, verbosity: int, stream: TextIO | None = None) -> None:
    """Install one stderr handler on the root logger. `verbosity` >= 4 enables debug messages."""
    handler = _OurHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KlogTextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, _OurHandler):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 4 else logging.INFO)
    # Library chatter (hpack, httpcore) is not ours to report at our debug level.
    for noisy in ("hpack", "httpcore", "httpx", "hypercorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbosity < 8 else logging.DEBUG)
