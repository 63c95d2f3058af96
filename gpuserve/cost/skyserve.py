"""SkyServe's replicas replayed: a request-rate autoscaler that decides on a clock, not per request.

Read from skypilot 0.14.1 (sky/serve/autoscalers.py, RequestRateAutoscaler): every decision interval
(20 s; 5 s while the target is zero) the controller counts the requests of the last 60 s, wants
ceil(qps / target_qps_per_replica) replicas clipped to [min_replicas, max_replicas], and moves its
target there at once from zero, else only after upscale_delay (or downscale_delay) of decisions in a
row agree. Replicas short of the target are launched (ready after the cold start: a VM's provisioning
and setup); replicas beyond it are terminated, those still provisioning first, then the newest.

What gpuserve adds: requests wait in one first-come-first-served queue for a free slot on a ready
replica (SkyServe's load balancer sends each to the least loaded replica, which queues it itself); a
request that arrives while no replica is ready waits for one (SkyServe's load balancer answers 503
after three tries, so a real client has to retry, and while requests wait the autoscaler wants at
least one replica: the retries are requests it counts); a replica chosen for termination finishes
its requests in flight. The first min_replicas replicas are up from the start and never terminated.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

from .simulate import FleetRun


@dataclass(frozen=True)
class ReplicaPolicy:
    """A service's replica_policy and SkyServe's clock, in seconds."""

    cold_start_s: float
    target_qps_per_replica: float
    downscale_delay_s: float
    upscale_delay_s: float = 300
    min_replicas: int = 0
    max_replicas: int | None = None
    concurrency: int = 1
    decision_interval_s: float = 20
    no_replica_decision_interval_s: float = 5
    qps_window_s: float = 60


def simulate_skyserve(
    arrivals: list[float], durations: list[float], policy: ReplicaPolicy, horizon_s: float
) -> FleetRun:
    """Replay sorted arrivals through SkyServe's autoscaler; after the last one, run on until the fleet settles."""
    return _Service(policy).run(arrivals, durations, horizon_s)


class _Service:
    """The replicas, the queue and the autoscaler's state while the requests are replayed."""

    def __init__(self, policy: ReplicaPolicy) -> None:
        self.p = policy
        warm = policy.min_replicas
        self.up_threshold = int(policy.upscale_delay_s / policy.decision_interval_s)
        self.down_threshold = int(policy.downscale_delay_s / policy.decision_interval_s)
        self.launched: list[float] = [0.0] * warm
        self.ready: list[bool] = [True] * warm
        self.stopping: list[bool] = [False] * warm
        self.busy: list[int] = [0] * warm
        self.lifetimes: list[float] = []
        self.alive: list[int] = list(range(warm))  # launched and not terminated, oldest first
        self.free: list[int] = list(range(warm))  # ready replicas with a free slot, unless stopping (checked lazily)
        self.listed: list[bool] = [True] * warm  # on the free stack
        self.events: list[tuple[float, int, int]] = []  # (time, 0 = a slot frees / 1 = ready, replica)
        self.queue: deque[tuple[float, float]] = deque()  # (arrival, duration) waiting for a slot
        self.window: deque[float] = deque()  # arrivals inside the QPS window
        self.target = warm
        self.up = self.down = 0
        self.next_decision = 0.0
        self.cold_starts = self.cold_hits = 0
        self.serving_warm = self.serving_flex = 0.0
        self.waits: list[float] = []
        self.peak = warm

    def run(self, arrivals: list[float], durations: list[float], horizon_s: float) -> FleetRun:
        for a, s in zip(arrivals, durations, strict=True):
            self._advance(a)
            self.window.append(a)
            self.queue.append((a, s))
            self._dispatch(a, ready_now=False)
        self._settle()
        waits = sorted(self.waits)
        first_positive = next((i for i, w in enumerate(waits) if w > 0), len(waits))
        return FleetRun(
            horizon_s=horizon_s,
            requests=len(arrivals),
            keep_warm=self.p.min_replicas,
            lifetimes_s=tuple(self.lifetimes),
            cold_starts=self.cold_starts,
            cold_hits=self.cold_hits,
            serving_warm_s=self.serving_warm,
            serving_flex_s=self.serving_flex,
            waits_s=tuple(waits[first_positive:]),
            peak_containers=self.peak,
        )

    def _advance(self, until: float) -> None:
        """Handle every slot freeing, replica coming up and autoscaler decision up to until, in time order."""
        while True:
            event = self.events[0][0] if self.events else math.inf
            if min(event, self.next_decision) > until:
                return
            if self.next_decision < event:
                self._decide(self.next_decision)
                continue
            t, kind, c = heapq.heappop(self.events)
            if kind == 0:
                self.busy[c] -= 1
            else:
                self.ready[c] = True
            if not self.stopping[c]:
                self._list(c)
                self._dispatch(t, ready_now=kind == 1)
            elif self.queue:  # its requests were queued at it: it works through them before it goes
                self._start(c, t, ready_now=False)
            elif self.busy[c] == 0:
                self.lifetimes.append(t - self.launched[c])

    def _list(self, c: int) -> None:
        if not self.listed[c]:
            self.listed[c] = True
            self.free.append(c)

    def _dispatch(self, now: float, *, ready_now: bool) -> None:
        """Start queued requests on free slots; ready_now: a replica came up at now (a cold-start hit)."""
        while self.queue:
            c = self._free_replica()
            if c < 0:
                return
            self._start(c, now, ready_now=ready_now)

    def _start(self, c: int, now: float, *, ready_now: bool) -> None:
        """Start the request at the head of the queue on replica c."""
        arrival, s = self.queue.popleft()
        self.busy[c] += 1
        heapq.heappush(self.events, (now + s, 0, c))
        if now > arrival:
            self.waits.append(now - arrival)
            self.cold_hits += int(ready_now)
        if c < self.p.min_replicas:
            self.serving_warm += s / self.p.concurrency
        else:
            self.serving_flex += s / self.p.concurrency

    def _free_replica(self) -> int:
        while self.free:
            c = self.free[-1]
            if self.stopping[c] or self.busy[c] >= self.p.concurrency:
                self.free.pop()
                self.listed[c] = False
                continue
            return c
        return -1

    def _decide(self, now: float) -> None:
        """One autoscaler decision (RequestRateAutoscaler with hysteresis), then launch or terminate replicas."""
        p = self.p
        while self.window and self.window[0] <= now - p.qps_window_s:
            self.window.popleft()
        wanted = math.ceil(len(self.window) / p.qps_window_s / p.target_qps_per_replica)
        if self.queue:
            wanted = max(wanted, 1)  # waiting clients retry (SkyServe answers 503): requests it counts
        wanted = max(p.min_replicas, wanted if p.max_replicas is None else min(p.max_replicas, wanted))
        if self.target == 0:
            self.target = wanted
        elif wanted > self.target:
            self.up, self.down = self.up + 1, 0
            if self.up >= self.up_threshold:
                self.up, self.target = 0, wanted
        elif wanted < self.target:
            self.down, self.up = self.down + 1, 0
            if self.down >= self.down_threshold:
                self.down, self.target = 0, wanted
        else:
            self.up = self.down = 0
        while len(self.alive) < self.target:
            self._launch(now)
        if len(self.alive) > self.target:
            self._terminate(len(self.alive) - self.target, now)
        self.peak = max(self.peak, len(self.alive))
        interval = p.no_replica_decision_interval_s if self.target == 0 else p.decision_interval_s
        self.next_decision = now + interval

    def _launch(self, now: float) -> None:
        c = len(self.launched)
        self.launched.append(now)
        self.ready.append(False)
        self.stopping.append(False)
        self.busy.append(0)
        self.listed.append(False)
        self.alive.append(c)
        self.cold_starts += 1
        heapq.heappush(self.events, (now + self.p.cold_start_s, 1, c))

    def _terminate(self, count: int, now: float) -> None:
        """Provisioning replicas first, then ready ones, newest first within each (SkyServe's scale-down order)."""
        order = sorted(self.alive, key=lambda c: (self.ready[c], -c))[:count]
        for c in order:
            self.stopping[c] = True
            self.alive.remove(c)
            if not self.ready[c]:
                self.events = [e for e in self.events if e[2] != c]
                heapq.heapify(self.events)
                self.lifetimes.append(now - self.launched[c])
            elif self.busy[c] == 0:
                self.lifetimes.append(now - self.launched[c])

    def _settle(self) -> None:
        """After the last arrival: serve the queue and let the autoscaler scale down to min_replicas."""
        while self.events or self.queue or len(self.alive) > self.p.min_replicas:
            self._advance(self.next_decision)
