"""Health checks and their `/healthz`, `/livez`, `/readyz` bodies, as the apiserver library renders them.

A `HealthChecks` holds, per root (`healthz`, `livez`, `readyz`), an ordered list of named checks.
A check is a plain callable returning `None` when healthy or a short reason string when not; it
must not block (it is called on the event loop) and should not raise (an exception counts as a
failure with the exception text as the reason).

Rendering (`k8s.io/apiserver/pkg/server/healthz`):

* root, all pass: 200 `ok`; with `?verbose`: `[+]<name> ok` lines, then `<root> check passed`;
* `?exclude=<name>` (repeatable): `[+]<name> excluded: ok`; names that match nothing add
  `warn: some health checks cannot be excluded: no matches for "<a>","<b>"`;
* any failure: 500, always verbose, `[-]<name> failed: reason withheld`, then `<root> check failed`
  (the reasons go to the log only);
* single check `/<root>/<name>`: 200 `ok` or 500 `internal server error: <reason>`.

`HealthChecks.standard(...)` builds metrics-server's layout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from k8s_metrics.gostrings import go_quote

Check = Callable[[], "str | None"]
"""A health check: `None` = healthy, a string = why not."""

ROOTS = ("healthz", "livez", "readyz")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HealthResponse:
    status: int
    body: str
    nosniff: bool
    """Whether the library sets `X-Content-Type-Options: nosniff` (root handlers and errors)."""

    content_type: str = "text/plain; charset=utf-8"


def ping() -> str | None:
    """The library's `ping` check: always healthy."""
    return None


def _run(check: Check) -> str | None:
    try:
        return check()
    except Exception as exc:  # a broken check is an unhealthy one, never a crashed probe
        return f"{type(exc).__name__}: {exc}"


class HealthChecks:
    """Named checks per root. Immutable after construction; checks are called on every probe."""

    def __init__(self, roots: Mapping[str, Sequence[tuple[str, Check]]]) -> None:
        unknown = set(roots) - set(ROOTS)
        if unknown:
            raise ValueError(f"unknown health roots: {sorted(unknown)}")
        self._roots: dict[str, tuple[tuple[str, Check], ...]] = {}
        for root in ROOTS:
            checks = tuple(roots.get(root, ()))
            names = [name for name, _ in checks]
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate health check names in {root}: {names}")
            if not all(names):
                raise ValueError(f"empty health check name in {root}")
            self._roots[root] = checks or (("ping", ping),)

    @classmethod
    def standard(
        cls,
        *,
        metric_collection_timely: Check,
        metric_storage_ready: Check,
        metric_informer_sync: Check,
        metadata_informer_sync: Check,
        shutdown: Check,
    ) -> HealthChecks:
        """metrics-server v0.8.0's layout: the library's built-ins first (`ping`, `log` and the two
        post-start hooks it always registers), `shutdown` last on readyz. With P the two hooks
        `poststarthook/max-in-flight-filter`, `poststarthook/storage-object-count-tracker-hook`:

        * healthz: ping, log, P, metadata-informer-sync
        * livez: ping, log, P, metric-collection-timely, metadata-informer-sync
        * readyz: ping, log, P, metric-storage-ready, metric-informer-sync, metadata-informer-sync,
          shutdown

        The hooks report ok once the server runs (this server has nothing to wait for there: no
        in-flight filter to start, no storage to count), as the library's do after start-up.
        """
        base: list[tuple[str, Check]] = [
            ("ping", ping),
            ("log", ping),
            ("poststarthook/max-in-flight-filter", ping),
            ("poststarthook/storage-object-count-tracker-hook", ping),
        ]
        metadata = ("metadata-informer-sync", metadata_informer_sync)
        return cls(
            {
                "healthz": [*base, metadata],
                "livez": [*base, ("metric-collection-timely", metric_collection_timely), metadata],
                "readyz": [
                    *base,
                    ("metric-storage-ready", metric_storage_ready),
                    ("metric-informer-sync", metric_informer_sync),
                    metadata,
                    ("shutdown", shutdown),
                ],
            }
        )

    def names(self, root: str) -> tuple[str, ...]:
        return tuple(name for name, _ in self._roots[root])

    def root(self, root: str, *, verbose: bool, exclude: Iterable[str]) -> HealthResponse:
        """The response for `/<root>` with the given `?verbose` presence and `?exclude` values."""
        excluded = set(exclude)
        lines: list[str] = []
        failed: list[str] = []
        log_lines: list[str] = []
        for name, check in self._roots[root]:
            if name in excluded:
                excluded.discard(name)
                lines.append(f"[+]{name} excluded: ok\n")
                continue
            reason = _run(check)
            if reason is None:
                lines.append(f"[+]{name} ok\n")
            else:
                lines.append(f"[-]{name} failed: reason withheld\n")
                log_lines.append(f"[-]{name} failed: {reason}\n")
                failed.append(name)
        if excluded:
            quoted = ",".join(go_quote(n) for n in sorted(excluded))
            lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}\n")
        if failed:
            log.info("%s check failed: %s\n%s", ",".join(failed), root, "".join(log_lines))
            return HealthResponse(500, "".join(lines) + f"{root} check failed\n", nosniff=True)
        if not verbose:
            return HealthResponse(200, "ok", nosniff=True)
        return HealthResponse(200, "".join(lines) + f"{root} check passed\n", nosniff=True)

    def single(self, root: str, name: str) -> HealthResponse | None:
        """The response for `/<root>/<name>`, or None when `root` has no such check."""
        for check_name, check in self._roots[root]:
            if check_name == name:
                reason = _run(check)
                if reason is None:
                    return HealthResponse(200, "ok", nosniff=False)
                log.info("Failed probe %s/%s: %s", root, name, reason)
                return HealthResponse(500, f"internal server error: {reason}\n", nosniff=True)
        return None
