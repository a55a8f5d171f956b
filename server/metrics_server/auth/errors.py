"""Exceptions of the serving and auth layer.

Hierarchy::

    AuthError
    ├── ServingOptionsError   a serving/authorization option or a certificate file is unusable at
    │                         start-up (`flag` names the flag; the message starts with it)
    ├── ShimError             hypercorn's internals are not what the peer-certificate shim expects
    ├── CertificateRejected   a client certificate does not verify (never raised to callers of
    │                         the middleware: it becomes an authenticator error, i.e. 401)
    └── RequestInfoError      a request path cannot be resolved (the library answers 500)
"""

from __future__ import annotations


class AuthError(Exception):
    """Base class of every error raised by `metrics_server.auth`."""


class ServingOptionsError(AuthError, ValueError):
    """A start-up option is invalid or a file it names cannot be used."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(f"{flag}: {message}")
        self.flag = flag


class ShimError(AuthError):
    """The installed hypercorn does not have the internals the peer-certificate shim patches."""


class CertificateRejected(AuthError):
    """A client certificate failed verification; the message is Go's x509 wording."""


class RequestInfoError(AuthError):
    """The request path cannot be turned into request attributes."""
