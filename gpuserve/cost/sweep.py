"""Monthly cost against requests per day, simulated for each provider, and the traffic where two cost the same."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .compare import Estimate, Scenario, estimate
from .prices import PriceBook
from .workload import poisson

POINTS_PER_DECADE = 4
SWEEP_REQUESTS = 50_000  # each level replays whole days until about this many requests (1 to 30 days)
HIGHEST_LEVEL = 300_000


@dataclass(frozen=True)
class Level:
    requests_per_day: float
    cost_per_month: dict[str, float | None]  # None where the provider cannot keep up (max_containers reached)
    p95_wait_s: dict[str, float | None]


@dataclass(frozen=True)
class BreakEven:
    cheaper_below: str
    cheaper_above: str
    requests_per_day: float
    cost_per_month: float


def levels_for(requests_per_day: float) -> list[float]:
    """1 request a day up to ten times the traffic (at least 1,000, at most 300,000), POINTS_PER_DECADE a decade."""
    top = min(max(10 * requests_per_day, 1_000.0), HIGHEST_LEVEL)
    steps = math.ceil(math.log10(top) * POINTS_PER_DECADE)
    return [round(10 ** (i / POINTS_PER_DECADE), 1) for i in range(steps + 1)]


def sweep(
    book: PriceBook,
    choices: list[tuple[str, tuple[str, ...]]],
    scenario: Scenario,
    *,
    seconds_per_request: float,
    profile: tuple[float, ...],
    cold: dict[str, float],
    seed: int,
) -> list[Level]:
    """Each provider's monthly cost at each level: Poisson traffic of the same shape and request length."""
    found = []
    for level in levels_for(scenario.requests.per_day):
        days = max(1, min(30, math.ceil(SWEEP_REQUESTS / level)))
        traffic = poisson(
            requests_per_day=level, seconds_per_request=seconds_per_request, profile=profile, days=days, seed=seed
        )
        at_level = replace(scenario, requests=traffic)
        costs: dict[str, float | None] = {}
        waits: dict[str, float | None] = {}
        for provider, gpus in choices:
            e = estimate(book, provider, gpus, at_level, cold_start_s=cold.get(provider), what_ifs=False)
            keeps_up = e.priced and not e.overloaded and e.run is not None
            costs[provider] = e.cost_per_month if keeps_up else None
            waits[provider] = e.run.wait_percentile(95) if keeps_up and e.run is not None else None
        found.append(Level(level, costs, waits))
    return found


def break_evens(levels: list[Level], estimates: list[Estimate]) -> list[BreakEven]:
    """Where each pair of providers' simulated costs cross, interpolated on a log scale between adjacent levels."""
    names = [e.provider for e in estimates if e.priced]
    found = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for low, high in zip(levels, levels[1:], strict=False):
                points = [(lv, lv.cost_per_month[a], lv.cost_per_month[b]) for lv in (low, high)]
                if any(ca is None or cb is None or ca <= 0 or cb <= 0 for _, ca, cb in points):
                    continue
                (l0, a0, b0), (l1, a1, b1) = points
                assert a0 is not None and b0 is not None and a1 is not None and b1 is not None
                d0, d1 = math.log(a0 / b0), math.log(a1 / b1)
                if d0 == 0 or (d0 < 0) == (d1 < 0):
                    continue
                x = d0 / (d0 - d1)  # where log(a/b) reaches 0 between the two levels
                rate = math.exp(math.log(l0.requests_per_day) + x * math.log(l1.requests_per_day / l0.requests_per_day))
                cost = math.exp(math.log(a0) + x * math.log(a1 / a0))
                below, above = (a, b) if d0 < 0 else (b, a)
                found.append(BreakEven(below, above, rate, cost))
    return sorted(found, key=lambda p: p.requests_per_day)
