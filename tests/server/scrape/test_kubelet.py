"""The kubelet client against fake kubelets over real TLS: URLs, errors with their real causes,
size cap, connection reuse, the Summary fallback; and the `--kubelet-*` config validation."""

from __future__ import annotations

import gzip
import logging
import ssl
import zlib
from collections.abc import AsyncGenerator, Generator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import trio
import trustme

from k8s_metrics.kubeconfig import TokenFileAuth
from metrics_server.kube.objects import NodeAddress
from metrics_server.scrape.batch import KubeletError, NodeBatch, ParseError
from metrics_server.scrape.config import (
    DEFAULT_ADDRESS_TYPES,
    MANIFEST_ADDRESS_TYPES,
    ConfigError,
    KubeletClientConfig,
    build_ssl_context,
)
from metrics_server.scrape.kubelet import (
    AddressError,
    KubeletClient,
    KubeletTimeoutError,
    KubeletTransportError,
    ResponseTooLargeError,
    base_url,
    describe_cause,
    resolve_address,
    resolve_port,
    resource_path,
)

from .fakes import (
    RESOURCE,
    SAMPLE_70_PODS,
    SUMMARY,
    SUMMARY_SAMPLE,
    Drip,
    FakeKubelet,
    Hang,
    RequireAuth,
    Reset,
    ResetIfReused,
    Serve,
    make_node,
    node_for,
    server_context,
    start,
)

# Real sockets and a mock clock: let the clock jump only after the run loop has been idle for a
# moment of real time, so that data in flight on loopback is never mistaken for a hang.
AUTOJUMP_THRESHOLD = 0.1


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def config(ca: trustme.CA) -> KubeletClientConfig:
    pem = ca.cert_pem.bytes().decode()
    return KubeletClientConfig(
        use_node_status_port=True, preferred_address_types=MANIFEST_ADDRESS_TYPES, cluster_ca_data=pem
    )


class BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


# -- address, port, path -----------------------------------------------------------------------

ADDRESSES = (
    NodeAddress("Hostname", "node-a"),
    NodeAddress("InternalIP", "10.0.0.1"),
    NodeAddress("InternalIP", "10.0.0.2"),
    NodeAddress("ExternalIP", "203.0.113.9"),
)


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        (("InternalIP", "ExternalIP", "Hostname"), "10.0.0.1"),
        (("ExternalIP", "InternalIP"), "203.0.113.9"),
        (DEFAULT_ADDRESS_TYPES, "node-a"),
        (("InternalDNS", "ExternalIP"), "203.0.113.9"),
    ],
)
def test_first_address_of_first_preferred_type(types: tuple[str, ...], expected: str) -> None:
    assert resolve_address(make_node("n", addresses=ADDRESSES), types) == expected


def test_no_address_matched_names_the_types() -> None:
    node = make_node("n", addresses=(NodeAddress("Hostname", "node-a"),))
    with pytest.raises(AddressError) as info:
        resolve_address(node, ("InternalIP", "ExternalIP"))
    assert str(info.value) == "no address matched types [InternalIP ExternalIP]"


def test_ipv6_address_is_bracketed() -> None:
    node = make_node("n", addresses=(NodeAddress("InternalIP", "fd00::5"),))
    assert (
        base_url(node, KubeletClientConfig(preferred_address_types=("InternalIP",)))
        == "https://[fd00::5]:10250"
    )


@pytest.mark.parametrize(
    ("use_status_port", "reported", "expected"),
    [(False, 11250, 10250), (True, 11250, 11250), (True, 0, 10250)],
)
def test_port(use_status_port: bool, reported: int, expected: int) -> None:
    config = KubeletClientConfig(use_node_status_port=use_status_port)
    assert resolve_port(make_node("n", "10.0.0.1", reported), config) == expected


@pytest.mark.parametrize(
    ("annotation", "path"),
    [(None, "/metrics/resource"), ("/custom/metrics", "/custom/metrics"), ("custom", "/custom")],
)
def test_resource_path(annotation: str | None, path: str) -> None:
    assert resource_path(make_node("n", "10.0.0.1", metrics_path=annotation)) == path


# -- config validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "flag", "message"),
    [
        (
            {"certificate_authority": "ca.crt", "insecure_tls": True},
            "--kubelet-certificate-authority",
            "cannot use both --kubelet-certificate-authority and --kubelet-insecure-tls",
        ),
        (
            {"client_certificate": "c.crt"},
            "--kubelet-client-key",
            "need both --kubelet-client-key and --kubelet-client-certificate",
        ),
        (
            {"client_key": "c.key"},
            "--kubelet-client-certificate",
            "need both --kubelet-client-key and --kubelet-client-certificate",
        ),
        (
            {"request_timeout": 0.0},
            "--kubelet-request-timeout",
            "--kubelet-request-timeout should be positive",
        ),
        (
            {"request_timeout": -1.0},
            "--kubelet-request-timeout",
            "--kubelet-request-timeout should be positive",
        ),
        (
            {"request_timeout": float("nan")},
            "--kubelet-request-timeout",
            "--kubelet-request-timeout should be positive",
        ),
        ({"port": 0}, "--kubelet-port", "--kubelet-port must be in 1..65535, got 0"),
        ({"port": 70000}, "--kubelet-port", "--kubelet-port must be in 1..65535, got 70000"),
        (
            {"preferred_address_types": ()},
            "--kubelet-preferred-address-types",
            "--kubelet-preferred-address-types must not be empty",
        ),
        (
            {"preferred_address_types": ("InternalIp", "Hostname")},
            "--kubelet-preferred-address-types",
            "--kubelet-preferred-address-types: unknown address type(s) InternalIp; "
            "known: Hostname, InternalDNS, InternalIP, ExternalDNS, ExternalIP",
        ),
        (
            {"metrics_source": "prometheus"},
            "--kubelet-metrics-source",
            "--kubelet-metrics-source must be resource, summary or auto, got 'prometheus'",
        ),
        (
            {"max_response_bytes": 0},
            "--kubelet-max-response-bytes",
            "--kubelet-max-response-bytes should be positive",
        ),
        ({"max_concurrency": 0}, "--kubelet-max-concurrency", "--kubelet-max-concurrency should be positive"),
        (
            {"deprecated_completely_insecure": True, "insecure_tls": True},
            "--kubelet-insecure-tls",
            "cannot use both --kubelet-insecure-tls and --deprecated-kubelet-completely-insecure",
        ),
        (
            {"deprecated_completely_insecure": True, "certificate_authority": "ca.crt"},
            "--kubelet-certificate-authority",
            "cannot use both --kubelet-certificate-authority and --deprecated-kubelet-completely-insecure",
        ),
        (
            {"deprecated_completely_insecure": True, "client_certificate": "c.crt", "client_key": "c.key"},
            "--kubelet-client-certificate",
            "cannot use both --kubelet-client-certificate and --deprecated-kubelet-completely-insecure",
        ),
    ],
)
def test_config_contradictions_name_the_flag(kwargs: dict[str, object], flag: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        KubeletClientConfig(**kwargs).validate()  # type: ignore[arg-type]
    assert (info.value.flag, str(info.value)) == (flag, message)


NS = 1_000_000_000


def test_config_timeout_against_resolution() -> None:
    # metrics-server v0.8.0 (the reference binary): 10s/9s starts, 11s/10s and 20s/19s are refused.
    KubeletClientConfig(request_timeout=10).validate(metric_resolution_ns=15 * NS)
    KubeletClientConfig(request_timeout=9).validate(metric_resolution_ns=10 * NS)
    for resolution, timeout in ((11, 10), (20, 19), (10, 9.000000001)):
        with pytest.raises(ConfigError):
            KubeletClientConfig(request_timeout=timeout).validate(metric_resolution_ns=resolution * NS)
    with pytest.raises(ConfigError) as info:
        KubeletClientConfig(request_timeout=14).validate(metric_resolution_ns=15 * NS)
    assert info.value.flag == "--kubelet-request-timeout"
    assert (
        str(info.value) == "--kubelet-request-timeout (14s) must not exceed 90% of --metric-resolution (15s)"
    )


def test_config_defaults_are_valid() -> None:
    config = KubeletClientConfig()
    config.validate()
    assert (config.port, config.request_timeout, config.preferred_address_types) == (
        10250,
        10.0,
        ("Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP"),
    )


def test_unreadable_ca_file_names_the_flag(tmp_path: Path) -> None:
    missing = tmp_path / "missing.crt"
    with pytest.raises(ConfigError) as info:
        build_ssl_context(KubeletClientConfig(certificate_authority=str(missing)))
    assert info.value.flag == "--kubelet-certificate-authority"
    assert str(info.value).startswith(f"--kubelet-certificate-authority: cannot load {missing}: ")


def test_insecure_context_does_not_verify() -> None:
    ctx = build_ssl_context(KubeletClientConfig(insecure_tls=True))
    assert (ctx.verify_mode, ctx.check_hostname) == (ssl.CERT_NONE, False)


# -- describe_cause ----------------------------------------------------------------------------


def test_describe_cause_walks_context_and_groups() -> None:
    def chain() -> None:
        try:
            try:
                raise ExceptionGroup(
                    "all attempts failed", [ConnectionRefusedError(111, "Connection refused")]
                )
            except ExceptionGroup as group:
                raise OSError("all attempts to connect failed") from group
        except OSError:
            raise httpx.ConnectError("") from None

    with pytest.raises(httpx.ConnectError) as info:
        chain()
    assert describe_cause(info.value) == "[Errno 111] Connection refused"
    assert describe_cause(RuntimeError()) == "RuntimeError"
    assert describe_cause(ValueError("bad")) == "ValueError: bad"


# -- against fake kubelets ---------------------------------------------------------------------


async def test_scrapes_the_70_pod_sample_with_credentials(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet("127.0.0.2", server_context(ca, "127.0.0.2"))
    await start(nursery, fake)
    config = replace(config, auth=BearerAuth("s3cret"), user_agent="metrics-server/test")
    async with KubeletClient(config, time_ns=lambda: 7) as client:
        batch = await client.scrape(node_for("node-1", fake))
    assert batch.node == "node-1"
    assert len(batch.pods) == 70
    assert batch.node_point is not None and batch.node_point.cpu_ns == 357354910000
    [seen] = fake.requests
    assert seen.target == RESOURCE
    # Exactly what `httpx.AsyncClient.stream("GET", url)` sends, though built once per node.
    assert seen.headers == {
        "host": f"127.0.0.2:{fake.port}",
        "accept": "*/*",
        "accept-encoding": "gzip, deflate",
        "connection": "keep-alive",
        "user-agent": "metrics-server/test",
        "authorization": "Bearer s3cret",
    }


async def test_cookies_are_never_sent(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.2",
        server_context(ca, "127.0.0.2"),
        routes={RESOURCE: Serve(body=SAMPLE_70_PODS, headers=((b"set-cookie", b"session=abc; Path=/"),))},
    )
    await start(nursery, fake)
    async with KubeletClient(config) as client:
        await client.scrape(node_for("node-1", fake))
        await client.scrape(node_for("node-1", fake))
    assert ["cookie" in seen.headers for seen in fake.requests] == [False, False]


async def test_request_bytes_are_built_once_per_node_and_path(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet("127.0.0.2", server_context(ca, "127.0.0.2"))
    await start(nursery, fake)
    config = replace(config, auth=BearerAuth("s3cret"))
    node = node_for("node-1", fake)
    async with KubeletClient(config) as client:
        await client.scrape(node)
        [state] = client._nodes.values()
        wire = state.requests[RESOURCE].wire
        await client.scrape(node)
        assert state.requests[RESOURCE].wire is wire
    assert (
        wire
        == (
            f"GET /metrics/resource HTTP/1.1\r\nHost: 127.0.0.2:{fake.port}\r\nAccept: */*\r\n"
            "Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
            f"User-Agent: {config.user_agent}\r\nAuthorization: Bearer s3cret\r\n\r\n"
        ).encode()
    )


async def test_rotated_token_file_is_sent_on_the_same_connection(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    fake = FakeKubelet("127.0.0.2", server_context(ca, "127.0.0.2"))
    await start(nursery, fake)
    config = replace(config, auth=TokenFileAuth(token))
    node = node_for("node-1", fake)
    async with KubeletClient(config) as client:
        await client.scrape(node)
        token.write_text("second-token\n")
        await client.scrape(node)
        await client.scrape(node)
    assert [seen.headers["authorization"] for seen in fake.requests] == [
        "Bearer first",
        "Bearer second-token",
        "Bearer second-token",
    ]
    assert fake.accepted == 1


class RotatingAuth(httpx.Auth):
    """Sends the current token; on a 401 moves to the next one and retries once."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.tokens[0]}"
        response = yield request
        if response.status_code == 401 and len(self.tokens) > 1:
            self.tokens.pop(0)
            request.headers["Authorization"] = f"Bearer {self.tokens[0]}"
            yield request


async def test_401_lets_the_auth_flow_retry_with_a_new_token(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.2",
        server_context(ca, "127.0.0.2"),
        routes={RESOURCE: RequireAuth("Bearer new", Serve(body=SAMPLE_70_PODS))},
    )
    await start(nursery, fake)
    config = replace(config, auth=RotatingAuth("old", "new"))
    node = node_for("node-1", fake)
    async with KubeletClient(config) as client:
        first = await client.scrape(node)
        second = await client.scrape(node)
    assert (len(first.pods), len(second.pods)) == (70, 70)
    assert [seen.headers["authorization"] for seen in fake.requests] == [
        "Bearer old",
        "Bearer new",
        "Bearer new",
    ]
    assert fake.accepted == 1  # the 401's body was drained: the retry went on the same connection


class AsyncRotatingAuth(httpx.Auth):
    """Overrides `async_auth_flow` (as an auth doing I/O would): the client must run this one, not
    `auth_flow` (which fails the test if called)."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.closed = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise AssertionError("the synchronous flow of an auth with its own async flow ran")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        try:
            await trio.lowlevel.checkpoint()
            request.headers["Authorization"] = f"Bearer {self.tokens[0]}"
            response = yield request
            if response.status_code == 401 and len(self.tokens) > 1:
                self.tokens.pop(0)
                request.headers["Authorization"] = f"Bearer {self.tokens[0]}"
                yield request
        finally:
            self.closed += 1


async def test_an_auth_with_its_own_async_flow_runs_it(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.2",
        server_context(ca, "127.0.0.2"),
        routes={RESOURCE: RequireAuth("Bearer new", Serve(body=SAMPLE_70_PODS))},
    )
    await start(nursery, fake)
    auth = AsyncRotatingAuth("old", "new")
    node = node_for("node-1", fake)
    async with KubeletClient(replace(config, auth=auth)) as client:
        first = await client.scrape(node)
        second = await client.scrape(node)
    assert (len(first.pods), len(second.pods)) == (70, 70)
    assert [seen.headers["authorization"] for seen in fake.requests] == [
        "Bearer old",
        "Bearer new",
        "Bearer new",
    ]
    assert auth.closed == 2  # each request's flow was closed


async def test_401_without_a_new_token_is_an_error(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.2",
        server_context(ca, "127.0.0.2"),
        routes={RESOURCE: RequireAuth("Bearer new", Serve(body=SAMPLE_70_PODS))},
    )
    await start(nursery, fake)
    config = replace(config, auth=RotatingAuth("old"))
    async with KubeletClient(config) as client:
        with pytest.raises(KubeletError) as info:
            await client.scrape(node_for("node-1", fake))
    assert str(info.value) == 'request failed, status: "401 Unauthorized"'
    assert len(fake.requests) == 1


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_compressed_body_is_decoded(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig, coding: str
) -> None:
    body = gzip.compress(SAMPLE_70_PODS) if coding == "gzip" else zlib.compress(SAMPLE_70_PODS)
    fake = FakeKubelet(
        "127.0.0.2",
        server_context(ca, "127.0.0.2"),
        routes={RESOURCE: Serve(body=body, headers=((b"content-encoding", coding.encode()),))},
    )
    await start(nursery, fake)
    async with KubeletClient(config) as client:
        batch = await client.scrape(node_for("node-1", fake))
    assert len(batch.pods) == 70


async def test_decoded_size_counts_against_the_cap(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    body = gzip.compress(SAMPLE_70_PODS)
    assert len(body) < 10_000 < len(SAMPLE_70_PODS)
    fake = FakeKubelet(
        "127.0.0.2",
        server_context(ca, "127.0.0.2"),
        routes={RESOURCE: Serve(body=body, headers=((b"content-encoding", b"gzip"),))},
    )
    await start(nursery, fake)
    config = replace(config, max_response_bytes=10_000)
    async with KubeletClient(config) as client:
        with pytest.raises(ResponseTooLargeError) as info:
            await client.scrape(node_for("node-1", fake))
    assert str(info.value) == (
        f'Get "https://127.0.0.2:{fake.port}/metrics/resource": '
        "response body exceeds --kubelet-max-response-bytes (10000 bytes)"
    )


async def test_undecodable_body_is_a_transport_error(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.2",
        server_context(ca, "127.0.0.2"),
        routes={RESOURCE: Serve(body=b"not gzip", headers=((b"content-encoding", b"gzip"),))},
    )
    await start(nursery, fake)
    async with KubeletClient(config) as client:
        with pytest.raises(KubeletTransportError) as info:
            await client.scrape(node_for("node-1", fake))
    assert str(info.value) == (
        f'Get "https://127.0.0.2:{fake.port}/metrics/resource": '
        "error: Error -3 while decompressing data: incorrect header check"  # zlib.error, as under httpx
    )


async def test_chunked_body_and_connection_reuse(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.2",
        server_context(ca, "127.0.0.2"),
        routes={RESOURCE: Serve(body=SAMPLE_70_PODS, chunked=True)},
    )
    await start(nursery, fake)
    node = node_for("node-1", fake)
    async with KubeletClient(config) as client:
        batches = [await client.scrape(node) for _ in range(2)]
    assert [len(batch.pods) for batch in batches] == [70, 70]
    assert fake.accepted == 1


async def test_connection_close_from_the_kubelet_is_honoured(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.2",
        server_context(ca, "127.0.0.2"),
        routes={RESOURCE: Serve(body=SAMPLE_70_PODS, headers=((b"connection", b"close"),))},
    )
    await start(nursery, fake)
    node = node_for("node-1", fake)
    async with KubeletClient(config) as client:
        batches = [await client.scrape(node) for _ in range(2)]
    assert [len(batch.pods) for batch in batches] == [70, 70]
    assert (fake.accepted, len(fake.requests)) == (2, 2)


async def test_redirect_is_not_followed(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.2",
        server_context(ca, "127.0.0.2"),
        routes={
            RESOURCE: Serve(status=302, body=b"moved", headers=((b"location", b"/elsewhere"),)),
            "/elsewhere": Serve(body=SAMPLE_70_PODS),
        },
    )
    await start(nursery, fake)
    async with KubeletClient(config) as client:
        with pytest.raises(KubeletError) as info:
            await client.scrape(node_for("node-1", fake))
    assert str(info.value) == 'request failed, status: "302 Found"'
    assert [seen.target for seen in fake.requests] == [RESOURCE]


async def test_large_error_body_closes_the_connection(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.2",
        server_context(ca, "127.0.0.2"),
        routes={RESOURCE: Serve(status=500, body=b"x" * (64 * 1024 + 1))},
    )
    await start(nursery, fake)
    node = node_for("node-1", fake)
    async with KubeletClient(config) as client:
        for _ in range(2):
            with pytest.raises(KubeletError) as info:
                await client.scrape(node)
            assert str(info.value) == 'request failed, status: "500 Internal Server Error"'
    assert fake.accepted == 2


async def test_annotation_overrides_the_path(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.2", server_context(ca, "127.0.0.2"), routes={"/custom/metrics": Serve(body=SAMPLE_70_PODS)}
    )
    await start(nursery, fake)
    async with KubeletClient(config) as client:
        batch = await client.scrape(node_for("node-1", fake, metrics_path="/custom/metrics"))
    assert len(batch.pods) == 70
    assert [r.target for r in fake.requests] == ["/custom/metrics"]


@pytest.mark.parametrize(
    ("status", "text"),
    [(401, "401 Unauthorized"), (403, "403 Forbidden"), (500, "500 Internal Server Error")],
)
async def test_status_other_than_200_is_an_error(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig, status: int, text: str
) -> None:
    fake = FakeKubelet(
        "127.0.0.3", server_context(ca, "127.0.0.3"), routes={RESOURCE: Serve(status=status, body=b"no")}
    )
    await start(nursery, fake)
    async with KubeletClient(config) as client:
        with pytest.raises(KubeletError) as info:
            await client.scrape(node_for("node-1", fake))
        # The small error body was read, so the connection is reused.
        with pytest.raises(KubeletError):
            await client.scrape(node_for("node-1", fake))
    assert str(info.value) == f'request failed, status: "{text}"'
    assert fake.accepted == 1


async def test_garbage_body_is_a_parse_error(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.3",
        server_context(ca, "127.0.0.3"),
        routes={RESOURCE: Serve(body=b"\x00\xffnot prometheus {{{\n")},
    )
    await start(nursery, fake)
    async with KubeletClient(config) as client:
        with pytest.raises(ParseError):
            await client.scrape(node_for("node-1", fake))


@pytest.mark.parametrize("chunked", [False, True])
async def test_oversized_body_is_aborted_naming_the_cap(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig, chunked: bool
) -> None:
    fake = FakeKubelet(
        "127.0.0.4",
        server_context(ca, "127.0.0.4"),
        routes={RESOURCE: Serve(body=SAMPLE_70_PODS, chunked=chunked)},
    )
    await start(nursery, fake)
    config = replace(config, max_response_bytes=10_000)
    async with KubeletClient(config) as client:
        with pytest.raises(ResponseTooLargeError) as info:
            await client.scrape(node_for("node-1", fake))
    assert str(info.value) == (
        f'Get "https://127.0.0.4:{fake.port}/metrics/resource": '
        "response body exceeds --kubelet-max-response-bytes (10000 bytes)"
    )


async def test_certificate_without_ip_san_reports_the_real_cause(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet("127.0.0.5", server_context(ca, "kubelet.example"))
    await start(nursery, fake)
    async with KubeletClient(config) as client:
        with pytest.raises(KubeletTransportError) as info:
            await client.scrape(node_for("node-1", fake))
    assert str(info.value) == (
        f'Get "https://127.0.0.5:{fake.port}/metrics/resource": [SSL: CERTIFICATE_VERIFY_FAILED] '
        "certificate verify failed: IP address mismatch, certificate is not valid for '127.0.0.5'."
    )


async def test_certificate_from_another_ca(nursery: trio.Nursery, config: KubeletClientConfig) -> None:
    fake = FakeKubelet("127.0.0.6", server_context(trustme.CA(), "127.0.0.6"))
    await start(nursery, fake)
    async with KubeletClient(config) as client:
        with pytest.raises(KubeletTransportError) as info:
            await client.scrape(node_for("node-1", fake))
        insecure = replace(config, insecure_tls=True, cluster_ca_data=None)
        async with KubeletClient(insecure) as insecure_client:
            assert len((await insecure_client.scrape(node_for("node-1", fake))).pods) == 70
    assert str(info.value) == (
        f'Get "https://127.0.0.6:{fake.port}/metrics/resource": [SSL: CERTIFICATE_VERIFY_FAILED] '
        "certificate verify failed: unable to get local issuer certificate"
    )


async def test_explicit_ca_file_and_client_certificate(
    nursery: trio.Nursery, ca: trustme.CA, tmp_path: Path
) -> None:
    client_ca = trustme.CA()
    fake = FakeKubelet("127.0.0.7", server_context(ca, "127.0.0.7", client_ca=client_ca))
    await start(nursery, fake)
    leaf = client_ca.issue_cert("metrics-server-client", common_name="metrics-server-client")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "client.crt"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    config = KubeletClientConfig(
        use_node_status_port=True,
        preferred_address_types=("InternalIP",),
        certificate_authority=str(tmp_path / "ca.crt"),
        client_certificate=str(tmp_path / "client.crt"),
        client_key=str(tmp_path / "client.key"),
    )
    config.validate()
    async with KubeletClient(config) as client:
        await client.scrape(node_for("node-1", fake))
    assert fake.requests[0].client_cn == "metrics-server-client"


async def test_connection_reset_reports_the_errno(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet("127.0.0.8", server_context(ca, "127.0.0.8"), routes={RESOURCE: Reset()})
    await start(nursery, fake)
    async with KubeletClient(config) as client:
        with pytest.raises(KubeletTransportError) as info:
            await client.scrape(node_for("node-1", fake))
    assert str(info.value) == (
        f'Get "https://127.0.0.8:{fake.port}/metrics/resource": [Errno 104] Connection reset by peer'
    )


async def test_connection_refused(config: KubeletClientConfig) -> None:
    async with KubeletClient(config) as client:
        with pytest.raises(KubeletTransportError) as info:
            await client.scrape(make_node("node-1", "127.0.0.9", 1))
    assert str(info.value) == (
        "Get \"https://127.0.0.9:1/metrics/resource\": [Errno 111] Error connecting to ('127.0.0.9', 1): "
        "Connection refused"
    )


@pytest.mark.parametrize("action", [Hang(), Drip(SAMPLE_70_PODS, chunk=100, interval=4.0)])
async def test_hanging_or_dripping_kubelet_times_out(
    nursery: trio.Nursery,
    ca: trustme.CA,
    config: KubeletClientConfig,
    mock_clock: trio.testing.MockClock,
    action: Hang | Drip,
) -> None:
    mock_clock.autojump_threshold = AUTOJUMP_THRESHOLD
    fake = FakeKubelet("127.0.0.10", server_context(ca, "127.0.0.10"), routes={RESOURCE: action})
    await start(nursery, fake)
    async with KubeletClient(config) as client:
        started = trio.current_time()
        with pytest.raises(KubeletTimeoutError) as info:
            await client.scrape(node_for("node-1", fake))
        assert trio.current_time() - started == pytest.approx(10.0)
    assert str(info.value) == (
        f'Get "https://127.0.0.10:{fake.port}/metrics/resource": no complete response within '
        "--kubelet-request-timeout (10s)"
    )


async def test_connection_is_reused_across_scrapes_and_closed_with_the_node(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet("127.0.0.11", server_context(ca, "127.0.0.11"))
    await start(nursery, fake)
    node = node_for("node-1", fake)
    async with KubeletClient(config) as client:
        for _ in range(3):
            await client.scrape(node)
        assert fake.accepted == 1
        assert await client.retain({"node-1"}) == []
        assert await client.retain(set()) == ["node-1"]
        assert client.nodes == frozenset()
        await client.scrape(node)
        assert fake.accepted == 2
        assert client.nodes == frozenset({"node-1"})
    assert client.nodes == frozenset()


async def test_reused_connection_closed_by_the_kubelet_is_retried_once(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.12",
        server_context(ca, "127.0.0.12"),
        routes={RESOURCE: ResetIfReused(Serve(body=SAMPLE_70_PODS))},
    )
    await start(nursery, fake)
    node = node_for("node-1", fake)
    async with KubeletClient(config) as client:
        await client.scrape(node)
        batch = await client.scrape(node)
    assert len(batch.pods) == 70
    assert (fake.accepted, len(fake.requests)) == (2, 3)


async def test_auto_falls_back_to_summary_once_and_remembers(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="metrics_server.scrape.kubelet")
    fake = FakeKubelet(
        "127.0.0.13", server_context(ca, "127.0.0.13"), routes={SUMMARY: Serve(body=SUMMARY_SAMPLE)}
    )
    await start(nursery, fake)
    config = replace(config, metrics_source="auto")
    node = node_for("node-1", fake)
    async with KubeletClient(config) as client:
        first = await client.scrape(node)
        second = await client.scrape(node)
    assert (len(first.pods), len(second.pods)) == (17, 17)
    assert [r.target for r in fake.requests] == [RESOURCE, SUMMARY, SUMMARY]
    assert fake.accepted == 1
    assert [(r.getMessage(), getattr(r, "node", None)) for r in caplog.records] == [
        ("Kubelet has no /metrics/resource, using the Summary API from now on", "node-1")
    ]


async def test_auto_does_not_fall_back_from_an_annotated_path(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.13", server_context(ca, "127.0.0.13"), routes={SUMMARY: Serve(body=SUMMARY_SAMPLE)}
    )
    await start(nursery, fake)
    config = replace(config, metrics_source="auto")
    async with KubeletClient(config) as client:
        with pytest.raises(KubeletError) as info:
            await client.scrape(node_for("node-1", fake, metrics_path="/custom"))
    assert str(info.value) == 'request failed, status: "404 Not Found"'


async def test_summary_source_asks_only_for_the_summary(
    nursery: trio.Nursery, ca: trustme.CA, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet(
        "127.0.0.14", server_context(ca, "127.0.0.14"), routes={SUMMARY: Serve(body=SUMMARY_SAMPLE)}
    )
    await start(nursery, fake)
    config = replace(config, metrics_source="summary")
    async with KubeletClient(config) as client:
        batch = await client.scrape(node_for("node-1", fake))
    assert isinstance(batch, NodeBatch) and len(batch.pods) == 17
    assert [r.target for r in fake.requests] == [SUMMARY]


async def test_completely_insecure_uses_plain_http_without_credentials(
    nursery: trio.Nursery, config: KubeletClientConfig
) -> None:
    fake = FakeKubelet("127.0.0.15", None)
    await start(nursery, fake)
    config = replace(config, deprecated_completely_insecure=True, auth=BearerAuth("s3cret"))
    config.validate()
    async with KubeletClient(config) as client:
        batch = await client.scrape(node_for("node-1", fake))
    assert len(batch.pods) == 70
    [seen] = fake.requests
    assert "authorization" not in seen.headers
