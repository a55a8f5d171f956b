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
from dataclasses import dataclass
from typing import Any, ClassVar, TextIO

from metrics_server.flagset import BOOL, DURATION, LEVEL, LOGGING, QUANTITY, STRING, VMODULE, flag

FORMATS = ("text", "json")


def _known_format(name: str) -> str | None:
    return None if name in FORMATS else f'format {name!r} not supported: use "text" or "json"'


def _positive(ns: int) -> str | None:
    return None if ns > 0 else "must be positive"


@dataclass(frozen=True, slots=True)
class LoggingOptions:
    """The logging flags. `--log-text-split-stream`/`--log-json-split-stream` (for the format in
    use) send errors to stderr and everything else to stdout; metrics-server refuses them unless
    an alpha feature gate is on, which it cannot turn on."""

    FLAG_GROUP: ClassVar[str] = LOGGING

    format: str = flag(
        "--logging-format",
        STRING,
        "text",
        'Sets the log format. Permitted formats: "json" (gated by LoggingBetaOptions), "text".',
        check=_known_format,
    )
    verbosity: int = flag(
        "--v",
        LEVEL,
        "",
        "number for the log level verbosity",
        shorthand="v",
    )
    text_split_stream: bool = flag(
        "--log-text-split-stream",
        BOOL,
        "",
        (
            "[Alpha] In text format, write error messages to stderr and info messages to stdout. The "
            "default is to write a single stream to stdout. Enable the LoggingAlphaOptions feature gate to "
            "use this."
        ),
    )
    json_split_stream: bool = flag(
        "--log-json-split-stream",
        BOOL,
        "",
        (
            "[Alpha] In JSON format, write error messages to stderr and info messages to stdout. The "
            "default is to write a single stream to stdout. Enable the LoggingAlphaOptions feature gate to "
            "use this."
        ),
    )
    flush_frequency_ns: int = flag(
        "--log-flush-frequency",
        DURATION,
        "5s",
        "Maximum number of seconds between log flushes",
        ignored="flush buffered log lines this often (every line is written at once)",
        check=_positive,
    )
    text_info_buffer_size: str = flag(
        "--log-text-info-buffer-size",
        QUANTITY,
        "",
        (
            "[Alpha] In text format with split output streams, the info messages can be buffered for a "
            "while to increase performance. The default value of zero bytes disables buffering. The size "
            "can be specified as number of bytes (512), multiples of 1000 (1K), multiples of 1024 (2Ki), "
            "or powers of those (3M, 4G, 5Mi, 6Gi). Enable the LoggingAlphaOptions feature gate to use "
            "this."
        ),
        ignored="buffer info lines of the split text streams (every line is written at once)",
        same_as_ours=("0",),
    )
    json_info_buffer_size: str = flag(
        "--log-json-info-buffer-size",
        QUANTITY,
        "",
        (
            "[Alpha] In JSON format with split output streams, the info messages can be buffered for a "
            "while to increase performance. The default value of zero bytes disables buffering. The size "
            "can be specified as number of bytes (512), multiples of 1000 (1K), multiples of 1024 (2Ki), "
            "or powers of those (3M, 4G, 5Mi, 6Gi). Enable the LoggingAlphaOptions feature gate to use "
            "this."
        ),
        ignored="buffer info lines of the split JSON streams (every line is written at once)",
        same_as_ours=("0",),
    )
    vmodule: str = flag(
        "--vmodule",
        VMODULE,
        "",
        (
            "comma-separated list of pattern=N settings for file-filtered logging (only works for text log "
            "format)"
        ),
        ignored="set the verbosity per source file",
        same_as_ours=("",),
    )
    logtostderr: bool = flag(
        "--logtostderr",
        BOOL,
        "",
        (
            "klog flag removed from metrics-server in v0.6; accepted so that older manifests start. Logs "
            "always go to stderr."
        ),
        ignored="log to standard error instead of files (logs always go to stderr)",
        same_as_ours=("true",),
    )
    alsologtostderr: bool = flag(
        "--alsologtostderr",
        BOOL,
        "",
        "klog flag removed from metrics-server in v0.6; accepted so that older manifests start.",
        ignored="log to files and standard error (logs always go to stderr)",
        same_as_ours=("true",),
    )

    @property
    def split_stream(self) -> bool:
        return self.json_split_stream if self.format == "json" else self.text_split_stream

    def validate(self) -> None:
        """Nothing to check beyond each value's own rules."""


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
    """Marks the handlers this module installed, so a second call replaces only them."""


class _Below(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def configure_logging(
    fmt: str,
    verbosity: int,
    stream: TextIO | None = None,
    *,
    split_stream: bool = False,
    info_stream: TextIO | None = None,
) -> None:
    """Install the handlers on the root logger: one on stderr (`stream`), or with `split_stream`
    errors there and everything below on stdout (`info_stream`). `verbosity` >= 4 enables debug
    messages."""
    formatter = JsonFormatter() if fmt == "json" else KlogTextFormatter()
    handlers = [_OurHandler(stream or sys.stderr)]
    if split_stream:
        handlers[0].setLevel(logging.ERROR)
        info = _OurHandler(info_stream or sys.stdout)
        info.addFilter(_Below(logging.ERROR))
        handlers.append(info)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, _OurHandler):
            root.removeHandler(existing)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 4 else logging.INFO)
    # Library chatter (hpack, httpcore) is not ours to report at our debug level.
    for noisy in ("hpack", "httpcore", "httpx", "hypercorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbosity < 8 else logging.DEBUG)
