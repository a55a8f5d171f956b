"""Imports in the server run one way: down the pipeline.

The server is a pipeline, and each layer may import only from its own layer and the ones below:

    base     the package root, flagset, logs, promtext, selfmetrics, memory, asgi: leaves any layer uses
    kube     kube-apiserver access: connection, list+watch caches of nodes and pods, REST helpers
    scrape   kubelet scraping: HTTP, the Prometheus/summary parsers, the scrape loop
    storage  the metric store and the snapshots it publishes
    shard    scraping and storing in worker processes
    api      the Metrics API over a snapshot: routes, rendering, Status bodies, health checks
    auth     TLS serving, authentication and authorization wrapped around the api
    wiring   app, cli, options, ignoredflags: build the layers from flags and start them

`LAYERS` below is the one place this order is written. A module of a package takes the layer of
its package (`metrics_server.kube.informer` is `kube`); a new package or top-level module must be
given a layer here before the test passes. Every import counts, at any depth: inside functions,
under `if TYPE_CHECKING:`, relative or absolute. The client package (`k8s_metrics`) sits below all
of them and is not checked here; the simulator (`kubesim`) is a test tool the server never imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Set
from pathlib import Path

import metrics_server

LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("base", frozenset({"", "flagset", "logs", "promtext", "selfmetrics", "memory", "asgi", "priority"})),
    ("kube", frozenset({"kube"})),
    ("scrape", frozenset({"scrape"})),
    ("storage", frozenset({"storage"})),
    ("shard", frozenset({"shard"})),
    ("api", frozenset({"api"})),
    ("auth", frozenset({"auth"})),
    ("wiring", frozenset({"app", "cli", "options", "ignoredflags"})),
)
"""Lowest first; each set names the parts after `metrics_server.` ("" is the package root)."""

PACKAGE = "metrics_server"
_RANK = {part: (rank, name) for rank, (name, parts) in enumerate(LAYERS) for part in parts}


def server_sources() -> tuple[dict[str, str], frozenset[str]]:
    """Every module of the server by dotted name (packages by their own name) with its source, and
    the names of the packages."""
    root = Path(metrics_server.__file__).parent
    sources, packages = {}, set()
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
            packages.add(".".join(parts))
        sources[".".join(parts)] = path.read_text()
    return sources, frozenset(packages)


def _imports(module: str, is_package: bool, source: str, modules: Set[str]) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import statement of `source`, relative ones resolved.

    `from a.b import c` imports the module `a.b.c` when `modules` has it, else the name `c` of `a.b`.
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                name = f"{target}.{alias.name}"
                yield (name if name in modules else target), node.lineno


def _layer(module: str) -> tuple[int, str] | None:
    parts = module.split(".")
    return _RANK.get(parts[1] if len(parts) > 1 else "")


def violations(
    sources: Mapping[str, str], packages: Set[str] = frozenset(), modules: Set[str] | None = None
) -> list[str]:
    """One message per import that goes up the pipeline, into the simulator, or from an unplaced module.

    `sources` maps dotted module names under `metrics_server` to their source; `packages` names the
    ones that are packages (`__init__.py`), for resolving relative imports; `modules` every module
    there is (default: those of `sources`), to tell `from package import module` from a name.
    """
    known = set(sources) if modules is None else modules
    found = []
    for module, source in sources.items():
        own = _layer(module)
        if own is None:
            found.append(f"{module} is in no layer: give it one in LAYERS")
            continue
        for target, line in _imports(module, module in packages, source, known):
            top = target.split(".")[0]
            if top == "kubesim":
                found.append(f"{module} line {line} imports {target}: the server never imports the simulator")
                continue
            if top != PACKAGE:
                continue
            theirs = _layer(target)
            if theirs is None:
                found.append(f"{module} line {line} imports {target}, which is in no layer")
            elif theirs[0] > own[0]:
                found.append(
                    f"{module} ({own[1]}) line {line} imports {target} ({theirs[1]}), a layer above its own"
                )
    return list(dict.fromkeys(found))  # `from m import a, b` is one import of m


def test_every_import_runs_down_the_pipeline() -> None:
    sources, packages = server_sources()
    assert {m.split(".")[1] if "." in m else "" for m in sources} == set(_RANK)  # no stale entries
    assert violations(sources, packages) == []


def test_an_import_up_the_pipeline_fails_with_the_module_and_the_import() -> None:
    sources = {
        "metrics_server.kube.reviews": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from metrics_server.auth.user import Attributes\n"
        ),
        "metrics_server.storage.store": "def f():\n    from ..api import status\n",
        "metrics_server.api": "from . import status\nfrom .. import app\n",
        "metrics_server.logs": "import metrics_server.scrape.loop\n",
        "metrics_server.scrape.loop": "from metrics_server import flagset, storage\n",
        "metrics_server.health": "",
        "metrics_server.app": "from metrics_server.api import status\nimport metrics_server.nowhere\n",
    }
    modules = {*sources, "metrics_server.auth.user", "metrics_server.api.status", "metrics_server.storage"}
    assert violations(sources, packages={"metrics_server.api"}, modules=modules) == [
        "metrics_server.kube.reviews (kube) line 3 imports metrics_server.auth.user (auth), "
        "a layer above its own",
        "metrics_server.storage.store (storage) line 2 imports metrics_server.api.status (api), "
        "a layer above its own",
        "metrics_server.api (api) line 2 imports metrics_server.app (wiring), a layer above its own",
        "metrics_server.logs (base) line 1 imports metrics_server.scrape.loop (scrape), "
        "a layer above its own",
        "metrics_server.scrape.loop (scrape) line 1 imports metrics_server.storage (storage), "
        "a layer above its own",
        "metrics_server.health is in no layer: give it one in LAYERS",
        "metrics_server.app line 2 imports metrics_server.nowhere, which is in no layer",
    ]


def test_the_server_never_imports_the_simulator() -> None:
    assert violations({"metrics_server.api.app": "def f():\n    import kubesim.apiserver\n"}) == [
        "metrics_server.api.app line 2 imports kubesim.apiserver: the server never imports the simulator"
    ]
    imported = {
        target.split(".")[0]
        for module, source in server_sources()[0].items()
        for target, _ in _imports(module, False, source, set())
    }
    assert "kubesim" not in imported
    assert {"metrics_server", "k8s_metrics"} <= imported
