"""Kubeconfig files: finding them, merging them like kubectl, and building a :class:`ClusterConnection`.

* ``current-context`` or a chosen context; ``$KUBECONFIG`` (``os.pathsep``-separated, merged like kubectl:
  the first file to define a name or ``current-context`` wins, missing files are skipped); file references
  relative to the kubeconfig that names them.
* clusters: ``server``, ``certificate-authority`` / ``-data``, ``insecure-skip-tls-verify``,
  ``tls-server-name``, ``proxy-url`` (``http``, ``https``, and ``socks5`` with the ``socks`` extra; as in
  client-go it replaces the ``HTTPS_PROXY`` variables); ``disable-compression`` is ignored.
* users: ``token``, ``tokenFile``, ``username``/``password``, ``client-certificate``/``client-key`` (file
  or ``-data``), and exec credential plugins. As in client-go, an exec plugin is ignored when the user
  also has a token, a password or a client certificate.

Refused with :class:`ConfigError` (never silently ignored, because the request would go out with the
wrong identity or route): ``auth-provider`` (use an exec plugin such as kubelogin), impersonation
(``as``, ``as-groups``, ``as-uid``, ``as-user-extra``), exec ``interactiveMode: Always``, and
``tls-server-name`` together with an http(s) ``proxy-url`` (httpx cannot send it through the tunnel).
"""

from __future__ import annotations

import base64
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from .connection import ClusterConnection, ConfigError, ca_context, load_client_certificate, normalise_server
from .document import as_bool, as_list, as_map, as_str, b64, load_document, read_file, resolve_plain
from .execplugin import EXEC_API_VERSIONS, ExecAuth, ExecConfig
from .incluster import DEFAULT_INCLUSTER_ROOT, incluster_possible, load_incluster
from .tokens import BearerTokenAuth, TokenFileAuth

__all__ = ["load_default", "load_kubeconfig"]

_EXEC_CLUSTER_EXTENSION: Final = "client.authentication.k8s.io/exec"
_PROXY_SCHEMES: Final = ("http", "https", "socks5")


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
    doc = as_map(load_document(text, source), source)
    merged.files.append(source)
    base = path.resolve().parent
    current = as_str(doc, "current-context", source)
    if merged.current_context is None:
        merged.current_context = current
    for section, item_key in _SECTIONS:
        seen: set[str] = set()
        for index, item in enumerate(as_list(doc.get(section), f"{source}: {section}")):
            item_where = f"{source}: {section}[{index}]"
            item_map = as_map(item, item_where)
            name = as_str(item_map, "name", item_where)
            if name is None:
                raise ConfigError(f"{item_where}: has no name")
            if name in seen:
                raise ConfigError(f"{source}: {section}: duplicate name {name!r}")
            seen.add(name)
            where = f"{section}[{name!r}].{item_key} in {source}"
            target: dict[str, _Entry] = getattr(merged, section)
            if name not in target:
                target[name] = _Entry(as_map(item_map.get(item_key), where), base, where)


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
    if as_bool(entry.body, "disable-compression", entry.where):
        info["disable-compression"] = True
    for index, ext in enumerate(as_list(entry.body.get("extensions"), f"{entry.where}.extensions")):
        ext_map = as_map(ext, f"{entry.where}.extensions[{index}]")
        if ext_map.get("name") == _EXEC_CLUSTER_EXTENSION:
            info["config"] = resolve_plain(ext_map.get("extension"))
    return info


def _proxy_url(cluster: _Entry, tls_name: str | None) -> str | None:
    """The cluster's ``proxy-url``, checked as client-go does (http, https or socks5), or None."""
    raw = as_str(cluster.body, "proxy-url", cluster.where)
    if raw is None:
        return None
    where = f"{cluster.where}.proxy-url"
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"{where}: invalid URL {raw!r}: {exc}") from None
    if url.scheme not in _PROXY_SCHEMES or not url.host:
        raise ConfigError(f"{where}: {raw!r} is not supported; the scheme must be http, https or socks5")
    if url.scheme == "socks5":
        if importlib.util.find_spec("socksio") is None:
            raise ConfigError(
                f"{where}: a SOCKS proxy needs the socks extra: pip install 'k8s-metrics-client[socks]'"
            )
    elif tls_name:
        # httpcore opens the TLS session inside an HTTP CONNECT tunnel with the URL's host name.
        raise ConfigError(
            f"{where}: tls-server-name cannot be used through an http(s) proxy; use a socks5 proxy-url"
        )
    return raw


def _data_or_file(entry: _Entry, data_key: str, file_key: str) -> bytes | None:
    data = as_str(entry.body, data_key, entry.where)
    path = as_str(entry.body, file_key, entry.where)
    if data is not None and path is not None:
        raise ConfigError(f"{entry.where}: both {data_key} and {file_key} are set; set only one")
    if data is not None:
        return b64(data, f"{entry.where}.{data_key}")
    if path is not None:
        return read_file(entry.base / Path(path).expanduser(), f"{entry.where}.{file_key}")
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
    body = as_map(user.body.get("exec"), where)
    command = as_str(body, "command", where)
    if command is None:
        raise ConfigError(f"{where}.command: must be set")
    if os.sep in command and not Path(command).is_absolute():
        command = str(user.base / command)  # kubectl resolves relative paths with a separator
    args: list[str] = []
    for index, arg in enumerate(as_list(body.get("args"), f"{where}.args")):
        if not isinstance(arg, str):
            raise ConfigError(f"{where}.args[{index}]: expected a string")
        args.append(str(arg))
    env: list[tuple[str, str]] = []
    for index, item in enumerate(as_list(body.get("env"), f"{where}.env")):
        item_where = f"{where}.env[{index}]"
        pair = as_map(item, item_where)
        name = as_str(pair, "name", item_where)
        if name is None:
            raise ConfigError(f"{item_where}.name: must be set")
        env.append((name, as_str(pair, "value", item_where) or ""))
    api_version = as_str(body, "apiVersion", where)
    if api_version not in EXEC_API_VERSIONS:
        raise ConfigError(
            f"{where}.apiVersion: {api_version!r} is not supported; use one of {', '.join(EXEC_API_VERSIONS)}"
        )
    return ExecConfig(
        command=command,
        args=tuple(args),
        env=tuple(env),
        api_version=api_version,
        install_hint=as_str(body, "installHint", where),
        interactive_mode=as_str(body, "interactiveMode", where),
        cluster=cluster if as_bool(body, "provideClusterInfo", where) else None,
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
    cluster_name = as_str(ctx_entry.body, "cluster", ctx_entry.where)
    if cluster_name is None:
        raise ConfigError(f"{ctx_entry.where}.cluster: must be set")
    cluster = merged.clusters.get(cluster_name)
    if cluster is None:
        raise ConfigError(f"cluster {cluster_name!r} (of context {name!r}) not found in {files}")
    user_name = as_str(ctx_entry.body, "user", ctx_entry.where)
    user: _Entry | None = None
    if user_name is not None:
        user = merged.users.get(user_name)
        if user is None:
            raise ConfigError(f"user {user_name!r} (of context {name!r}) not found in {files}")
    namespace = as_str(ctx_entry.body, "namespace", ctx_entry.where)

    # Cluster
    raw_server = as_str(cluster.body, "server", cluster.where)
    if raw_server is None:
        raise ConfigError(f"{cluster.where}.server: must be set")
    server = normalise_server(raw_server, cluster.where)
    insecure = as_bool(cluster.body, "insecure-skip-tls-verify", cluster.where)
    ca = _data_or_file(cluster, "certificate-authority-data", "certificate-authority")
    if insecure and ca is not None:
        raise ConfigError(
            f"{cluster.where}: a certificate authority cannot be combined with insecure-skip-tls-verify"
        )
    tls_name = as_str(cluster.body, "tls-server-name", cluster.where)
    proxy = _proxy_url(cluster, tls_name)
    ssl_context = ca_context(ca, insecure, f"{cluster.where}.certificate-authority")
    if user is None:
        return ClusterConnection(server, ssl_context, None, tls_name, namespace, proxy)

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
    token = as_str(body, "token", where)
    token_file = as_str(body, "tokenFile", where)
    username = as_str(body, "username", where)
    password = as_str(body, "password", where)
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
    return ClusterConnection(server, ssl_context, auth, tls_name, namespace, proxy)


def load_kubeconfig(
    path: str | os.PathLike[str] | None = None, context: str | None = None
) -> ClusterConnection:
    """Build a connection from a kubeconfig file.

    ``path`` is a file (``~`` is expanded); None means ``$KUBECONFIG`` (a list, merged like kubectl)
    or else ``~/.kube/config``.
    ``context`` None means the ``current-context``. May run an exec plugin once (blocking).

    Raises:
        ConfigError: missing/unreadable file, YAML error, unknown context/cluster/user, bad base64,
            unreadable or invalid certificate, unsupported field, exec plugin failure. The message names
            the file and field.
    """
    merged = _Merged()
    if path is not None:
        _merge_file(merged, Path(path).expanduser())
    else:
        paths, from_env = _kubeconfig_paths(os.environ)
        if not paths:
            origin = "$KUBECONFIG names no existing file" if from_env else "~/.kube/config does not exist"
            raise ConfigError(f"no kubeconfig: {origin}")
        for p in paths:
            _merge_file(merged, p)
    return _connection(merged, context)


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
    if incluster_possible(root, os.environ):
        return load_incluster(root=root)
    raise ConfigError(
        f"no configuration found: no kubeconfig ({looked}) and not in a cluster "
        f"(KUBERNETES_SERVICE_HOST/PORT unset or no {root / 'token'})"
    )
