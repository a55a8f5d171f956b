"""Connection settings for a kube-apiserver: kubeconfig files, in-cluster service accounts, exec plugins.

The result of every loader is a :class:`ClusterConnection`: a base URL, an :class:`ssl.SSLContext` with
the trust anchors and client certificate already applied, and an :class:`httpx.Auth` (or ``None``).
It works with ``httpx.Client`` and ``httpx.AsyncClient`` (trio or asyncio) alike::

    conn = load_default()
    with conn.httpx_client() as client:          # or: async with conn.httpx_async_client() as client
        client.get("/apis/metrics.k8s.io/v1beta1/nodes").raise_for_status()

What is supported, following kubectl/client-go:

* ``load_kubeconfig``: ``current-context`` or a chosen context; ``$KUBECONFIG`` (``os.pathsep``-separated,
  merged like kubectl: the first file to define a name or ``current-context`` wins, missing files are
  skipped); file references relative to the kubeconfig that names them.
* clusters: ``server``, ``certificate-authority`` / ``-data``, ``insecure-skip-tls-verify``,
  ``tls-server-name``; ``disable-compression`` is ignored.
* users: ``token``, ``tokenFile`` (re-read on rotation, :class:`TokenFileAuth`), ``username``/``password``,
  ``client-certificate``/``client-key`` (file or ``-data``), and exec credential plugins
  (:class:`ExecAuth`, ``client.authentication.k8s.io/v1`` and ``v1beta1``). As in client-go, an exec
  plugin is ignored when the user also has a token, a password or a client certificate.
* ``load_incluster``: ``KUBERNETES_SERVICE_HOST``/``_PORT`` and the service-account directory.

Refused with :class:`ConfigError` (never silently ignored, because the request would go out with the
wrong identity or route): ``auth-provider`` (use an exec plugin such as kubelogin), impersonation
(``as``, ``as-groups``, ``as-uid``, ``as-user-extra``), ``proxy-url``, exec ``interactiveMode: Always``.

TLS: at least TLS 1.2; ALPN offers ``http/1.1`` only. A cluster with a CA trusts only that CA (like
kubectl); one without uses the system trust store (certifi's bundle if the system store is empty).

Kubeconfig files are read with the small built-in YAML reader in ``k8s_metrics._yaml`` (no PyYAML
dependency): everything kubectl and the cloud CLIs write, and JSON. Anchors, aliases, tags and multiple
documents are refused with a :class:`ConfigError` naming the line. Scalars stay strings until the schema
asks for something else (as sigs.k8s.io/yaml does), so ``token: 0123`` is the string ``"0123"``; booleans
are the unquoted YAML 1.1 words kubectl accepts (``true``, ``yes``, ``on`` ...).

Exec plugins and client certificates: ``load_kubeconfig`` runs an exec plugin once, synchronously, so that
a client certificate it returns is in the ``SSLContext`` before the first connection. A certificate
returned by a later run (after expiry, or on a 401) is loaded into the same context and is used by new
connections only; already-open keep-alive connections keep the old one, so keep ``keepalive_expiry``
shorter than the certificate lifetime. From async code, call the loaders in a worker thread if the plugin
may be slow; afterwards :class:`ExecAuth` re-runs the plugin in a worker thread (anyio, which httpx
already depends on), never on the event loop.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as _dt
import json
import logging
import os
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio.to_thread
import httpx

from ._yaml import Plain, YamlError, parse_yaml, resolve_plain

__all__ = [
    "BearerTokenAuth",
    "ClusterConnection",
    "ConfigError",
    "ExecAuth",
    "ExecConfig",
    "ExecCredential",
    "ExecPluginError",
    "TokenFileAuth",
    "load_client_certificate",
    "load_default",
    "load_incluster",
    "load_kubeconfig",
]

_log = logging.getLogger(__name__)

DEFAULT_INCLUSTER_ROOT: Final = "/var/run/secrets/kubernetes.io/serviceaccount"
EXEC_API_VERSIONS: Final = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
_EXEC_CLUSTER_EXTENSION: Final = "client.authentication.k8s.io/exec"


class ConfigError(Exception):
    """The connection cannot be configured; the message names the file and field at fault."""


class ExecPluginError(ConfigError):
    """An exec credential plugin could not be run or returned an unusable ExecCredential."""


# --------------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterConnection:
    """Everything needed to talk to one kube-apiserver.

    ``server`` is the base URL without a trailing slash (it may carry a path prefix). ``ssl_context`` has the
    trust anchors, ``insecure-skip-tls-verify`` and the client certificate applied. ``tls_server_name``, when
    set, is the name to send as SNI and to verify the server certificate against; pass
    :meth:`request_extensions` with each request, or use :meth:`httpx_client` which does it for you.
    ``namespace`` is the context's namespace (or the in-cluster namespace file), if any.
    """

    server: str
    ssl_context: ssl.SSLContext
    auth: httpx.Auth | None
    tls_server_name: str | None
    namespace: str | None = None

    def request_extensions(self) -> dict[str, Any]:
        """httpx request extensions that apply ``tls_server_name`` (empty when it is not set)."""
        return {"sni_hostname": self.tls_server_name} if self.tls_server_name else {}

    def httpx_client(self, **kwargs: Any) -> httpx.Client:
        """A new ``httpx.Client`` with ``base_url``, ``verify``, ``auth`` and the server name applied.

        ``kwargs`` are passed to ``httpx.Client`` and may override anything except ``verify``.
        """
        hooks = kwargs.pop("event_hooks", {})
        if self.tls_server_name:
            hooks = {**hooks, "request": [self._set_sni, *hooks.get("request", [])]}
        kwargs.setdefault("base_url", self.server)
        kwargs.setdefault("auth", self.auth)
        return httpx.Client(verify=self.ssl_context, event_hooks=hooks, **kwargs)

    def httpx_async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """Like :meth:`httpx_client`, for ``httpx.AsyncClient`` (trio or asyncio)."""
        hooks = kwargs.pop("event_hooks", {})
        if self.tls_server_name:
            hooks = {**hooks, "request": [self._aset_sni, *hooks.get("request", [])]}
        kwargs.setdefault("base_url", self.server)
        kwargs.setdefault("auth", self.auth)
        return httpx.AsyncClient(verify=self.ssl_context, event_hooks=hooks, **kwargs)

    def _set_sni(self, request: httpx.Request) -> None:
        request.extensions.update(self.request_extensions())

    async def _aset_sni(self, request: httpx.Request) -> None:
        request.extensions.update(self.request_extensions())


# --------------------------------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------------------------------


def _new_ssl_context(ca_pem: str | None, insecure: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # Offering h2 would make httpcore switch to HTTP/2 whenever the server picks it, even for a client
    # created without http2=True; callers who want h2 can widen this on their own context.
    ctx.set_alpn_protocols(["http/1.1"])
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca_pem is not None:
        ctx.load_verify_locations(cadata=ca_pem)
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if not ctx.cert_store_stats().get("x509_ca"):
            import certifi  # an httpx dependency; used only where the platform has no usable trust store

            ctx.load_verify_locations(cafile=certifi.where())
    return ctx


def _ca_context(ca: bytes | None, insecure: bool, where: str) -> ssl.SSLContext:
    ca_pem = None
    if ca is not None:
        try:
            ca_pem = ca.decode("ascii")
        except UnicodeDecodeError:
            raise ConfigError(f"{where}: not a PEM certificate (non-ASCII data)") from None
        if "-----BEGIN CERTIFICATE-----" not in ca_pem:
            raise ConfigError(f"{where}: no PEM certificate found")
    try:
        return _new_ssl_context(ca_pem, insecure)
    except ssl.SSLError as exc:
        raise ConfigError(f"{where}: cannot load the CA certificate: {exc}") from exc


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's passphrase.
    return b""


def load_client_certificate(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes, where: str) -> None:
    """Load a PEM certificate chain and key held in memory into ``ctx``.

    The ssl module loads certificates only from files, so both are written to a private temporary directory
    (mode 0700) that is removed before returning. Raises :class:`ConfigError` naming ``where``.
    """
    with tempfile.TemporaryDirectory(prefix="k8s-metrics-tls-") as tmp:
        cert_file = Path(tmp, "tls.crt")
        key_file = Path(tmp, "tls.key")
        cert_file.write_bytes(cert_pem)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        try:
            ctx.load_cert_chain(cert_file, key_file, password=_no_password)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"{where}: cannot load the client certificate and key ({exc.reason or exc}); "
                "they must be PEM, match each other, and the key must not be encrypted"
            ) from exc


# --------------------------------------------------------------------------------------------------
# Bearer tokens
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Exec credential plugins
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Typed access to the parsed document
# --------------------------------------------------------------------------------------------------

_TRUE: Final = frozenset({"true", "True", "TRUE", "yes", "Yes", "YES", "y", "Y", "on", "On", "ON"})
_FALSE: Final = frozenset({"false", "False", "FALSE", "no", "No", "NO", "n", "N", "off", "Off", "OFF"})


def _map(node: object, where: str) -> dict[str, object]:
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ConfigError(f"{where}: expected a mapping")
    return node


def _list(node: object, where: str) -> list[object]:
    if node is None:
        return []
    if not isinstance(node, list):
        raise ConfigError(f"{where}: expected a list")
    return node


def _str(node: Mapping[str, object], key: str, where: str) -> str | None:
    """A string field; absent, null and empty all mean "not set", as in client-go."""
    value = node.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key}: expected a string")
    return str(value)


def _bool(node: Mapping[str, object], key: str, where: str) -> bool:
    value = node.get(key)
    if value is None:
        return False
    if isinstance(value, Plain) and value in _TRUE:
        return True
    if isinstance(value, Plain) and value in _FALSE:
        return False
    raise ConfigError(f"{where}.{key}: expected true or false, got {value!r}")


def _b64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}: not valid base64") from None


def _read_file(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {str(path)!r}: {exc.strerror or exc}") from exc


# --------------------------------------------------------------------------------------------------
# Kubeconfig files
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    body: dict[str, object]
    base: Path  # directory of the file that defined it: relative paths are resolved against it
    where: str  # e.g. 'users["alice"].user in ~/.kube/config'


@dataclass
class _Merged:
    files: list[str] = field(default_factory=list)
    current_context: str | None = None
    clusters: dict[str, _Entry] = field(default_factory=dict)
    users: dict[str, _Entry] = field(default_factory=dict)
    contexts: dict[str, _Entry] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.clusters or self.users or self.contexts or self.current_context)


_SECTIONS: Final = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


def _merge_file(merged: _Merged, path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {str(path)!r}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"kubeconfig {str(path)!r} is not UTF-8 text") from exc
    source = str(path)
    try:
        doc = _map(parse_yaml(text, source), source)
    except YamlError as exc:
        raise ConfigError(str(exc)) from None
    merged.files.append(source)
    base = path.resolve().parent
    current = _str(doc, "current-context", source)
    if merged.current_context is None:
        merged.current_context = current
    for section, item_key in _SECTIONS:
        seen: set[str] = set()
        for index, item in enumerate(_list(doc.get(section), f"{source}: {section}")):
            item_where = f"{source}: {section}[{index}]"
            item_map = _map(item, item_where)
            name = _str(item_map, "name", item_where)
            if name is None:
                raise ConfigError(f"{item_where}: has no name")
            if name in seen:
                raise ConfigError(f"{source}: {section}: duplicate name {name!r}")
            seen.add(name)
            where = f"{section}[{name!r}].{item_key} in {source}"
            target: dict[str, _Entry] = getattr(merged, section)
            if name not in target:
                target[name] = _Entry(_map(item_map.get(item_key), where), base, where)


def _kubeconfig_paths(environ: Mapping[str, str]) -> tuple[list[Path], bool]:
    """The files named by ``$KUBECONFIG`` (existing ones, de-duplicated), or ``~/.kube/config``.

    The flag says whether the list came from ``$KUBECONFIG``.
    """
    value = environ.get("KUBECONFIG", "")
    if value:
        paths: list[Path] = []
        for part in value.split(os.pathsep):
            if part and Path(part).expanduser() not in paths:
                paths.append(Path(part).expanduser())
        return [p for p in paths if p.exists()], True
    home = environ.get("HOME")
    default = (Path(home) if home else Path.home()) / ".kube" / "config"
    return ([default] if default.exists() else []), False


def _cluster_info(
    entry: _Entry, server: str, ca: bytes | None, insecure: bool, tls_name: str | None
) -> dict[str, Any]:
    """The ExecCredential ``spec.cluster`` object (client.authentication.k8s.io Cluster type)."""
    info: dict[str, Any] = {"server": server}
    if tls_name:
        info["tls-server-name"] = tls_name
    if insecure:
        info["insecure-skip-tls-verify"] = True
    if ca is not None:
        info["certificate-authority-data"] = base64.b64encode(ca).decode("ascii")
    if _bool(entry.body, "disable-compression", entry.where):
        info["disable-compression"] = True
    for index, ext in enumerate(_list(entry.body.get("extensions"), f"{entry.where}.extensions")):
        ext_map = _map(ext, f"{entry.where}.extensions[{index}]")
        if ext_map.get("name") == _EXEC_CLUSTER_EXTENSION:
            info["config"] = resolve_plain(ext_map.get("extension"))
    return info


def _normalise_server(server: str, where: str) -> str:
    if "://" not in server:
        server = "https://" + server  # client-go's default for a bare host:port
    try:
        url = httpx.URL(server)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"{where}.server: invalid URL {server!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"{where}.server: {server!r} is not an http(s) URL")
    return server.rstrip("/")


def _data_or_file(entry: _Entry, data_key: str, file_key: str) -> bytes | None:
    data = _str(entry.body, data_key, entry.where)
    path = _str(entry.body, file_key, entry.where)
    if data is not None and path is not None:
        raise ConfigError(f"{entry.where}: both {data_key} and {file_key} are set; set only one")
    if data is not None:
        return _b64(data, f"{entry.where}.{data_key}")
    if path is not None:
        return _read_file(entry.base / Path(path).expanduser(), f"{entry.where}.{file_key}")
    return None


_UNSUPPORTED_USER_FIELDS: Final = {
    "auth-provider": "auth-provider plugins are not supported; use an exec plugin (e.g. kubelogin)",
    "as": "impersonation is not supported",
    "as-uid": "impersonation is not supported",
    "as-groups": "impersonation is not supported",
    "as-user-extra": "impersonation is not supported",
}


def _exec_config(user: _Entry, user_name: str, cluster: dict[str, Any] | None) -> ExecConfig:
    where = f"{user.where}.exec"
    body = _map(user.body.get("exec"), where)
    command = _str(body, "command", where)
    if command is None:
        raise ConfigError(f"{where}.command: must be set")
    if os.sep in command and not Path(command).is_absolute():
        command = str(user.base / command)  # kubectl resolves relative paths with a separator
    args: list[str] = []
    for index, arg in enumerate(_list(body.get("args"), f"{where}.args")):
        if not isinstance(arg, str):
            raise ConfigError(f"{where}.args[{index}]: expected a string")
        args.append(str(arg))
    env: list[tuple[str, str]] = []
    for index, item in enumerate(_list(body.get("env"), f"{where}.env")):
        item_where = f"{where}.env[{index}]"
        pair = _map(item, item_where)
        name = _str(pair, "name", item_where)
        if name is None:
            raise ConfigError(f"{item_where}.name: must be set")
        env.append((name, _str(pair, "value", item_where) or ""))
    api_version = _str(body, "apiVersion", where)
    if api_version not in EXEC_API_VERSIONS:
        raise ConfigError(
            f"{where}.apiVersion: {api_version!r} is not supported; use one of {', '.join(EXEC_API_VERSIONS)}"
        )
    return ExecConfig(
        command=command,
        args=tuple(args),
        env=tuple(env),
        api_version=api_version,
        install_hint=_str(body, "installHint", where),
        interactive_mode=_str(body, "interactiveMode", where),
        cluster=cluster if _bool(body, "provideClusterInfo", where) else None,
        user=user_name,
    )


def _connection(merged: _Merged, context: str | None) -> ClusterConnection:
    files = ", ".join(merged.files)
    name = context or merged.current_context
    if name is None:
        raise ConfigError(f"no context chosen and no current-context set in {files}")
    ctx_entry = merged.contexts.get(name)
    if ctx_entry is None:
        raise ConfigError(f"context {name!r} not found in {files}")
    cluster_name = _str(ctx_entry.body, "cluster", ctx_entry.where)
    if cluster_name is None:
        raise ConfigError(f"{ctx_entry.where}.cluster: must be set")
    cluster = merged.clusters.get(cluster_name)
    if cluster is None:
        raise ConfigError(f"cluster {cluster_name!r} (of context {name!r}) not found in {files}")
    user_name = _str(ctx_entry.body, "user", ctx_entry.where)
    user: _Entry | None = None
    if user_name is not None:
        user = merged.users.get(user_name)
        if user is None:
            raise ConfigError(f"user {user_name!r} (of context {name!r}) not found in {files}")
    namespace = _str(ctx_entry.body, "namespace", ctx_entry.where)

    # Cluster
    raw_server = _str(cluster.body, "server", cluster.where)
    if raw_server is None:
        raise ConfigError(f"{cluster.where}.server: must be set")
    server = _normalise_server(raw_server, cluster.where)
    if _str(cluster.body, "proxy-url", cluster.where) is not None:
        raise ConfigError(f"{cluster.where}.proxy-url: proxies are not supported")
    insecure = _bool(cluster.body, "insecure-skip-tls-verify", cluster.where)
    ca = _data_or_file(cluster, "certificate-authority-data", "certificate-authority")
    if insecure and ca is not None:
        raise ConfigError(
            f"{cluster.where}: a certificate authority cannot be combined with insecure-skip-tls-verify"
        )
    tls_name = _str(cluster.body, "tls-server-name", cluster.where)
    ssl_context = _ca_context(ca, insecure, f"{cluster.where}.certificate-authority")
    if user is None:
        return ClusterConnection(server, ssl_context, None, tls_name, namespace)

    # User
    body, where = user.body, user.where
    for field_name, reason in _UNSUPPORTED_USER_FIELDS.items():
        if body.get(field_name) not in (None, "", [], {}):
            raise ConfigError(f"{where}.{field_name}: {reason}")
    cert = _data_or_file(user, "client-certificate-data", "client-certificate")
    key = _data_or_file(user, "client-key-data", "client-key")
    if (cert is None) != (key is None):
        raise ConfigError(f"{where}: client-certificate and client-key must be given together")
    if cert is not None and key is not None:
        load_client_certificate(ssl_context, cert, key, f"{where}.client-certificate/client-key")
    token = _str(body, "token", where)
    token_file = _str(body, "tokenFile", where)
    username = _str(body, "username", where)
    password = _str(body, "password", where)
    if (token or token_file) and (username or password):
        raise ConfigError(f"{where}: more than one authentication method (token and username/password)")
    auth: httpx.Auth | None = None
    if token_file is not None:
        # As client-go: the file wins over a static token (which is only its initial value there).
        auth = TokenFileAuth(user.base / Path(token_file).expanduser())
    elif token is not None:
        auth = BearerTokenAuth(token)
    elif username is not None or password is not None:
        auth = httpx.BasicAuth(username or "", password or "")
    elif cert is None and body.get("exec") is not None:
        info = _cluster_info(cluster, server, ca, insecure, tls_name)
        exec_auth = ExecAuth(_exec_config(user, user_name or "", info), ssl_context=ssl_context)
        exec_auth.credential()  # see the module docstring: a returned certificate must be in place now
        auth = exec_auth
    return ClusterConnection(server, ssl_context, auth, tls_name, namespace)


def load_kubeconfig(
    path: str | os.PathLike[str] | None = None, context: str | None = None
) -> ClusterConnection:
    """Build a connection from a kubeconfig file.

    ``path`` None means ``$KUBECONFIG`` (a list, merged like kubectl) or else ``~/.kube/config``.
    ``context`` None means the ``current-context``. May run an exec plugin once (blocking).

    Raises:
        ConfigError: missing/unreadable file, YAML error, unknown context/cluster/user, bad base64,
            unreadable or invalid certificate, unsupported field, exec plugin failure. The message names
            the file and field.
    """
    merged = _Merged()
    if path is not None:
        _merge_file(merged, Path(path))
    else:
        paths, from_env = _kubeconfig_paths(os.environ)
        if not paths:
            origin = "$KUBECONFIG names no existing file" if from_env else "~/.kube/config does not exist"
            raise ConfigError(f"no kubeconfig: {origin}")
        for p in paths:
            _merge_file(merged, p)
    return _connection(merged, context)


# --------------------------------------------------------------------------------------------------
# In-cluster
# --------------------------------------------------------------------------------------------------


def load_incluster(
    *, root: str | os.PathLike[str] = DEFAULT_INCLUSTER_ROOT, environ: Mapping[str, str] | None = None
) -> ClusterConnection:
    """Build a connection from a pod's service account.

    Uses ``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT`` from ``environ`` (default
    ``os.environ``; an IPv6 host is bracketed), ``root/token`` (a :class:`TokenFileAuth`, so rotation is
    followed), ``root/ca.crt`` and the optional ``root/namespace``.

    Raises:
        ConfigError: a variable is unset, or the token or CA file is missing, empty or invalid. (client-go
            falls back to the system trust store when ``ca.crt`` is unreadable; this refuses instead.)
    """
    env = os.environ if environ is None else environ
    host = env.get("KUBERNETES_SERVICE_HOST", "")
    port = env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ConfigError(
            "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set"
        )
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    base = Path(root)
    server = _normalise_server(f"https://{host}:{port}", "in-cluster")
    auth = TokenFileAuth(base / "token")
    ca_file = base / "ca.crt"
    ssl_context = _ca_context(_read_file(ca_file, "in-cluster CA"), False, f"in-cluster CA {str(ca_file)!r}")
    namespace = None
    with contextlib.suppress(OSError, UnicodeDecodeError):  # the namespace file is optional
        namespace = (base / "namespace").read_text(encoding="utf-8").strip() or None
    return ClusterConnection(server, ssl_context, auth, None, namespace)


def _incluster_possible(root: Path, environ: Mapping[str, str]) -> bool:
    return (
        bool(environ.get("KUBERNETES_SERVICE_HOST"))
        and bool(environ.get("KUBERNETES_SERVICE_PORT"))
        and (root / "token").exists()
    )


def load_default(context: str | None = None) -> ClusterConnection:
    """Like kubectl: the kubeconfig from ``$KUBECONFIG`` or ``~/.kube/config``; without one (or with only
    empty files), the in-cluster service account.

    Raises:
        ConfigError: as :func:`load_kubeconfig` / :func:`load_incluster`; or neither is available (the
            message says what was looked for); or ``context`` was given but there is no kubeconfig.
    """
    paths, from_env = _kubeconfig_paths(os.environ)
    merged = _Merged()
    for p in paths:
        _merge_file(merged, p)
    if not merged.empty():
        return _connection(merged, context)
    looked = "$KUBECONFIG=" + os.environ.get("KUBECONFIG", "") if from_env else "~/.kube/config"
    if context is not None:
        raise ConfigError(f"context {context!r} requested but there is no kubeconfig ({looked})")
    root = Path(DEFAULT_INCLUSTER_ROOT)
    if _incluster_possible(root, os.environ):
        return load_incluster(root=root)
    raise ConfigError(
        f"no configuration found: no kubeconfig ({looked}) and not in a cluster "
        f"(KUBERNETES_SERVICE_HOST/PORT unset or no {root / 'token'})"
    )
