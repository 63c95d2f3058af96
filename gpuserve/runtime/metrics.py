"""GET /metrics: Prometheus metrics of one server, in a registry of its own (prometheus-client).

Per request the server only bumps a counter and two histograms, kept in plain lists by the serving loop (their
only writer) and turned into Prometheus families when scraped: a prometheus_client metric takes a lock and
walks its buckets on each update, which cost more than the rest of a no-op request's bookkeeping. Queue depth,
in flight, readiness and setup seconds are read from the server's own state when Prometheus scrapes.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import cast

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .. import __version__

# Seconds, from a cache hit to a long generation.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
# Paths labelled as themselves; anything else is "other", so random paths cannot grow the series.
KNOWN_PATHS = frozenset({"/predict", "/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
CONTENT_TYPE = CONTENT_TYPE_LATEST
_go_float = cast(Callable[[float], str], floatToGoString)  # how prometheus_client writes a bucket's bound


class Metrics:
    """The server's metrics; `state` callables are read at scrape time."""

    def __init__(
        self,
        *,
        model: str,
        in_flight: Callable[[], float],
        queue_depth: Callable[[], float],
        running: Callable[[], float],
        ready: Callable[[], float],
        setup_seconds: Callable[[], float],
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        Gauge("gpuserve_model_info", "The model this server runs", ["model", "version"], registry=r).labels(
            model=model, version=__version__
        ).set(1)
        self.requests: dict[tuple[str, int], float] = {}
        self.requests_created: dict[tuple[str, int], float] = {}
        self.latency: dict[str, Buckets] = {}
        self.queue_wait = Buckets(LATENCY_BUCKETS)
        self.batch_size = Buckets(BATCH_BUCKETS)
        r.register(_Families(self))
        self.cold_starts = Counter("gpuserve_cold_starts", "Model setups completed by this process", registry=r)
        Gauge("gpuserve_requests_in_flight", "Predict requests not yet answered", registry=r).set_function(in_flight)
        Gauge("gpuserve_queue_depth", "Predict requests waiting for a slot", registry=r).set_function(queue_depth)
        Gauge("gpuserve_predicts_running", "Predicts holding a slot", registry=r).set_function(running)
        Gauge("gpuserve_ready", "1 while /health says ready", registry=r).set_function(ready)
        Gauge(
            "gpuserve_setup_seconds", "Seconds this process spent fetching weights and in setup()", registry=r
        ).set_function(setup_seconds)

    def observe(
        self, *, path: str, status: int, seconds: float, queue_seconds: float | None, batch_size: int | None = None
    ) -> None:
        """One answered request: its count by status, its latency, and for predicts the queue wait and batch."""
        path = path if path in KNOWN_PATHS else "other"
        key = (path, status)
        counted = self.requests.get(key)
        if counted is None:
            self.requests_created[key] = time.time()
            counted = 0.0
        self.requests[key] = counted + 1
        timer = self.latency.get(path)
        if timer is None:
            timer = self.latency[path] = Buckets(LATENCY_BUCKETS)
        timer.observe(seconds)
        if queue_seconds is not None:
            self.queue_wait.observe(queue_seconds)
            self.batch_size.observe(batch_size or 1)

    def scrape(self) -> bytes:
        return generate_latest(self.registry)


class Buckets:
    """One histogram series: a count per bucket and the sum; observe() is a bisect and two additions."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.labels = [_go_float(bound) for bound in (*self.bounds, float("inf"))]  # "0.005", ..., "600.0", "+Inf"
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def add_to(self, family: HistogramMetricFamily, labels: dict[str, str]) -> None:
        """This series' cumulative buckets, count, sum and creation time, as prometheus_client writes them."""
        cumulative, total = [], 0
        for label, count in zip(self.labels, self.counts, strict=True):
            total += count
            cumulative.append((label, float(total)))
        family.add_metric(list(labels.values()), cumulative, self.sum)
        family.add_sample(family.name + "_created", labels, self.created)


class _Families(Collector):
    """The per-request series of one Metrics, as Prometheus families at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        requests = CounterMetricFamily(
            "gpuserve_requests", "Requests answered, by path and status", labels=["path", "status"]
        )
        for (path, status), value in list(m.requests.items()):
            requests.add_metric([path, str(status)], value, created=m.requests_created[(path, status)])
        yield requests
        latency = HistogramMetricFamily(
            "gpuserve_request_duration_seconds",
            "Time from the request's arrival to its last byte, by path",
            labels=["path"],
        )
        for path, buckets in list(m.latency.items()):
            buckets.add_to(latency, {"path": path})
        yield latency
        queue_wait = HistogramMetricFamily("gpuserve_queue_wait_seconds", "Time predicts waited for a free slot")
        m.queue_wait.add_to(queue_wait, {})
        yield queue_wait
        batch = HistogramMetricFamily(
            "gpuserve_batch_size", "Inputs in the predict call that answered each request (1 unless batched)"
        )
        m.batch_size.add_to(batch, {})
        yield batch
