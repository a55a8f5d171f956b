"""/healthz, /livez, /readyz bodies exactly as the apiserver library's healthz package writes them."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import World

from metrics_server.api.health import HealthChecks

HOOKS = ["poststarthook/max-in-flight-filter", "poststarthook/storage-object-count-tracker-hook"]
HOOKS_OK = "[+]ping ok\n[+]log ok\n" + "".join(f"[+]{hook} ok\n" for hook in HOOKS)
READYZ = [
    "ping",
    "log",
    *HOOKS,
    "metric-storage-ready",
    "metric-informer-sync",
    "metadata-informer-sync",
    "shutdown",
]
LIVEZ = ["ping", "log", *HOOKS, "metric-collection-timely", "metadata-informer-sync"]
HEALTHZ = ["ping", "log", *HOOKS, "metadata-informer-sync"]


async def fetch(client: Any, path: str) -> tuple[int, str, str | None, str]:
    response = await client.get(path)
    body = (await response.get_data()).decode()
    return (
        response.status_code,
        response.headers["Content-Type"],
        response.headers.get("X-Content-Type-Options"),
        body,
    )


@pytest.mark.parametrize(("root", "names"), [("readyz", READYZ), ("livez", LIVEZ), ("healthz", HEALTHZ)])
async def test_roots_ok_and_verbose(client: Any, root: str, names: list[str]) -> None:
    assert await fetch(client, f"/{root}") == (200, "text/plain; charset=utf-8", "nosniff", "ok")
    verbose = "".join(f"[+]{n} ok\n" for n in names) + f"{root} check passed\n"
    assert await fetch(client, f"/{root}?verbose") == (200, "text/plain; charset=utf-8", "nosniff", verbose)
    assert await fetch(client, f"/{root}?verbose=false") == (
        200,
        "text/plain; charset=utf-8",
        "nosniff",
        verbose,
    )


async def test_exclude(client: Any, world: World) -> None:
    world.healthy["metric-storage-ready"] = "no metrics to serve"
    body = (
        HOOKS_OK + "[+]metric-storage-ready excluded: ok\n[+]metric-informer-sync ok\n"
        "[+]metadata-informer-sync ok\n[+]shutdown excluded: ok\n"
        'warn: some health checks cannot be excluded: no matches for "bogus","zz"\nreadyz check passed\n'
    )
    path = "/readyz?verbose&exclude=zz&exclude=metric-storage-ready&exclude=shutdown&exclude=bogus"
    assert await fetch(client, path) == (200, "text/plain; charset=utf-8", "nosniff", body)
    assert await fetch(client, "/readyz?exclude=metric-storage-ready") == (
        200,
        "text/plain; charset=utf-8",
        "nosniff",
        "ok",
    )


async def test_failure_is_verbose_and_withholds_the_reason(
    client: Any, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.healthy["metric-storage-ready"] = "no metrics to serve"
    world.healthy["shutdown"] = "process is shutting down"
    body = (
        HOOKS_OK + "[-]metric-storage-ready failed: reason withheld\n[+]metric-informer-sync ok\n"
        "[+]metadata-informer-sync ok\n[-]shutdown failed: reason withheld\nreadyz check failed\n"
    )
    with caplog.at_level("INFO", logger="metrics_server.api.health"):
        assert await fetch(client, "/readyz") == (500, "text/plain; charset=utf-8", "nosniff", body)
    assert "[-]metric-storage-ready failed: no metrics to serve" in caplog.text
    # livez does not carry readiness checks
    assert await fetch(client, "/livez") == (200, "text/plain; charset=utf-8", "nosniff", "ok")


async def test_single_checks(client: Any, world: World) -> None:
    assert await fetch(client, "/livez/ping") == (200, "text/plain; charset=utf-8", None, "ok")
    world.healthy["metric-collection-timely"] = "metric collection didn't finish on time"
    assert await fetch(client, "/livez/metric-collection-timely") == (
        500,
        "text/plain; charset=utf-8",
        "nosniff",
        "internal server error: metric collection didn't finish on time\n",
    )
    response = await client.get("/livez/metric-storage-ready")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"


def test_raising_check_counts_as_failure() -> None:
    def broken() -> str | None:
        raise RuntimeError("boom")

    checks = HealthChecks({"livez": [("ping", lambda: None), ("broken", broken)]})
    result = checks.root("livez", verbose=False, exclude=[])
    assert (result.status, result.body) == (
        500,
        "[+]ping ok\n[-]broken failed: reason withheld\nlivez check failed\n",
    )
    single = checks.single("livez", "broken")
    assert single is not None
    assert single.body == "internal server error: RuntimeError: boom\n"
    assert checks.names("readyz") == ("ping",)


def test_bad_layouts_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown health roots"):
        HealthChecks({"startupz": []})
    with pytest.raises(ValueError, match="duplicate"):
        HealthChecks({"livez": [("ping", lambda: None), ("ping", lambda: None)]})
