"""Exec credential plugins (``client.authentication.k8s.io/v1`` and ``v1beta1``), as kubectl runs them.

Exec plugins and client certificates: ``load_kubeconfig`` runs an exec plugin once, synchronously, so that
a client certificate it returns is in the ``SSLContext`` before the first connection. A certificate
returned by a later run (after expiry, or on a 401) is loaded into the same context and is used by new
connections only; already-open keep-alive connections keep the old one, so keep ``keepalive_expiry``
shorter than the certificate lifetime. From async code, call the loaders in a worker thread if the plugin
may be slow; afterwards :class:`ExecAuth` re-runs the plugin in a worker thread (anyio, which httpx
already depends on), never on the event loop.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import anyio.to_thread
import httpx

from .connection import ExecPluginError, load_client_certificate

__all__ = ["EXEC_API_VERSIONS", "ExecAuth", "ExecConfig", "ExecCredential"]

EXEC_API_VERSIONS: Final = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")


@dataclass(frozen=True)
class ExecConfig:
    """A user's ``exec`` section. ``cluster`` is the ExecCredential ``spec.cluster`` object to pass in
    ``KUBERNETES_EXEC_INFO`` (set only when ``provideClusterInfo`` is true)."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"
    install_hint: str | None = None
    interactive_mode: str | None = None
    cluster: Mapping[str, Any] | None = None
    user: str = ""  # for error messages only


@dataclass(frozen=True)
class ExecCredential:
    """What a plugin returned. ``expires_at`` is a UNIX time, or None for "until rejected"."""

    token: str | None
    client_certificate_data: str | None = None
    client_key_data: str | None = None
    expires_at: float | None = None


class ExecAuth(httpx.Auth):
    """Credentials from an exec plugin (``client.authentication.k8s.io/v1`` or ``v1beta1``).

    The plugin runs with the caller's environment plus ``env`` and ``KUBERNETES_EXEC_INFO``, stdin closed
    (never interactive). Its credential is cached until ``status.expirationTimestamp`` (compared with
    ``clock``, UNIX seconds) or, without one, until a request gets a 401; on a 401 the plugin is re-run once
    and the request retried once. Concurrent refreshes run the plugin once. A token goes into the
    ``Authorization`` header; a client certificate is loaded into ``ssl_context`` (new connections only).

    Failures raise :class:`ExecPluginError`, whose message includes the exit code, the end of stderr and the
    ``installHint`` when the command is missing. In async code a refresh runs in a worker thread via anyio
    (works under trio and asyncio); ``timeout`` (seconds, None for no limit) bounds one plugin run.
    """

    requires_request_body = True

    def __init__(
        self,
        config: ExecConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> None:
        if config.api_version not in EXEC_API_VERSIONS:
            raise ExecPluginError(
                f"exec plugin for user {config.user!r}: apiVersion {config.api_version!r} is not supported "
                f"(use one of {', '.join(EXEC_API_VERSIONS)})"
            )
        self.config = config
        self._ssl_context = ssl_context
        self._clock = clock
        self._environ = environ
        self._timeout = timeout
        self._lock = threading.Lock()
        self._cached: ExecCredential | None = None

    def _valid(self, cred: ExecCredential | None) -> bool:
        return cred is not None and (cred.expires_at is None or self._clock() < cred.expires_at)

    def cached(self) -> ExecCredential | None:
        """The cached credential if it has not expired, else None (never runs the plugin)."""
        cred = self._cached
        return cred if self._valid(cred) else None

    def credential(self) -> ExecCredential:
        """The cached credential, running the plugin (blocking) if there is none or it has expired."""
        with self._lock:
            if self._cached is None or not self._valid(self._cached):
                self._cached = self._run()
            return self._cached

    def refresh(self, rejected: ExecCredential | None = None) -> ExecCredential:
        """Run the plugin again (blocking) unless another caller already replaced ``rejected``."""
        with self._lock:
            if self._cached is None or self._cached is rejected or not self._valid(self._cached):
                self._cached = self._run()
            return self._cached

    def _describe(self) -> str:
        return f"exec plugin {self.config.command!r} for user {self.config.user!r}"

    def _run(self) -> ExecCredential:
        cfg = self.config
        spec: dict[str, Any] = {"interactive": False}
        if cfg.cluster is not None:
            spec["cluster"] = dict(cfg.cluster)
        if cfg.interactive_mode == "Always":
            raise ExecPluginError(
                f"{self._describe()}: interactiveMode Always is not supported (stdin is closed)"
            )
        env = dict(os.environ if self._environ is None else self._environ)
        env.update(cfg.env)
        env["KUBERNETES_EXEC_INFO"] = json.dumps(
            {"apiVersion": cfg.api_version, "kind": "ExecCredential", "spec": spec}, separators=(",", ":")
        )
        try:
            proc = subprocess.run(
                [cfg.command, *cfg.args],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self._timeout,
                check=False,
            )
        except FileNotFoundError:
            hint = f"\n\n{cfg.install_hint}" if cfg.install_hint else ""
            raise ExecPluginError(f"{self._describe()}: executable {cfg.command!r} not found{hint}") from None
        except subprocess.TimeoutExpired:
            raise ExecPluginError(f"{self._describe()}: no answer within {self._timeout} s") from None
        except OSError as exc:
            raise ExecPluginError(f"{self._describe()}: cannot run it: {exc}") from exc
        if proc.returncode != 0:
            stderr = proc.stderr.decode("utf-8", "replace").strip()[-2000:]
            detail = f": {stderr}" if stderr else ""
            raise ExecPluginError(f"{self._describe()} failed with exit code {proc.returncode}{detail}")
        cred = self._parse(proc.stdout)
        if cred.client_certificate_data is not None and cred.client_key_data is not None:
            if self._ssl_context is None:
                raise ExecPluginError(
                    f"{self._describe()} returned a client certificate but has no SSLContext"
                )
            load_client_certificate(
                self._ssl_context,
                cred.client_certificate_data.encode(),
                cred.client_key_data.encode(),
                f"{self._describe()}: status.clientCertificateData/clientKeyData",
            )
        return cred

    def _parse(self, stdout: bytes) -> ExecCredential:
        what = self._describe()
        try:
            doc = json.loads(stdout)
        except ValueError as exc:
            raise ExecPluginError(f"{what}: output is not an ExecCredential JSON object: {exc}") from None
        if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
            raise ExecPluginError(f"{what}: output is not an ExecCredential (kind is missing or wrong)")
        if doc.get("apiVersion") != self.config.api_version:
            raise ExecPluginError(
                f"{what}: plugin returned apiVersion {doc.get('apiVersion')!r}, "
                f"configured {self.config.api_version!r}"
            )
        status = doc.get("status")
        if not isinstance(status, dict):
            raise ExecPluginError(f"{what}: ExecCredential has no status")
        fields: dict[str, str | None] = {}
        for name in ("token", "clientCertificateData", "clientKeyData", "expirationTimestamp"):
            value = status.get(name)
            if value is not None and not isinstance(value, str):
                raise ExecPluginError(f"{what}: status.{name} must be a string")
            fields[name] = value or None
        token, cert, key = fields["token"], fields["clientCertificateData"], fields["clientKeyData"]
        if (cert is None) != (key is None):
            raise ExecPluginError(f"{what}: status has only one of clientCertificateData and clientKeyData")
        if token is None and cert is None:
            raise ExecPluginError(
                f"{what}: status has neither a token nor clientCertificateData/clientKeyData"
            )
        expires_at = None
        if fields["expirationTimestamp"] is not None:
            expires_at = _parse_rfc3339(fields["expirationTimestamp"], f"{what}: status.expirationTimestamp")
        return ExecCredential(token, cert, key, expires_at)

    def _apply(self, request: httpx.Request, cred: ExecCredential) -> None:
        if cred.token is not None:
            request.headers["Authorization"] = f"Bearer {cred.token}"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        cred = self.credential()
        self._apply(request, cred)
        response = yield request
        if response.status_code == 401:
            self._apply(request, self.refresh(cred))
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        cred = self.cached()
        if cred is None:
            cred = await anyio.to_thread.run_sync(self.credential)
        self._apply(request, cred)
        response = yield request
        if response.status_code == 401:
            self._apply(request, await anyio.to_thread.run_sync(self.refresh, cred))
            yield request


def _parse_rfc3339(text: str, where: str) -> float:
    try:
        stamp = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise ExecPluginError(f"{where}: {text!r} is not an RFC 3339 time") from None
    if stamp.tzinfo is None:
        raise ExecPluginError(f"{where}: {text!r} has no time zone")
    return stamp.timestamp()
