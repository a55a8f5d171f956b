"""The kubelets' body and connection faults (`kubesim.faults`), read off the wire."""

from __future__ import annotations

import ssl

import orjson
import pytest
import trio
import trio.testing

from kubesim import METRICS_SERVER_USER, SimCluster
from kubesim import faults as sim_faults
from kubesim.model import FAULT_MODES


async def open_kubelet(cluster: SimCluster, node: str) -> trio.SSLStream[trio.SocketStream]:
    ctx = ssl.create_default_context(cafile=str(cluster.paths.ca_cert))
    host = cluster.node_ip(node)
    port = int(cluster.kubelet_url(node).rsplit(":", 1)[1])
    stream = await trio.open_ssl_over_tcp_stream(host, port, ssl_context=ctx)
    await stream.do_handshake()
    return stream


def request(cluster: SimCluster, path: str) -> bytes:
    token = cluster.token(METRICS_SERVER_USER)
    return f"GET {path} HTTP/1.1\r\nHost: kubelet\r\nAuthorization: Bearer {token}\r\n\r\n".encode()


async def read_head(stream: trio.SSLStream[trio.SocketStream]) -> tuple[dict[str, str], bytes]:
    """The response headers (lower-case names) and the body bytes read with them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 "
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return headers, rest


async def read_body(stream: trio.SSLStream[trio.SocketStream]) -> bytes:
    """A whole response body sized by its Content-Length."""
    headers, body = await read_head(stream)
    while len(body) < int(headers["content-length"]):
        body += await stream.receive_some()
    return body


async def read_until_closed(stream: trio.SSLStream[trio.SocketStream]) -> tuple[bytes, str]:
    """Everything until the end, and how it ended: `eof` or `reset`."""
    data = b""
    try:
        while chunk := await stream.receive_some():
            data += chunk
    except trio.BrokenResourceError:
        return data, "reset"
    return data, "eof"


def test_every_fault_mode_is_listed() -> None:
    assert set(sim_faults.BODY_FAULTS) | {"garbage"} <= set(FAULT_MODES)


async def test_garbage_is_not_http(cluster: SimCluster) -> None:
    node = cluster.node_names()[0]
    cluster.set_fault(node, "garbage")
    async with await open_kubelet(cluster, node) as stream:
        await stream.send_all(request(cluster, "/metrics/resource"))
        data, _ = await read_until_closed(stream)  # then closed, without a TLS close_notify
    assert data == sim_faults.GARBAGE


@pytest.mark.parametrize("path", ["/metrics/resource", "/stats/summary"])
async def test_huge_announces_its_length(cluster: SimCluster, path: str) -> None:
    node = cluster.node_names()[0]
    cluster.set_fault(node, "huge")
    async with await open_kubelet(cluster, node) as stream:
        await stream.send_all(request(cluster, path))
        headers, _ = await read_head(stream)
    assert headers["content-length"] == str(sim_faults.HUGE_BODY_BYTES)


async def test_huge_chunked_streams_until_the_client_leaves(cluster: SimCluster) -> None:
    node = cluster.node_names()[0]
    cluster.set_fault(node, "huge_chunked")
    kubelet = cluster.kubelets.kubelet(node)
    async with await open_kubelet(cluster, node) as stream:
        await stream.send_all(request(cluster, "/metrics/resource"))
        headers, body = await read_head(stream)
        assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
        while len(body) < 4 * sim_faults.CHUNK:
            body += await stream.receive_some()
    await trio.testing.wait_all_tasks_blocked()
    assert 4 * sim_faults.CHUNK <= kubelet.fault_stats.body_bytes < sim_faults.HUGE_BODY_BYTES


async def test_drip_sends_one_byte_per_second(
    cluster: SimCluster, mock_clock: trio.testing.MockClock
) -> None:
    mock_clock.autojump_threshold = 0
    node = cluster.node_names()[0]
    real = cluster.kubelets.kubelet(node).renderer.metrics_resource(cluster.now_ns())
    cluster.set_fault(node, "drip")
    async with await open_kubelet(cluster, node) as stream:
        await stream.send_all(request(cluster, "/metrics/resource"))
        headers, body = await read_head(stream)
        assert headers["content-length"] == str(len(real))
        start = trio.current_time()
        while len(body) < 5:
            body += await stream.receive_some()
        assert trio.current_time() - start == pytest.approx(len(body) - 1, abs=0.01)
    assert real.startswith(body)


async def test_reset_cuts_the_body_in_half(cluster: SimCluster) -> None:
    node = cluster.node_names()[0]
    real = cluster.kubelets.kubelet(node).renderer.metrics_resource(cluster.now_ns())
    cluster.set_fault(node, "reset")
    async with await open_kubelet(cluster, node) as stream:
        await stream.send_all(request(cluster, "/metrics/resource"))
        headers, body = await read_head(stream)
        rest, ending = await read_until_closed(stream)
    assert headers["content-length"] == str(len(real))
    assert (body + rest, ending) == (real[: len(real) // 2], "reset")


async def test_badvalues_in_prometheus_text(cluster: SimCluster) -> None:
    node = cluster.node_names()[0]
    cluster.set_fault(node, "badvalues")
    async with await open_kubelet(cluster, node) as stream:
        await stream.send_all(request(cluster, "/metrics/resource"))
        body = await read_body(stream)
    samples = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
    values = [line.split(" ")[1] for line in samples if "scrape_error" not in line]
    assert values[:6] == ["NaN", "-1", "+Inf", "NaN", "-1", "+Inf"]
    assert set(values) == {"NaN", "-1", "+Inf"}
    assert "resource_scrape_error 0" in samples


async def test_badvalues_in_the_summary(cluster: SimCluster) -> None:
    node = cluster.node_names()[0]
    cluster.set_fault(node, "badvalues")
    async with await open_kubelet(cluster, node) as stream:
        await stream.send_all(request(cluster, "/stats/summary?only_cpu_and_memory=true"))
        body = await read_body(stream)
    doc = orjson.loads(body)
    assert doc["node"]["cpu"]["usageCoreNanoSeconds"] < 0
    assert doc["node"]["memory"]["workingSetBytes"] < 0
    assert all(c["cpu"]["usageCoreNanoSeconds"] < 0 for p in doc["pods"] for c in p["containers"])


async def test_a_body_fault_touches_no_other_node(cluster: SimCluster) -> None:
    faulty, other = cluster.node_names()[:2]
    cluster.set_fault(faulty, "reset")
    async with await open_kubelet(cluster, other) as stream:
        await stream.send_all(request(cluster, "/metrics/resource"))
        body = await read_body(stream)
    assert body == cluster.kubelets.kubelet(other).renderer.metrics_resource(cluster.now_ns())
