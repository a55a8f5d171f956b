"""Prometheus text exposition, written directly: what the hand-rendered metric families share.

`Histogram` is a plain cumulative histogram; `HistogramText` renders one as the text format lines
`prometheus_client.generate_latest` would write; `go_float`/`go_count` format values as it does;
`RenderedFamily` is a family that renders its own text, which `exposition()` joins with the
ordinary families of a registry (byte for byte what `generate_latest` writes). See
`selfmetrics` for why the families render themselves.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import accumulate
from typing import NamedTuple

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from metrics_server.priority import defer

DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Prometheus' default histogram buckets (client_golang `DefBuckets`)."""


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """client_golang `ExponentialBuckets`: repeated multiplication, so the floats match Go's exactly."""
    if count < 1 or start <= 0 or factor <= 1:
        raise ValueError(f"invalid exponential buckets: start={start} factor={factor} count={count}")
    out: list[float] = []
    for _ in range(count):
        out.append(start)
        start *= factor
    return tuple(out)


class Stamps(NamedTuple):
    """The timestamps (seconds) of many items, for `Histogram.observe_ages`."""

    values: Sequence[float]
    """The distinct timestamps, ascending."""
    running: Sequence[int]
    """`running[i]`: how many items have a timestamp up to `values[i]`."""
    total: float
    """The sum of every item's timestamp."""

    @property
    def size(self) -> int:
        """How many items."""
        return self.running[-1] if self.running else 0


def count_stamps(counts: Mapping[float, int]) -> Stamps:
    """`Stamps` from how many items have each timestamp."""
    values = sorted(counts)
    return Stamps(
        values, list(accumulate(counts[v] for v in values)), math.fsum(v * counts[v] for v in values)
    )


def one_stamp(timestamp: float) -> Stamps:
    """`Stamps` of one item."""
    return Stamps((timestamp,), (1,), timestamp)


class Histogram:
    """A plain cumulative histogram: `le` buckets as Prometheus defines them (value <= bound)."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # last slot: above every bound (+Inf only)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def observe_ages(self, now: float, stamps: Stamps) -> None:
        """`observe(now - t)` for the timestamp `t` of every item counted in `stamps`, in
        O(buckets x log distinct timestamps). Each bucket gets the count `observe` would give it,
        since `now - t <= bound` exactly when `t - now >= -bound` (float subtraction is monotone
        and sign-symmetric); the sum is `n * now - stamps.total`, which may differ from
        `observe`'s running sum in the last bits."""
        values, running, total = stamps
        n = stamps.size
        if not n:
            return
        counts = self.counts
        previous = 0

        def since(t: float) -> float:
            return t - now

        for i, bound in enumerate(self.bounds):
            first = bisect.bisect_left(values, -bound, key=since)  # the first value this young
            within = n - (running[first - 1] if first else 0)
            counts[i] += within - previous
            previous = within
        counts[-1] += n - previous
        self.count += n
        self.total += n * now - total

    def samples(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((le_text(bound), running))
        out.append(("+Inf", self.count))
        return out


def le_text(bound: float) -> str:
    # The same `le` text prometheus_client's own Histogram writes.
    return go_float(bound)


def go_float(value: float) -> str:
    """A sample value as `generate_latest` writes it (Go's float formatting)."""
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


def go_count(n: int) -> str:
    # floatToGoString(n) for a count: repr(float(n)), which is "<n>.0" below 1e6 (Go switches
    # to an exponent from 7 integer digits on).
    return f"{n}.0" if 0 <= n < 1_000_000 else go_float(n)


def label_value(value: str) -> str:
    """Label value escaping of the text format (backslash, newline, double quote)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def header(name: str, documentation: str, kind: str) -> str:
    help_text = documentation.replace("\\", "\\\\").replace("\n", "\\n")
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


class HistogramText:
    """Renders one `Histogram` of a family, optionally with one more label (sorted after `le`).

    The usual case (counts below 1e6, so each prints as `<n>.0`) is one `%` over a template of all
    the family's lines, split where the label goes (~2.5 us per node against ~4 us line by line);
    larger counts take the line-by-line path.
    """

    __slots__ = ("buckets", "count", "labeled", "parts", "sum")

    def __init__(self, name: str, bounds: Sequence[float], *, labeled: bool) -> None:
        les = [*(le_text(b) for b in bounds), "+Inf"]
        self.buckets = tuple(f'{name}_bucket{{le="{le}"' for le in les)
        self.count = f"{name}_count"
        self.sum = f"{name}_sum"
        self.labeled = labeled
        # "\0" marks where the label goes; %d are the cumulative counts then the count, %s the sum.
        close, braces = (",\0} ", "{\0} ") if labeled else ("} ", " ")
        lines = [f"{prefix.replace('%', '%%')}{close}%d.0\n" for prefix in self.buckets]
        lines.append(f"{self.count.replace('%', '%%')}{braces}%d.0\n")
        lines.append(f"{self.sum.replace('%', '%%')}{braces}%s\n")
        self.parts = "".join(lines).split("\0")

    def render(self, hist: Histogram, label: str = "") -> str:
        """`label` is `'name="escaped value"'` (with `labeled`) or empty."""
        if 0 <= hist.count < 1_000_000:
            template = label.replace("%", "%%").join(self.parts)
            return template % (*accumulate(hist.counts), hist.count, go_float(hist.total))
        return self.render_lines(hist, label)

    def render_lines(self, hist: Histogram, label: str = "") -> str:
        close = f",{label}}} " if self.labeled else "} "
        lines: list[str] = []
        running = 0
        for prefix, n in zip(self.buckets, hist.counts, strict=True):
            running += n
            lines.append(f"{prefix}{close}{go_count(running)}\n")
        braces = f"{{{label}}} " if self.labeled else " "
        lines.append(f"{self.count}{braces}{go_count(hist.count)}\n")
        lines.append(f"{self.sum}{braces}{go_float(hist.total)}\n")
        return "".join(lines)


class RenderedFamily(Metric):
    """A metric family that renders its own exposition text (`text()`), for `exposition`.

    `samples` is built only when read, so generic prometheus_client consumers (`generate_latest`,
    other exporters) still see an ordinary family, while `exposition` never pays for `Sample`s.
    `prepare()` does the expensive part of `text()` ahead of it in steps (it yields between
    them), so an async caller can let other tasks run in between. `pieces()` is `text()` not yet
    joined (by default the one piece `text()`): a family of thousands of series need not be copied
    into one buffer only to be cut again for sending.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        kind: str,
        text: Callable[[], bytes],
        build: Callable[[], Metric],
        prepare: Callable[[], Iterable[None]] = tuple,
        pieces: Callable[[], list[bytes]] | None = None,
    ) -> None:
        super().__init__(name, documentation, kind)
        self._text = text
        self._build = build
        self._built: list[Sample] | None = None
        self.prepare = prepare
        self._pieces = pieces

    @property
    def samples(self) -> list[Sample]:
        if self._built is None:
            self._built = self._build().samples
        return self._built

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        self._built = value or None  # Metric.__init__ assigns [] before anything is built

    def text(self) -> bytes:
        return self._text()

    def pieces(self) -> list[bytes]:
        """`text()` in pieces, in order: their concatenation is `text()`."""
        return [self._text()] if self._pieces is None else self._pieces()


class _Single(Collector):
    def __init__(self, metric: Metric) -> None:
        self.metric = metric

    def collect(self) -> Iterable[Metric]:
        return (self.metric,)


def exposition(registry: Collector) -> bytes:
    """`prometheus_client.generate_latest(registry)`, byte for byte, in less time.

    Families that are `RenderedFamily`s contribute their own text; every other family goes through
    `generate_latest` (which renders families independently, so the concatenation is the same).
    """
    return _join(list(registry.collect()))


async def exposition_pieces(registry: Collector) -> list[bytes]:
    """`exposition(registry)` in pieces (their concatenation), with a trio checkpoint between the
    steps of each family's `prepare()` (at 5000 nodes, rendering every node after a tick is ~20-40
    ms; here it is steps of `selfmetrics.NODES_PER_STEP` nodes, ~1 ms) and after each family.

    A family's pieces are taken in the step that ends its `prepare()`: what other tasks change at
    a checkpoint in between (a worker's frames record kubelet requests) would be rendered again
    then, in one step. And they are not joined: at 5000 nodes the per-node histogram family alone
    is ~6.5 MB, and joining it (then the whole body) took 11 ms of one step on an idle machine,
    28-32 ms in the bench (slow-step log at 5000 x 30, docs/performance.md round 8).
    """
    out: list[bytes] = []
    for metric in list(registry.collect()):
        if isinstance(metric, RenderedFamily):
            for _ in metric.prepare():
                await defer()
            out += metric.pieces()
        else:
            out.append(_text(metric))
        await defer()
    return out


def _join(families: Iterable[Metric]) -> bytes:
    return b"".join([_text(metric) for metric in families])


def _text(metric: Metric) -> bytes:
    return metric.text() if isinstance(metric, RenderedFamily) else generate_latest(_Single(metric))


class CounterVec:
    """Counters by label values, rendered as client_golang writes them: labels in the order given
    (callers give them sorted, as Go sorts), no `_created` series, the name exactly as given
    (Go's `authentication_attempts` has no `_total`)."""

    __slots__ = ("documentation", "label_names", "name", "series")

    def __init__(self, name: str, documentation: str, label_names: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.label_names = tuple(label_names)
        self.series: dict[tuple[str, ...], int] = {}

    def inc(self, values: tuple[str, ...], amount: int = 1) -> None:
        self.series[values] = self.series.get(values, 0) + amount

    def text(self) -> bytes:
        lines = [header(self.name, self.documentation, "counter")]
        for values in sorted(self.series):
            lines.append(
                f"{self.name}{{{_labels(self.label_names, values)}}} {go_count(self.series[values])}\n"
            )
        return "".join(lines).encode()

    def family(self) -> RenderedFamily:
        def build() -> Metric:
            metric = Metric(self.name, self.documentation, "counter")
            for values in sorted(self.series):
                metric.add_sample(
                    self.name, dict(zip(self.label_names, values, strict=True)), self.series[values]
                )
            return metric

        return RenderedFamily(self.name, self.documentation, "counter", self.text, build)


class HistogramVec:
    """Histograms by label values, rendered as client_golang writes them (`le` after the labels)."""

    __slots__ = ("bounds", "documentation", "label_names", "les", "name", "series")

    def __init__(
        self, name: str, documentation: str, label_names: Sequence[str], bounds: Sequence[float]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.label_names = tuple(label_names)
        self.bounds = tuple(bounds)
        self.les = (*(le_text(b) for b in self.bounds), "+Inf")
        self.series: dict[tuple[str, ...], Histogram] = {}

    def observe(self, values: tuple[str, ...], value: float) -> None:
        hist = self.series.get(values)
        if hist is None:
            hist = self.series[values] = Histogram(self.bounds)
        hist.observe(value)

    def text(self) -> bytes:
        name = self.name
        lines = [header(name, self.documentation, "histogram")]
        for values in sorted(self.series):
            hist = self.series[values]
            labels = _labels(self.label_names, values)
            sep = "," if labels else ""
            for le, count in zip(self.les, accumulate(hist.counts), strict=True):
                lines.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {go_count(count)}\n')
            braces = f"{{{labels}}}" if labels else ""
            lines.append(f"{name}_sum{braces} {go_float(hist.total)}\n")
            lines.append(f"{name}_count{braces} {go_count(hist.count)}\n")
        return "".join(lines).encode()

    def family(self) -> RenderedFamily:
        def build() -> Metric:
            metric = Metric(self.name, self.documentation, "histogram")
            for values in sorted(self.series):
                hist, labels = self.series[values], dict(zip(self.label_names, values, strict=True))
                for le, count in zip(self.les, accumulate(hist.counts), strict=True):
                    metric.add_sample(f"{self.name}_bucket", {**labels, "le": le}, count)
                metric.add_sample(f"{self.name}_sum", labels, hist.total)
                metric.add_sample(f"{self.name}_count", labels, hist.count)
            return metric

        return RenderedFamily(self.name, self.documentation, "histogram", self.text, build)


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    return ",".join(f'{n}="{label_value(v)}"' for n, v in zip(names, values, strict=True))
