"""Bearer-token authentication: a fixed token, or a token file re-read when it rotates."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path

import httpx

from .connection import ConfigError

__all__ = ["BearerTokenAuth", "TokenFileAuth"]

_log = logging.getLogger(__name__)


class BearerTokenAuth(httpx.Auth):
    """A fixed bearer token."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class TokenFileAuth(httpx.Auth):
    """A bearer token read from a file and re-read when it rotates.

    The file is re-read when its identity changes (inode, size or mtime, checked with one ``stat`` per
    request; kubelet rotates projected tokens by swapping a symlink, which changes all three) and in any case
    once ``refresh_interval`` seconds (60, as client-go) have passed on ``clock`` since the last read. On a
    401 the file is re-read at once, and the request is retried once if the token changed.

    The constructor reads the file and raises :class:`ConfigError` if it is unreadable or empty. Later read
    failures keep the last good token and are logged. File I/O is a blocking ``stat`` plus, rarely, a
    read of a few hundred bytes, so it is done inline even in async code. Thread-safe; one instance can be
    shared by many clients (the server shares one across all kubelet clients).
    """

    requires_request_body = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        refresh_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self._interval = refresh_interval
        self._clock = clock
        self._lock = threading.Lock()
        token, self._stamp = self._read()
        self._token = token
        self._read_at = clock()

    def _read(self) -> tuple[str, tuple[int, int, int]]:
        try:
            st = os.stat(self.path)
            token = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read token file {str(self.path)!r}: {exc}") from exc
        if not token:
            raise ConfigError(f"token file {str(self.path)!r} is empty")
        return token, (st.st_ino, st.st_size, st.st_mtime_ns)

    def _refresh(self) -> None:
        try:
            self._token, self._stamp = self._read()
        except ConfigError as exc:
            _log.warning("%s; keeping the previous token", exc)
        self._read_at = self._clock()

    def token(self, *, force: bool = False) -> str:
        """The current token, re-reading the file if it changed, if it is due, or if ``force``."""
        with self._lock:
            due = force or self._clock() - self._read_at >= self._interval
            if not due:
                try:
                    st = os.stat(self.path)
                    due = (st.st_ino, st.st_size, st.st_mtime_ns) != self._stamp
                except OSError:
                    due = True
            if due:
                self._refresh()
            return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            fresh = self.token(force=True)
            if fresh != token:
                request.headers["Authorization"] = f"Bearer {fresh}"
                yield request
