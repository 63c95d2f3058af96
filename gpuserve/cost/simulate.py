"""The fleet simulation: requests replayed through one provider's autoscaler, in arrival order.

Each request goes to a container with a free slot (kept-warm containers first, then the one that
became free most recently, so spare containers run out their idle timeout and scale down). When no
container has a free slot, the autoscaler starts one (up to max_containers) that is ready after the
cold start, and the request takes whichever slot frees first: a busy container finishing or the new
one coming up. Beyond max_containers requests queue, first come first served. A container that has
been idle for idle_timeout scales down; keep_warm containers never do. Time is in seconds.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Fleet:
    """How the autoscaler behaves: the spec's scaling options and the provider's cold start."""

    cold_start_s: float
    idle_timeout_s: float
    keep_warm: int = 0
    max_containers: int | None = None
    concurrency: int = 1


@dataclass(frozen=True)
class FleetRun:
    """What happened: container lifetimes (for billing), cold starts, and what each request waited."""

    horizon_s: float
    requests: int
    keep_warm: int
    lifetimes_s: tuple[float, ...]  # one per container started on demand, from start to scale-down
    cold_starts: int
    cold_hits: int  # requests that waited for a container to start
    serving_warm_s: float  # container-seconds of work done by kept-warm containers
    serving_flex_s: float  # ... and by containers started on demand
    waits_s: tuple[float, ...]  # the positive waits (queue plus cold start), sorted; the rest waited 0
    peak_containers: int

    def wait_percentile(self, q: float) -> float:
        """The q-th percentile (0-100) of every request's wait, zero waits included (nearest rank)."""
        if self.requests == 0:
            return 0.0
        rank = max(1, math.ceil(q / 100 * self.requests))  # 1-based rank among all requests
        zeros = self.requests - len(self.waits_s)
        return 0.0 if rank <= zeros else self.waits_s[rank - zeros - 1]


def simulate(arrivals: list[float], durations: list[float], fleet: Fleet, horizon_s: float) -> FleetRun:
    """Replay sorted arrivals (durations alongside) through the fleet; horizon_s bounds the kept-warm billing."""
    if fleet.concurrency == 1:
        return _one_slot(arrivals, durations, fleet, horizon_s)
    return _many_slots(arrivals, durations, fleet, horizon_s)


def _one_slot(arrivals: list[float], durations: list[float], fleet: Fleet, horizon_s: float) -> FleetRun:
    """concurrency=1: a container is idle or busy, so idle containers sit in one deque, oldest first."""
    cold, timeout, warm = fleet.cold_start_s, fleet.idle_timeout_s, fleet.keep_warm
    cap = fleet.max_containers if fleet.max_containers is not None else math.inf
    busy: list[tuple[float, int]] = []  # (free at, container)
    spawned: list[float] = [0.0] * warm  # start time per container; the first `warm` are kept warm
    ready: list[float] = [0.0] * warm
    idle_since: list[float] = [0.0] * warm
    ended: list[float] = []
    warm_idle = list(range(warm))
    flex_idle: deque[int] = deque()
    alive = warm
    peak = warm
    cold_starts = cold_hits = 0
    serving_warm = serving_flex = 0.0
    waits: list[float] = []
    pop, push = heapq.heappop, heapq.heappush
    for a, s in zip(arrivals, durations, strict=True):
        while busy and busy[0][0] <= a:
            free_at, c = pop(busy)
            idle_since[c] = free_at
            if c < warm:
                warm_idle.append(c)
            else:
                flex_idle.append(c)
        while flex_idle and idle_since[flex_idle[0]] + timeout <= a:
            gone = flex_idle.popleft()
            ended.append(idle_since[gone] + timeout - spawned[gone])
            alive -= 1
        if warm_idle:
            c = warm_idle.pop()
            serving_warm += s
            push(busy, (a + s, c))
            continue
        if flex_idle:
            push(busy, (a + s, flex_idle.pop()))
            serving_flex += s
            continue
        if alive < cap:
            c = len(spawned)
            spawned.append(a)
            ready.append(a + cold)
            idle_since.append(a + cold)
            push(busy, (a + cold, c))
            alive += 1
            cold_starts += 1
            peak = max(peak, alive)
        free_at, c = pop(busy)
        if free_at == ready[c] and free_at > a:
            cold_hits += 1
        waits.append(free_at - a)
        push(busy, (free_at + s, c))
        if c < warm:
            serving_warm += s
        else:
            serving_flex += s
    for free_at, c in busy:
        idle_since[c] = free_at
        if c >= warm:
            flex_idle.append(c)
    ended.extend(idle_since[c] + timeout - spawned[c] for c in flex_idle)
    waits.sort()
    first_positive = next((i for i, w in enumerate(waits) if w > 0), len(waits))
    return FleetRun(
        horizon_s=horizon_s,
        requests=len(arrivals),
        keep_warm=warm,
        lifetimes_s=tuple(ended),
        cold_starts=cold_starts,
        cold_hits=cold_hits,
        serving_warm_s=serving_warm,
        serving_flex_s=serving_flex,
        waits_s=tuple(waits[first_positive:]),
        peak_containers=peak,
    )


def _many_slots(arrivals: list[float], durations: list[float], fleet: Fleet, horizon_s: float) -> FleetRun:
    """concurrency>1: slots free one by one; a container is available while any slot is free."""
    cold, timeout, warm, slots = fleet.cold_start_s, fleet.idle_timeout_s, fleet.keep_warm, fleet.concurrency
    cap = fleet.max_containers if fleet.max_containers is not None else math.inf
    busy: list[tuple[float, int]] = []  # (free at, container), one entry per busy or starting slot
    used = [0] * warm  # busy or starting slots per container
    spawned = [0.0] * warm
    ready = [0.0] * warm
    idle_since = [0.0] * warm
    dead = [False] * warm
    listed = [True] * warm  # on its available stack
    spare = [0] * warm  # slots of a starting container that no request has claimed yet
    starting: list[int] = []  # containers that may still have spare slots (checked lazily)
    warm_free = list(range(warm))
    flex_free: list[int] = []  # containers with a free slot, most recently freed last (checked lazily)
    idle_order: deque[tuple[float, int]] = deque()  # (idle since, container) as each went fully idle
    ended: list[float] = []
    alive = peak = warm
    cold_starts = cold_hits = 0
    serving_warm = serving_flex = 0.0
    waits: list[float] = []
    pop, push = heapq.heappop, heapq.heappush
    for a, s in zip(arrivals, durations, strict=True):
        while busy and busy[0][0] <= a:
            free_at, c = pop(busy)
            used[c] -= 1
            if used[c] == 0:
                idle_since[c] = free_at
                if c >= warm:
                    idle_order.append((free_at, c))
            if not listed[c]:
                listed[c] = True
                (warm_free if c < warm else flex_free).append(c)
        while idle_order and idle_order[0][0] + timeout <= a:
            since, c = idle_order.popleft()
            if used[c] == 0 and idle_since[c] == since and not dead[c]:
                dead[c] = True
                ended.append(since + timeout - spawned[c])
                alive -= 1
        c = _take(warm_free, used, dead, listed, slots)
        if c < 0:
            c = _take(flex_free, used, dead, listed, slots)
        if c >= 0:
            push(busy, (a + s, c))
            if c < warm:
                serving_warm += s / slots
            else:
                serving_flex += s / slots
            continue
        while starting and (ready[starting[-1]] <= a or spare[starting[-1]] == 0):
            starting.pop()
        if starting:
            spare[starting[-1]] -= 1  # a starting container's slot is capacity the autoscaler already has
        elif alive < cap:
            c = len(spawned)
            spawned.append(a)
            ready.append(a + cold)
            idle_since.append(a + cold)
            used.append(slots)
            dead.append(False)
            listed.append(False)
            spare.append(slots - 1)
            starting.append(c)
            for _ in range(slots):
                push(busy, (a + cold, c))
            alive += 1
            cold_starts += 1
            peak = max(peak, alive)
        free_at, c = pop(busy)
        if free_at == ready[c] and free_at > a:
            cold_hits += 1
        waits.append(free_at - a)
        push(busy, (free_at + s, c))
        if c < warm:
            serving_warm += s / slots
        else:
            serving_flex += s / slots
    last: dict[int, float] = {}
    for free_at, c in busy:
        last[c] = max(last.get(c, 0.0), free_at)
    for c in range(warm, len(spawned)):
        if not dead[c]:
            ended.append(max(idle_since[c], last.get(c, 0.0)) + timeout - spawned[c])
    waits.sort()
    first_positive = next((i for i, w in enumerate(waits) if w > 0), len(waits))
    return FleetRun(
        horizon_s=horizon_s,
        requests=len(arrivals),
        keep_warm=warm,
        lifetimes_s=tuple(ended),
        cold_starts=cold_starts,
        cold_hits=cold_hits,
        serving_warm_s=serving_warm,
        serving_flex_s=serving_flex,
        waits_s=tuple(waits[first_positive:]),
        peak_containers=peak,
    )


def _take(stack: list[int], used: list[int], dead: list[bool], listed: list[bool], slots: int) -> int:
    """A container from stack with a free slot, its slot now taken; -1 when there is none."""
    while stack:
        c = stack[-1]
        if dead[c] or used[c] >= slots:
            stack.pop()
            listed[c] = False
            continue
        used[c] += 1
        if used[c] >= slots:
            stack.pop()
            listed[c] = False
        return c
    return -1
