"""The kube-apiserver client factory: TLS trust, bearer auth, User-Agent, tls-server-name, errors."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Generator
from pathlib import Path

import httpx
import pytest
import trio
import trustme
from kubefake import Connection, FakeApiServer, make_node

from metrics_server import __version__
from metrics_server.kube.connection import ApiClientOptions, load_connection, make_api_client
from metrics_server.kube.errors import ApiError, KubeTransportError, OptionsError, describe_exception
from metrics_server.kube.rest import request_json


class Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


async def test_client_sends_user_agent_and_credentials(fake: FakeApiServer) -> None:
    fake.required_token = "s3cret"
    fake.nodes.put(make_node("n1"))
    conn = Connection(fake.url, fake.client_ssl_context(), Bearer("s3cret"))
    async with make_api_client(conn) as api:
        body = await request_json(api, "GET", "/api/v1/nodes")
    assert [i["metadata"]["name"] for i in body["items"]] == ["n1"]
    headers = fake.requests[-1].headers
    assert headers["user-agent"] == f"metrics-server/{__version__} (python; httpx) metrics_server.kube"
    assert headers["accept"] == "application/json"


async def test_wrong_credentials_give_an_api_error(fake: FakeApiServer) -> None:
    fake.required_token = "s3cret"
    async with make_api_client(Connection(fake.url, fake.client_ssl_context(), Bearer("nope"))) as api:
        with pytest.raises(ApiError) as info:
            await request_json(api, "GET", "/api/v1/nodes")
    assert (info.value.code, info.value.reason, info.value.message) == (401, "Unauthorized", "Unauthorized")


async def test_server_path_prefix_is_kept(fake: FakeApiServer) -> None:
    async with make_api_client(Connection(fake.url + "/prefix", fake.client_ssl_context())) as api:
        with pytest.raises(ApiError):
            await request_json(api, "GET", "/api/v1/nodes")
    assert fake.requests[-1].path == "/prefix/api/v1/nodes"


async def test_tls_server_name_is_used_for_verification(ca: trustme.CA, nursery: trio.Nursery) -> None:
    server = FakeApiServer(ca, cert_names=("kubernetes.default.svc",))
    await server.bind()
    server.start_listening(nursery)
    try:
        named = Connection(server.url, server.client_ssl_context(), tls_server_name="kubernetes.default.svc")
        async with make_api_client(named) as api:
            body = await request_json(api, "GET", "/api/v1/nodes")
        assert body["items"] == []

        async with make_api_client(Connection(server.url, server.client_ssl_context())) as api:
            with pytest.raises(KubeTransportError, match="IP address mismatch"):
                await request_json(api, "GET", "/api/v1/nodes")
    finally:
        server.close()


def test_options_validation_names_the_option() -> None:
    with pytest.raises(OptionsError, match=r"^max_connections: "):
        ApiClientOptions(max_connections=2).validate()


def test_describe_exception_follows_the_chain() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise httpx.ConnectError("") from inner
    except httpx.ConnectError as exc:
        assert (
            describe_exception(exc)
            == "ConnectError <- ConnectionRefusedError: [Errno 111] Connection refused"
        )


def test_api_error_from_non_status_body() -> None:
    err = ApiError.from_body(502, b"<html>bad gateway</html>")
    assert (err.code, err.reason, err.message) == (502, "BadGateway", "<html>bad gateway</html>")
    assert not err.is_gone
    assert ApiError.from_status({"kind": "Status", "code": 410, "reason": "Expired", "message": "x"}).is_gone


async def test_kubeconfig_connection_end_to_end(fake: FakeApiServer, tmp_path: Path) -> None:
    fake.required_token = "kc-token"
    fake.nodes.put(make_node("n1"))
    ca_data = base64.b64encode(fake.ca.cert_pem.bytes()).decode()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
        f"clusters:\n- name: test\n  cluster:\n    server: {fake.url}\n"
        f"    certificate-authority-data: {ca_data}\n"
        "users:\n- name: test\n  user:\n    token: kc-token\n"
        "contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n"
    )
    conn = await trio.to_thread.run_sync(load_connection, str(kubeconfig))
    async with make_api_client(conn) as api:
        body = await request_json(api, "GET", "/api/v1/nodes")
    assert [i["metadata"]["name"] for i in body["items"]] == ["n1"]


def test_connection_errors_name_the_flag(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match=r"^--kubeconfig: "):
        load_connection(str(tmp_path / "missing"))
    with pytest.raises(OptionsError, match=r"^--authentication-kubeconfig: "):
        load_connection(str(tmp_path / "missing"), flag="--authentication-kubeconfig")


async def test_requests_go_through_the_kubeconfig_proxy(fake: FakeApiServer) -> None:
    """With `proxy-url`, the apiserver is reached through the proxy: a proxy that is down fails the
    request although the apiserver itself answers (the same connection without a proxy works)."""
    fake.nodes.put(make_node("n1"))
    closed = trio.socket.socket()
    await closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    proxy = f"http://127.0.0.1:{port}"  # bound, never listening: refuses
    with closed:
        direct = Connection(fake.url, fake.client_ssl_context())
        async with make_api_client(direct) as api:
            assert (await request_json(api, "GET", "/api/v1/nodes"))["items"][0]["metadata"]["name"] == "n1"
        proxied = Connection(fake.url, fake.client_ssl_context(), proxy=proxy)
        async with make_api_client(proxied) as api:
            with pytest.raises(KubeTransportError) as info:
                await request_json(api, "GET", "/api/v1/nodes")
    assert f":{port}" not in fake.url
    assert "ConnectError" in str(info.value) and "refused" in str(info.value)


def test_socks_proxy_without_socksio_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = Connection("https://127.0.0.1:6443", ssl.create_default_context(), proxy="socks5://p:1080")
    import builtins

    real_import = builtins.__import__

    def no_socksio(name: str, *args: object, **kwargs: object) -> object:
        if name == "socksio" or name.startswith("socksio."):
            raise ImportError("No module named 'socksio'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_socksio)
    with pytest.raises(OptionsError, match=r"^proxy-url: socks5://p:1080: .*socks"):
        make_api_client(conn)
