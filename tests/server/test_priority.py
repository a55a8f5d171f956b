"""Single gets ahead of bulk work in one event loop (`metrics_server.priority`)."""

from __future__ import annotations

import trio
import trio.testing

from metrics_server import priority
from metrics_server.asgi import Message, Receive, Scope, Send


async def test_bulk_work_waits_at_its_checkpoints_until_the_urgent_request_is_done(
    mock_clock: trio.testing.MockClock,  # stands still: the wait's bound plays no part here
) -> None:
    order: list[str] = []
    release = trio.Event()

    async def get() -> None:
        with priority.current().urgent():
            order.append("get starts")
            await priority.defer()  # the urgent task's own checkpoint does not wait for itself
            order.append("get checkpointed")
            await release.wait()
            order.append("get done")

    async def bulk() -> None:
        await priority.defer()
        order.append("bulk step")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(get)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(bulk)
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["get starts", "get checkpointed"]
        assert priority.current().busy
        release.set()
    assert order == ["get starts", "get checkpointed", "get done", "bulk step"]
    assert not priority.current().busy


async def test_a_busy_period_holds_bulk_work_back_for_at_most_max_defer_s_in_all(
    mock_clock: trio.testing.MockClock,
) -> None:
    mock_clock.autojump_threshold = 0
    waited: list[float] = []
    forever = trio.Event()

    async def endless_get(task_status: trio.TaskStatus[None]) -> None:
        with priority.current().urgent():
            task_status.started()
            await forever.wait()

    async with trio.open_nursery() as nursery:
        await nursery.start(endless_get)
        for _ in range(3):
            start = trio.current_time()
            await priority.defer()
            waited.append(trio.current_time() - start)
        nursery.cancel_scope.cancel()
    # The first deferral waits out the period's budget; then bulk work runs normally.
    assert waited == [priority.MAX_DEFER_S, 0.0, 0.0]

    # A new busy period has a budget of its own.
    async with trio.open_nursery() as nursery:
        await nursery.start(endless_get)
        start = trio.current_time()
        await priority.defer()
        assert trio.current_time() - start == priority.MAX_DEFER_S
        nursery.cancel_scope.cancel()


async def test_only_single_object_metric_gets_are_urgent() -> None:
    seen: dict[str, bool] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen[f"{scope['method']} {scope['path']}"] = priority.current().busy

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        return None

    wrapped = priority.urgent_gets(app)
    base = "/apis/metrics.k8s.io/v1beta1"
    for method, path in [
        ("GET", f"{base}/namespaces/default/pods/web-1"),
        ("GET", f"{base}/nodes/node-1"),
        ("GET", f"{base}/namespaces/default/pods"),
        ("GET", f"{base}/pods"),
        ("GET", f"{base}/nodes"),
        ("POST", f"{base}/nodes/node-1"),
        ("GET", "/metrics"),
    ]:
        await wrapped({"type": "http", "method": method, "path": path}, receive, send)
    assert seen == {
        f"GET {base}/namespaces/default/pods/web-1": True,
        f"GET {base}/nodes/node-1": True,
        f"GET {base}/namespaces/default/pods": False,
        f"GET {base}/pods": False,
        f"GET {base}/nodes": False,
        f"POST {base}/nodes/node-1": False,
        "GET /metrics": False,
    }
    assert not priority.current().busy
