"""Exceptions raised by kube-apiserver access, and helpers that turn HTTP failures into them.

Hierarchy::

    KubeError
    ├── OptionsError          a flag value is invalid (message starts with the flag name)
    ├── ApiError              the kube-apiserver answered with a non-2xx status (a `Status` object)
    ├── KubeTransportError    no usable answer: connection refused, TLS failure, timeout, broken stream
    └── AuthenticationLookupError   start-up lookup of the authentication ConfigMap failed
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson


class KubeError(Exception):
    """Base class of every error raised by `metrics_server.kube`."""


class OptionsError(KubeError, ValueError):
    """A component's options are invalid. `flag` names the offending command-line flag."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(f"{flag}: {message}")
        self.flag = flag


class ApiError(KubeError):
    """The kube-apiserver answered with an error status.

    `code` is the HTTP status, `reason` the `Status.reason` (e.g. "Forbidden", "Expired", "Gone";
    empty when the body was not a Status), `message` the `Status.message` or the start of the body.
    """

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}" if reason else f"{code}: {message}")
        self.code = code
        self.reason = reason
        self.message = message

    @property
    def is_gone(self) -> bool:
        """The resourceVersion or continue token is too old: the caller must relist."""
        return self.code == 410 or self.reason in ("Expired", "Gone")

    @classmethod
    def from_status(cls, status: Any, default_code: int = 500) -> ApiError:
        """Build from a decoded `Status` object (as found in watch ERROR events)."""
        if not isinstance(status, dict):
            return cls(default_code, "", repr(status)[:200])
        code = status.get("code")
        return cls(
            code if isinstance(code, int) and code > 0 else default_code,
            str(status.get("reason") or ""),
            str(status.get("message") or ""),
        )

    @classmethod
    def from_body(cls, code: int, body: bytes) -> ApiError:
        """Build from an HTTP error response body, which should be a Status but may be anything."""
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            decoded = None
        if isinstance(decoded, dict) and decoded.get("kind") == "Status":
            err = cls.from_status(decoded, code)
            err.code = code  # the HTTP status wins over a Status.code that disagrees
            return err
        text = body[:300].decode("utf-8", "replace").strip()
        return cls(code, httpx.codes.get_reason_phrase(code).replace(" ", ""), text)


class KubeTransportError(KubeError):
    """The request got no usable answer (connect, TLS, timeout, stream broken, bad JSON)."""


class AuthenticationLookupError(KubeError):
    """The authentication ConfigMap could not be read at start-up and failures are not tolerated."""


def describe_exception(exc: BaseException) -> str:
    """One line naming an exception and its chain of causes.

    httpx hides TLS failures several levels down `__context__` (an empty `ConnectError('')` on
    top of the real `SSLCertVerificationError`), so the whole chain is spelled out.
    """
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(parts) < 8:
        seen.add(id(current))
        text = str(current).strip()
        if isinstance(current, BaseExceptionGroup):
            # trio reports "all attempts to connect failed" as a group: the reasons are inside.
            current = current.exceptions[0]
            continue
        part = f"{type(current).__name__}: {text}" if text else type(current).__name__
        if not parts or text not in parts[-1]:
            parts.append(part)
        current = current.__cause__ or current.__context__
    return " <- ".join(parts)
