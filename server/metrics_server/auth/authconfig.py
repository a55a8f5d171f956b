"""Client-certificate and request-header (front proxy) authentication settings, kept current.

Sources, with the apiserver library's precedence:
- client CA: `--client-ca-file` if set; otherwise the `client-ca-file` key of the ConfigMap
  `kube-system/extension-apiserver-authentication`.
- request header: if `--requestheader-client-ca-file` is set, *all* request-header settings come
  from the `--requestheader-*` flags (with their defaults); otherwise all come from the ConfigMap
  (`requestheader-client-ca-file`, and JSON arrays under `requestheader-allowed-names`,
  `-username-headers`, `-group-headers`, `-extra-headers-prefix`, `-uid-headers`).
- `--authentication-skip-lookup` (or no kube-apiserver client) disables the ConfigMap.

The ConfigMap is watched (list+watch on its name), so CA rotation takes effect without a restart;
CA files given by flags are re-read periodically. A new value that is missing or invalid is
logged and the previous value kept (the library does the same), as is a deleted ConfigMap.

Start-up lookup (`run()` before it reports started): when the request-header settings come from
the ConfigMap, a failed GET stops start-up with `AuthenticationLookupError("unable to load
configmap based request-header-client-ca-file: ...")` unless `--authentication-tolerate-lookup-
failure`, in which case three warnings are logged as the library does. A missing ConfigMap is not
an error (no request-header authentication). Unlike the library, which then gives up on the
ConfigMap for good, we keep watching it, so a later RBAC fix is picked up without a restart.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import httpx
import orjson
import trio
from cryptography import x509

from metrics_server import flagset
from metrics_server.kube.errors import (
    ApiError,
    AuthenticationLookupError,
    KubeError,
    OptionsError,
)
from metrics_server.kube.informer import Informer, InformerConfig, InformerEvent, ResourceSpec
from metrics_server.kube.rest import request_json

logger = logging.getLogger(__name__)

CONFIGMAP_NAMESPACE = "kube-system"
CONFIGMAP_NAME = "extension-apiserver-authentication"
READER_ROLE = "extension-apiserver-authentication-reader"


@dataclass(frozen=True)
class RequestHeaderConfig:
    """Front-proxy authentication: trust `*_headers` only from a client certificate that verifies
    against `ca_pem` and (when `allowed_names` is non-empty) whose CN is one of `allowed_names`."""

    ca_pem: bytes
    allowed_names: tuple[str, ...]
    username_headers: tuple[str, ...]
    group_headers: tuple[str, ...]
    extra_header_prefixes: tuple[str, ...]
    uid_headers: tuple[str, ...]


@dataclass(frozen=True)
class AuthenticationConfig:
    """What the authentication chain needs now. None = that authenticator is off."""

    client_ca_pem: bytes | None
    request_header: RequestHeaderConfig | None


@dataclass(frozen=True)
class AuthenticationOptions:
    """The library's delegated-authentication flags (except the TokenReview cache TTL, which
    lives in `ReviewCacheOptions`)."""

    FLAG_GROUP: ClassVar[str] = flagset.AUTHENTICATION

    kubeconfig: str = flagset.flag(
        "--authentication-kubeconfig",
        flagset.FILE,
        "",
        (
            "kubeconfig file pointing at the 'core' kubernetes server with enough rights to create "
            "tokenreviews.authentication.k8s.io."
        ),
    )
    client_ca_file: str = flagset.flag(
        "--client-ca-file",
        flagset.FILE,
        "",
        (
            "If set, any request presenting a client certificate signed by one of the authorities in the "
            "client-ca-file is authenticated with an identity corresponding to the CommonName of the "
            "client certificate."
        ),
    )
    requestheader_client_ca_file: str = flagset.flag(
        "--requestheader-client-ca-file",
        flagset.FILE,
        "",
        (
            "Root certificate bundle to use to verify client certificates on incoming requests before "
            "trusting usernames in headers specified by --requestheader-username-headers. WARNING: "
            "generally do not depend on authorization being already done for incoming requests."
        ),
    )
    requestheader_allowed_names: tuple[str, ...] = flagset.flag(
        "--requestheader-allowed-names",
        flagset.STRINGS,
        "",
        (
            "List of client certificate common names to allow to provide usernames in headers specified by "
            "--requestheader-username-headers. If empty, any client certificate validated by the "
            "authorities in --requestheader-client-ca-file is allowed."
        ),
    )
    requestheader_username_headers: tuple[str, ...] = flagset.flag(
        "--requestheader-username-headers",
        flagset.STRINGS,
        "x-remote-user",
        "List of request headers to inspect for usernames. X-Remote-User is common.",
    )
    requestheader_group_headers: tuple[str, ...] = flagset.flag(
        "--requestheader-group-headers",
        flagset.STRINGS,
        "x-remote-group",
        "List of request headers to inspect for groups. X-Remote-Group is suggested.",
    )
    requestheader_extra_headers_prefix: tuple[str, ...] = flagset.flag(
        "--requestheader-extra-headers-prefix",
        flagset.STRINGS,
        "x-remote-extra-",
        "List of request header prefixes to inspect. X-Remote-Extra- is suggested.",
    )
    requestheader_uid_headers: tuple[str, ...] = flagset.flag(
        "--requestheader-uid-headers",
        flagset.STRINGS,
        "",
        (
            "List of request headers to inspect for UIDs. X-Remote-Uid is suggested. Requires the "
            "RemoteRequestHeaderUID feature to be enabled."
        ),
    )
    skip_lookup: bool = flagset.flag(
        "--authentication-skip-lookup",
        flagset.BOOL,
        "",
        (
            "If false, the authentication-kubeconfig will be used to lookup missing authentication "
            "configuration from the cluster."
        ),
    )
    tolerate_lookup_failure: bool = flagset.flag(
        "--authentication-tolerate-lookup-failure",
        flagset.BOOL,
        "",
        (
            "If true, failures to look up missing authentication configuration from the cluster are not "
            "considered fatal. Note that this can result in authentication that treats all requests as "
            "anonymous."
        ),
    )
    file_reload_interval: float = 60.0
    """How often CA files given by flags are re-read."""

    def validate(self) -> None:
        """Raise `OptionsError` naming the flag; log the library's warnings about odd headers."""
        lists = {
            "--requestheader-username-headers": self.requestheader_username_headers,
            "--requestheader-group-headers": self.requestheader_group_headers,
            "--requestheader-extra-headers-prefix": self.requestheader_extra_headers_prefix,
            "--requestheader-allowed-names": self.requestheader_allowed_names,
            "--requestheader-uid-headers": self.requestheader_uid_headers,
        }
        for flag, values in lists.items():
            if any(not v.strip() for v in values):
                raise OptionsError(flag, f'empty value in "{flag[2:]}"')
        standard = {
            "--requestheader-username-headers": "X-Remote-User",
            "--requestheader-group-headers": "X-Remote-Group",
            "--requestheader-extra-headers-prefix": "X-Remote-Extra-",
        }
        for flag, header in standard.items():
            values = lists[flag]
            if values and header.lower() not in (v.lower() for v in values):
                what = "header prefix" if flag.endswith("prefix") else "header"
                logger.warning(
                    "%s is set without specifying the standard %s %s - API aggregation will not work",
                    flag,
                    header,
                    what,
                )
        if self.file_reload_interval <= 0:
            raise OptionsError("file_reload_interval", "must be positive")


def check_ca_bundle(pem: bytes) -> None:
    """Raise ValueError unless `pem` holds at least one parseable PEM certificate."""
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError("no PEM certificate found")
    x509.load_pem_x509_certificates(pem)


def _read_ca_file(flag: str, path: str) -> bytes:
    try:
        pem = Path(path).read_bytes()
        check_ca_bundle(pem)
    except (OSError, ValueError) as exc:
        raise OptionsError(flag, f"unable to load CA bundle {path!r}: {exc}") from exc
    return pem


def _json_strings(data: Mapping[str, str], key: str) -> tuple[str, ...]:
    raw = data.get(key, "")
    if not raw:
        return ()
    try:
        values = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{key}: {exc}") from exc
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{key}: expected a JSON array of strings")
    return tuple(values)


def request_header_from_configmap(data: Mapping[str, str]) -> RequestHeaderConfig | None:
    """The request-header settings of the ConfigMap's data; None when it has no request-header CA.

    Raises ValueError when a value is malformed (invalid PEM, a key that is not a JSON array).
    """
    ca = data.get("requestheader-client-ca-file", "")
    if not ca:
        return None
    pem = ca.encode()
    check_ca_bundle(pem)
    return RequestHeaderConfig(
        ca_pem=pem,
        allowed_names=_json_strings(data, "requestheader-allowed-names"),
        username_headers=_json_strings(data, "requestheader-username-headers"),
        group_headers=_json_strings(data, "requestheader-group-headers"),
        extra_header_prefixes=_json_strings(data, "requestheader-extra-headers-prefix"),
        uid_headers=_json_strings(data, "requestheader-uid-headers"),
    )


def _configmap_data(obj: Mapping[str, Any]) -> dict[str, str]:
    data = obj.get("data") or {}
    if not isinstance(data, dict):
        raise TypeError("ConfigMap data is not an object")
    return {str(k): str(v) for k, v in data.items()}


@dataclass
class _Replacement:
    store: _ConfigMapStore
    found: dict[str, str] | None = field(default=None)

    def add(self, obj: Mapping[str, Any]) -> None:
        if obj["metadata"]["name"] == CONFIGMAP_NAME:
            self.found = _configmap_data(obj)

    def commit(self) -> None:
        if self.found is not None:
            self.store.on_data(self.found)


class _ConfigMapStore:
    """Informer store for the one ConfigMap: forwards its data to the source."""

    def __init__(self, on_data: Callable[[dict[str, str]], None]) -> None:
        self.on_data = on_data

    def begin_replace(self) -> _Replacement:
        return _Replacement(self)

    def upsert(self, obj: Mapping[str, Any]) -> None:
        if obj["metadata"]["name"] == CONFIGMAP_NAME:
            self.on_data(_configmap_data(obj))

    def delete(self, obj: Mapping[str, Any]) -> None:
        logger.warning(
            "configmap %s/%s was deleted; keeping the last authentication settings",
            CONFIGMAP_NAMESPACE,
            CONFIGMAP_NAME,
        )


def configmap_spec() -> ResourceSpec:
    return ResourceSpec(
        path=f"/api/v1/namespaces/{CONFIGMAP_NAMESPACE}/configmaps",
        resource="configmaps",
        namespace=CONFIGMAP_NAMESPACE,
        field_selector=f"metadata.name={CONFIGMAP_NAME}",
        rbac_note=f"Role {READER_ROLE}",
    )


class AuthenticationConfigSource:
    """Holds the current `AuthenticationConfig` and keeps it up to date (see module docstring).

    The constructor reads the CA files named by flags and raises `OptionsError` naming the flag
    when one cannot be loaded. `current()` is a cheap attribute read. `on_change` is called with
    each new config (after start-up), e.g. to reload the serving TLS context's client CAs.
    """

    def __init__(
        self,
        options: AuthenticationOptions,
        client: httpx.AsyncClient | None,
        *,
        informer_config: InformerConfig | None = None,
        rng: random.Random | None = None,
        on_change: Callable[[AuthenticationConfig], None] | None = None,
        observer: Callable[[InformerEvent], None] | None = None,
    ) -> None:
        options.validate()
        self._options = options
        self._client = client
        self._on_change = on_change
        self._file_client_ca = (
            _read_ca_file("--client-ca-file", options.client_ca_file) if options.client_ca_file else None
        )
        self._file_rh_ca = (
            _read_ca_file("--requestheader-client-ca-file", options.requestheader_client_ca_file)
            if options.requestheader_client_ca_file
            else None
        )
        self._cm_client_ca: bytes | None = None
        self._cm_request_header: RequestHeaderConfig | None = None
        self._use_configmap = (
            not options.skip_lookup
            and client is not None
            and not (options.client_ca_file and options.requestheader_client_ca_file)
        )
        self._informer: Informer | None = None
        if self._use_configmap:
            assert client is not None
            self._informer = Informer(
                client,
                configmap_spec(),
                _ConfigMapStore(self._apply_configmap),
                informer_config,
                rng=rng,
                observer=observer,
            )
        self._synced = not self._use_configmap
        self._current = self._compose()

    def current(self) -> AuthenticationConfig:
        return self._current

    @property
    def has_synced(self) -> bool:
        """True once the ConfigMap has been read (or when it is not used)."""
        return self._synced or (self._informer is not None and self._informer.has_synced)

    def _compose(self) -> AuthenticationConfig:
        o = self._options
        client_ca = self._file_client_ca if o.client_ca_file else self._cm_client_ca
        if o.requestheader_client_ca_file:
            assert self._file_rh_ca is not None
            request_header: RequestHeaderConfig | None = RequestHeaderConfig(
                ca_pem=self._file_rh_ca,
                allowed_names=o.requestheader_allowed_names,
                username_headers=o.requestheader_username_headers,
                group_headers=o.requestheader_group_headers,
                extra_header_prefixes=o.requestheader_extra_headers_prefix,
                uid_headers=o.requestheader_uid_headers,
            )
        else:
            request_header = self._cm_request_header
        return AuthenticationConfig(client_ca_pem=client_ca, request_header=request_header)

    def _publish(self) -> None:
        new = self._compose()
        if new != self._current:
            self._current = new
            logger.info(
                "authentication settings changed: client CA %s, request-header CA %s",
                "set" if new.client_ca_pem else "unset",
                "set" if new.request_header else "unset",
            )
            if self._on_change is not None:
                self._on_change(new)

    def _apply_configmap(self, data: dict[str, str], *, strict: bool = False) -> None:
        """Take in new ConfigMap data. Invalid parts keep their previous value (logged), or raise
        ValueError when `strict` (the start-up lookup of the request-header part)."""
        where = f"configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME}"
        if not self._options.client_ca_file:
            ca = data.get("client-ca-file", "")
            try:
                if not ca:
                    raise ValueError('missing content for CA bundle "client-ca"')
                check_ca_bundle(ca.encode())
                self._cm_client_ca = ca.encode()
            except ValueError as exc:
                logger.error("%s: client-ca-file unusable, keeping the previous one: %s", where, exc)
        if not self._options.requestheader_client_ca_file:
            try:
                header = request_header_from_configmap(data)
                if header is None and self._cm_request_header is not None:
                    raise ValueError('missing content for CA bundle "requestheader-client-ca-file"')
                self._cm_request_header = header
            except ValueError as exc:
                if strict:
                    raise
                logger.error("%s: request-header settings unusable, keeping the previous: %s", where, exc)
        self._synced = True
        self._publish()

    async def _initial_lookup(self) -> None:
        assert self._client is not None
        path = f"/api/v1/namespaces/{CONFIGMAP_NAMESPACE}/configmaps/{CONFIGMAP_NAME}"
        try:
            try:
                obj = await request_json(self._client, "GET", path, request_timeout=10.0)
            except ApiError as exc:
                if exc.code == 404:
                    logger.info("configmap %s/%s not found", CONFIGMAP_NAMESPACE, CONFIGMAP_NAME)
                    self._synced = True
                    return
                if exc.code == 403:
                    logger.info(
                        "Unable to get configmap/%s in %s.  Usually fixed by "
                        "'kubectl create rolebinding -n %s ROLEBINDING_NAME --role=%s "
                        "--serviceaccount=YOUR_NS:YOUR_SA'",
                        CONFIGMAP_NAME,
                        CONFIGMAP_NAMESPACE,
                        CONFIGMAP_NAMESPACE,
                        READER_ROLE,
                    )
                raise
            self._apply_configmap(_configmap_data(obj), strict=True)
        except (KubeError, ValueError, TypeError) as exc:
            detail = exc.message if isinstance(exc, ApiError) else str(exc)
            if self._options.requestheader_client_ca_file:
                # Only the client CA was wanted from the ConfigMap: never fatal in the library.
                logger.warning("unable to load configmap based client CA file: %s", detail)
            elif self._options.tolerate_lookup_failure:
                logger.warning("Error looking up in-cluster authentication configuration: %s", detail)
                logger.warning(
                    "Continuing without authentication configuration. "
                    "This may treat all requests as anonymous."
                )
                logger.warning(
                    "To require authentication configuration lookup to succeed, "
                    "set --authentication-tolerate-lookup-failure=false"
                )
            else:
                raise AuthenticationLookupError(
                    f"unable to load configmap based request-header-client-ca-file: {detail}"
                ) from exc

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        """Look the ConfigMap up once (may raise `AuthenticationLookupError` before `started()`),
        report started, then keep the settings current until cancelled."""
        o = self._options
        if not o.skip_lookup and self._client is None:
            if not o.client_ca_file:
                logger.warning(
                    "No authentication-kubeconfig provided in order to lookup client-ca-file in configmap/%s "
                    "in %s, so client certificate authentication won't work.",
                    CONFIGMAP_NAME,
                    CONFIGMAP_NAMESPACE,
                )
            if not o.requestheader_client_ca_file:
                logger.warning(
                    "No authentication-kubeconfig provided in order to lookup requestheader-client-ca-file "
                    "in configmap/%s in %s, so request-header client certificate authentication won't work.",
                    CONFIGMAP_NAME,
                    CONFIGMAP_NAMESPACE,
                )
        if self._informer is not None:
            await self._initial_lookup()
        async with trio.open_nursery() as nursery:
            if self._informer is not None:
                await nursery.start(self._informer.run)
            if o.client_ca_file or o.requestheader_client_ca_file:
                nursery.start_soon(self._reload_files)
            task_status.started()
            await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _reload_files(self) -> None:
        o = self._options
        while True:
            await trio.sleep(o.file_reload_interval)
            for flag, path, attr in (
                ("--client-ca-file", o.client_ca_file, "_file_client_ca"),
                ("--requestheader-client-ca-file", o.requestheader_client_ca_file, "_file_rh_ca"),
            ):
                if not path:
                    continue
                try:
                    pem = await trio.to_thread.run_sync(_read_ca_file, flag, path)
                except OptionsError as exc:
                    logger.error("%s; keeping the previous CA bundle", exc)
                    continue
                setattr(self, attr, pem)
            self._publish()
