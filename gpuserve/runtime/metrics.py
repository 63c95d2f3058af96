"""GET /metrics: Prometheus metrics of one server, in a registry of its own (prometheus-client).

Per request the server only bumps a counter and two histograms; queue depth, in flight, readiness and setup
seconds are read from the server's own state when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .. import __version__

# Seconds, from a cache hit to a long generation.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
# Paths labelled as themselves; anything else is "other", so random paths cannot grow the series.
KNOWN_PATHS = frozenset({"/predict", "/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
CONTENT_TYPE = CONTENT_TYPE_LATEST


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
        self.requests = Counter(
            "gpuserve_requests", "Requests answered, by path and status", ["path", "status"], registry=r
        )
        self.latency = Histogram(
            "gpuserve_request_duration_seconds",
            "Time from the request's arrival to its last byte, by path",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "gpuserve_queue_wait_seconds", "Time predicts waited for a free slot", buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_size = Histogram(
            "gpuserve_batch_size",
            "Inputs per predict call (1 until batching exists)",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.cold_starts = Counter("gpuserve_cold_starts", "Model setups completed by this process", registry=r)
        Gauge("gpuserve_requests_in_flight", "Predict requests not yet answered", registry=r).set_function(in_flight)
        Gauge("gpuserve_queue_depth", "Predict requests waiting for a slot", registry=r).set_function(queue_depth)
        Gauge("gpuserve_predicts_running", "Predicts holding a slot", registry=r).set_function(running)
        Gauge("gpuserve_ready", "1 while /health says ready", registry=r).set_function(ready)
        Gauge(
            "gpuserve_setup_seconds", "Seconds this process spent fetching weights and in setup()", registry=r
        ).set_function(setup_seconds)
        self._counted: dict[tuple[str, int], Any] = {}
        self._timed: dict[str, Any] = {}

    def observe(self, *, path: str, status: int, seconds: float, queue_seconds: float | None) -> None:
        """One answered request: its count by status, its latency, and for predicts the queue wait and batch."""
        path = path if path in KNOWN_PATHS else "other"
        counter = self._counted.get((path, status))
        if counter is None:
            counter = self._counted[(path, status)] = self.requests.labels(path=path, status=str(status))
        counter.inc()
        timer = self._timed.get(path)
        if timer is None:
            timer = self._timed[path] = self.latency.labels(path=path)
        timer.observe(seconds)
        if queue_seconds is not None:
            self.queue_wait.observe(queue_seconds)
            self.batch_size.observe(1)

    def scrape(self) -> bytes:
        return generate_latest(self.registry)
