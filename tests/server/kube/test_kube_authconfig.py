"""Authentication settings (`auth.authconfig`) from the extension-apiserver-authentication ConfigMap and
from flags. They live beside the fake kube-apiserver of this directory, which they talk to.
"""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path

import httpx
import pytest
import trio
import trustme
from kubefake import FakeApiServer, Recorder

from kubesim.responses import status_doc
from metrics_server.auth.authconfig import (
    AuthenticationConfig,
    AuthenticationConfigSource,
    AuthenticationOptions,
    RequestHeaderConfig,
)
from metrics_server.kube.errors import AuthenticationLookupError, OptionsError
from metrics_server.kube.informer import InformerConfig

FAST = InformerConfig(backoff_initial=0.001, backoff_max=0.002)


def ca_pem(name: str) -> str:
    return trustme.CA(organization_name=name).cert_pem.bytes().decode()


def configmap(data: dict[str, str]) -> dict[str, object]:
    return {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
        "data": data,
    }


def full_data(client_ca: str, proxy_ca: str) -> dict[str, str]:
    return {
        "client-ca-file": client_ca,
        "requestheader-client-ca-file": proxy_ca,
        "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
        "requestheader-uid-headers": '["X-Remote-Uid"]',
    }


def expected_header(proxy_ca: str) -> RequestHeaderConfig:
    return RequestHeaderConfig(
        ca_pem=proxy_ca.encode(),
        allowed_names=("front-proxy-client",),
        username_headers=("X-Remote-User",),
        group_headers=("X-Remote-Group",),
        extra_header_prefixes=("X-Remote-Extra-",),
        uid_headers=("X-Remote-Uid",),
    )


class Changes:
    def __init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel[AuthenticationConfig](math.inf)

    def __call__(self, config: AuthenticationConfig) -> None:
        self.send.send_nowait(config)


async def test_configmap_settings_and_ca_rotation(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    client_ca, proxy_ca = ca_pem("client"), ca_pem("proxy")
    fake.configmaps.put(configmap(full_data(client_ca, proxy_ca)))
    changes = Changes()
    recorder = Recorder()
    source = AuthenticationConfigSource(
        AuthenticationOptions(), client, informer_config=FAST, on_change=changes, observer=recorder
    )
    assert not source.has_synced
    await nursery.start(source.run)

    assert source.has_synced
    assert source.current() == AuthenticationConfig(client_ca.encode(), expected_header(proxy_ca))
    assert await changes.receive.receive() == source.current()
    first_get = fake.requests[0]
    assert first_get.path == "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"
    watch = await fake.configmaps.next_watch()
    assert watch.params["fieldSelector"] == "metadata.name=extension-apiserver-authentication"

    rotated_client, rotated_proxy = ca_pem("client-2"), ca_pem("proxy-2")
    data = full_data(client_ca + rotated_client, rotated_proxy)
    data["requestheader-allowed-names"] = "[]"
    fake.configmaps.put(configmap(data))
    new = await changes.receive.receive()

    assert new.client_ca_pem == (client_ca + rotated_client).encode()
    assert new.request_header is not None
    assert new.request_header.ca_pem == rotated_proxy.encode()
    assert new.request_header.allowed_names == ()
    assert source.current() is new


async def test_invalid_update_keeps_previous_settings(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    client_ca, proxy_ca = ca_pem("client"), ca_pem("proxy")
    fake.configmaps.put(configmap(full_data(client_ca, proxy_ca)))
    recorder = Recorder()
    source = AuthenticationConfigSource(
        AuthenticationOptions(), client, informer_config=FAST, observer=recorder
    )
    await nursery.start(source.run)
    await fake.configmaps.next_watch()
    before = source.current()

    bad = full_data("not a certificate", proxy_ca)
    bad["requestheader-group-headers"] = "X-Remote-Group"  # not a JSON array
    fake.configmaps.put(configmap(bad))
    await recorder.wait_for("event", "MODIFIED")
    fake.configmaps.remove("extension-apiserver-authentication", "kube-system")
    await recorder.wait_for("event", "DELETED")

    assert source.current() == before
    assert "client-ca-file unusable, keeping the previous one: no PEM certificate found" in caplog.text
    assert (
        "request-header settings unusable, keeping the previous: requestheader-group-headers" in caplog.text
    )


async def test_flags_override_the_configmap(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery, tmp_path: Path
) -> None:
    cm_client, cm_proxy, file_client = ca_pem("cm-client"), ca_pem("cm-proxy"), ca_pem("file-client")
    fake.configmaps.put(configmap(full_data(cm_client, cm_proxy)))
    (tmp_path / "client-ca.crt").write_text(file_client)
    options = AuthenticationOptions(client_ca_file=str(tmp_path / "client-ca.crt"))
    source = AuthenticationConfigSource(options, client, informer_config=FAST)
    await nursery.start(source.run)
    assert source.current() == AuthenticationConfig(file_client.encode(), expected_header(cm_proxy))


async def test_requestheader_flags_take_all_settings_from_flags(
    fake: FakeApiServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    cm_client, cm_proxy, file_proxy = ca_pem("cm-client"), ca_pem("cm-proxy"), ca_pem("file-proxy")
    fake.configmaps.put(configmap(full_data(cm_client, cm_proxy)))
    path = tmp_path / "front-proxy-ca.crt"
    path.write_text(file_proxy)
    options = AuthenticationOptions(
        requestheader_client_ca_file=str(path),
        requestheader_allowed_names=("aggregator",),
        file_reload_interval=0.01,
    )
    changes = Changes()
    source = AuthenticationConfigSource(options, client, informer_config=FAST, on_change=changes)
    async with trio.open_nursery() as nursery:
        await nursery.start(source.run)
        assert await changes.receive.receive() == source.current()
        assert source.current() == AuthenticationConfig(
            cm_client.encode(),
            RequestHeaderConfig(
                ca_pem=file_proxy.encode(),
                allowed_names=("aggregator",),
                username_headers=("x-remote-user",),
                group_headers=("x-remote-group",),
                extra_header_prefixes=("x-remote-extra-",),
                uid_headers=(),
            ),
        )
        # The file is re-read periodically: a rotated front-proxy CA is picked up.
        rotated = ca_pem("file-proxy-2")
        path.write_text(rotated)
        new = await changes.receive.receive()
        assert new.request_header is not None and new.request_header.ca_pem == rotated.encode()
        nursery.cancel_scope.cancel()


FORBIDDEN = (
    'configmaps "extension-apiserver-authentication" is forbidden: User "system:serviceaccount:kube-system:'
    'metrics-server" cannot get resource "configmaps" in API group "" in the namespace "kube-system"'
)


async def test_forbidden_lookup_stops_start_up(fake: FakeApiServer, client: httpx.AsyncClient) -> None:
    fake.configmaps.fail_lists.append((403, status_doc(403, FORBIDDEN)))
    source = AuthenticationConfigSource(AuthenticationOptions(), client, informer_config=FAST)
    with pytest.RaisesGroup(AuthenticationLookupError) as info:
        async with trio.open_nursery() as nursery:
            await nursery.start(source.run)
    (error,) = info.value.exceptions
    assert str(error) == f"unable to load configmap based request-header-client-ca-file: {FORBIDDEN}"


async def test_tolerated_lookup_failure_continues_and_recovers(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    fake.configmaps.fail_lists.append((403, status_doc(403, FORBIDDEN)))
    proxy_ca = ca_pem("proxy")
    fake.configmaps.put(configmap(full_data(ca_pem("client"), proxy_ca)))
    changes = Changes()
    options = AuthenticationOptions(tolerate_lookup_failure=True)
    source = AuthenticationConfigSource(options, client, informer_config=FAST, on_change=changes)
    with caplog.at_level(logging.INFO, logger="metrics_server.auth.authconfig"):
        await nursery.start(source.run)
        assert source.current() == AuthenticationConfig(None, None)
        assert not source.has_synced
        # Unlike the library, the ConfigMap keeps being watched, so the settings arrive later.
        later = await changes.receive.receive()
    assert later.request_header == expected_header(proxy_ca)
    assert source.has_synced
    messages = [r.getMessage() for r in caplog.records]
    assert messages[:4] == [
        "Unable to get configmap/extension-apiserver-authentication in kube-system.  Usually fixed by "
        "'kubectl create rolebinding -n kube-system ROLEBINDING_NAME "
        "--role=extension-apiserver-authentication-reader --serviceaccount=YOUR_NS:YOUR_SA'",
        f"Error looking up in-cluster authentication configuration: {FORBIDDEN}",
        "Continuing without authentication configuration. This may treat all requests as anonymous.",
        "To require authentication configuration lookup to succeed, "
        "set --authentication-tolerate-lookup-failure=false",
    ]


async def test_missing_configmap_is_not_an_error(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    source = AuthenticationConfigSource(AuthenticationOptions(), client, informer_config=FAST)
    await nursery.start(source.run)
    assert source.has_synced
    assert source.current() == AuthenticationConfig(None, None)


async def test_malformed_configmap_at_start_is_fatal(fake: FakeApiServer, client: httpx.AsyncClient) -> None:
    data = full_data(ca_pem("client"), ca_pem("proxy"))
    data["requestheader-allowed-names"] = "front-proxy-client"
    fake.configmaps.put(configmap(data))
    source = AuthenticationConfigSource(AuthenticationOptions(), client, informer_config=FAST)
    with pytest.RaisesGroup(AuthenticationLookupError) as info:
        async with trio.open_nursery() as nursery:
            await nursery.start(source.run)
    (error,) = info.value.exceptions
    assert str(error).startswith(
        "unable to load configmap based request-header-client-ca-file: requestheader-allowed-names: "
    )


async def test_skip_lookup_never_asks(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    source = AuthenticationConfigSource(AuthenticationOptions(skip_lookup=True), client)
    await nursery.start(source.run)
    assert source.has_synced
    assert source.current() == AuthenticationConfig(None, None)
    assert fake.requests == []


async def test_no_client_warns_like_the_library(
    caplog: pytest.LogCaptureFixture, nursery: trio.Nursery
) -> None:
    source = AuthenticationConfigSource(AuthenticationOptions(), None, rng=random.Random(1))
    await nursery.start(source.run)
    assert source.current() == AuthenticationConfig(None, None)
    assert [r.getMessage() for r in caplog.records] == [
        "No authentication-kubeconfig provided in order to lookup client-ca-file in configmap/"
        "extension-apiserver-authentication in kube-system, so client certificate authentication won't work.",
        "No authentication-kubeconfig provided in order to lookup requestheader-client-ca-file in configmap/"
        "extension-apiserver-authentication in kube-system, so request-header client certificate "
        "authentication won't work.",
    ]


def test_option_errors_name_the_flag(tmp_path: Path) -> None:
    with pytest.raises(
        OptionsError, match=r'^--requestheader-group-headers: empty value in "requestheader-group-headers"$'
    ):
        AuthenticationOptions(requestheader_group_headers=("X-Remote-Group", " ")).validate()
    (tmp_path / "bad.crt").write_text("garbage")
    with pytest.raises(OptionsError, match=r"^--client-ca-file: unable to load CA bundle"):
        AuthenticationConfigSource(AuthenticationOptions(client_ca_file=str(tmp_path / "bad.crt")), None)
    with pytest.raises(OptionsError, match=r"^--requestheader-client-ca-file: unable to load CA bundle"):
        AuthenticationConfigSource(
            AuthenticationOptions(requestheader_client_ca_file=str(tmp_path / "missing.crt")), None
        )


def test_nonstandard_header_flags_warn(caplog: pytest.LogCaptureFixture) -> None:
    AuthenticationOptions(requestheader_username_headers=("X-User",)).validate()
    assert [r.getMessage() for r in caplog.records] == [
        "--requestheader-username-headers is set without specifying the standard X-Remote-User header "
        "- API aggregation will not work"
    ]
