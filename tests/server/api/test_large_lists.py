"""Large lists: sorted in runs and merged, sent as pieces with an exact Content-Length, same bytes."""

from __future__ import annotations

import random

import orjson
import pytest
from conftest import TS, Asgi, default_world, make_app, pod

from metrics_server.api import render
from metrics_server.api import steps as steps_module
from metrics_server.asgi import STREAMED_BODY, streamed
from metrics_server.storage.snapshot import ContainerUsage, PodUsage

API = "/apis/metrics.k8s.io/v1beta1"


def big_world(count: int) -> object:
    world = default_world()
    rng = random.Random(7)
    names = [f"p-{i:05d}" for i in range(count)]
    rng.shuffle(names)  # the cache's order is not name order
    for i, name in enumerate(names):
        ns = "bulk" if i % 5 else "other"
        world.pods.items[(ns, name)] = pod(ns, name, {"app": f"a{i % 3}"})
        if i % 11:  # some pods have no metrics: skipped while rendering
            world.snapshot.pods[(ns, name)] = PodUsage(TS, 15_000_000_000, (ContainerUsage("c", i, 4096),))
    return world


@pytest.mark.parametrize("sort_run", [steps_module.SORT_RUN, 7])
async def test_big_lists_are_in_namespace_then_name_order(
    monkeypatch: pytest.MonkeyPatch, sort_run: int
) -> None:
    monkeypatch.setattr(steps_module, "SORT_RUN", sort_run)  # 7: every namespace is merged from runs
    world = big_world(2600)
    expected = sorted(
        (ns, name)
        for (ns, name) in world.pods.items
        if (ns, name) in world.snapshot.pods  # type: ignore[attr-defined]
    )
    app = make_app(world)  # type: ignore[arg-type]
    async with app.test_app() as test_app:
        client = test_app.test_client()
        for query in ("", "?labelSelector=app%3Da1"):
            response = await client.get(f"{API}/pods{query}")
            body = await response.get_data()
            items = orjson.loads(body)["items"]
            want = [
                key
                for key in expected
                if not query or world.pods.items[key].labels.get("app") == "a1"  # type: ignore[attr-defined]
            ]
            assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items] == want
        response = await client.get(f"{API}/namespaces/bulk/pods?labelSelector=app%3Da2")
        items = orjson.loads(await response.get_data())["items"]
        assert [i["metadata"]["name"] for i in items] == [
            name
            for ns, name in expected
            if ns == "bulk" and world.pods.items[(ns, name)].labels.get("app") == "a2"  # type: ignore[attr-defined]
        ]


async def test_a_list_over_one_chunk_is_sent_in_pieces_with_its_length() -> None:
    world = big_world(3 * render.CHUNK)
    app = make_app(world)  # type: ignore[arg-type]
    async with app.test_app() as test_app:
        asgi = Asgi(app)
        status, body = await asgi.get(f"{API}/pods")
        assert status == 200
        start, *bodies = asgi.messages
        headers = dict(start["headers"])
        assert headers[b"content-length"] == str(len(body)).encode()
        assert headers[b"content-type"] == b"application/json"
        pieces = [m["body"] for m in bodies if m["body"]]
        assert len(pieces) == 5  # list head, one piece per chunk of objects, list tail
        assert max(map(len, pieces)) < len(body) / 2
        served = [key for key in world.pods.items if key in world.snapshot.pods]  # type: ignore[attr-defined]
        assert len(orjson.loads(body)["items"]) == len(served) == 2731
        # the test client sees the same bytes
        client = test_app.test_client()
        assert await (await client.get(f"{API}/pods")).get_data() == body
        # ?pretty needs the whole body: joined and indented, as before
        status, pretty = await asgi.get(f"{API}/pods", "pretty=true")
        assert pretty == orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) + b"\n"
        assert dict(asgi.messages[0]["headers"])[b"content-length"] == str(len(pretty)).encode()


async def test_a_huge_list_is_sent_in_a_bounded_number_of_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "CHUNK", 10)  # 2731 objects: 275 pieces
    world = big_world(3000)
    app = make_app(world)  # type: ignore[arg-type]
    async with app.test_app() as test_app:
        asgi = Asgi(app)
        status, body = await asgi.get(f"{API}/pods")
        assert status == 200
        parts = [m["body"] for m in asgi.messages[1:] if m["body"]]
        assert len(parts) == steps_module.BODY_MESSAGES
        assert len(orjson.loads(body)["items"]) == 2731
        # Quart's test client holds 10 messages until the app returns: it must not deadlock
        client = test_app.test_client()
        assert await (await client.get(f"{API}/pods")).get_data() == body


async def test_a_streaming_server_gets_messages_of_about_stream_message_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With `STREAMED_BODY` (set by `asgi.streamed` around the serving stack) the pieces (list head,
    one per `render.CHUNK` objects, list tail) are joined into messages of about
    `STREAM_MESSAGE_BYTES`, not into `BODY_MESSAGES`; the same bytes."""
    monkeypatch.setattr(render, "CHUNK", 10)
    world = big_world(3000)
    app = make_app(world)  # type: ignore[arg-type]
    async with app.test_app():
        _, joined = await Asgi(app).get(f"{API}/pods")
        seen: list[dict[str, object]] = []

        async def app_seeing_scope(scope: dict[str, object], receive: object, send: object) -> None:
            seen.append(dict(scope))
            await app(scope, receive, send)

        asgi = Asgi(streamed(app_seeing_scope))  # type: ignore[arg-type]
        monkeypatch.setattr(steps_module, "STREAM_MESSAGE_BYTES", 2 * len(joined))  # all in one
        status, parts = await asgi.request(f"{API}/pods")
        assert seen[0][STREAMED_BODY] is True
        assert (status, parts) == (200, [joined, b""])

        monkeypatch.setattr(steps_module, "STREAM_MESSAGE_BYTES", 1)  # one piece per message
        status, parts = await asgi.request(f"{API}/pods")
        assert (status, b"".join(parts)) == (200, joined)
        items = parts[1:-2]  # after the list head; the last two: the list tail, the empty end
        assert [len(orjson.loads(b"[" + p.lstrip(b",") + b"]")) for p in items] == [10] * 273 + [1]
        assert (parts[0], parts[-2], parts[-1]) == (render.list_head("PodMetricsList"), render.LIST_TAIL, b"")
