"""What a provider bills for one simulated fleet: container lifetimes rounded to its granularity, at its rates."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .prices import Provider, Rate
from .simulate import FleetRun

DAYS_PER_MONTH = 30


@dataclass(frozen=True)
class Bill:
    """Container-seconds billed over the simulated horizon, by what they were spent on, and what they cost."""

    serving_s: float  # doing requests' work (a container with k of c slots busy counts k/c)
    cold_start_s: float  # starting containers on demand
    idle_s: float  # up on demand but not serving: waiting out idle_timeout, spare slots, granularity
    warm_s: float  # kept-warm containers, all the time, serving or not
    cost: float
    days: float

    @property
    def billed_s(self) -> float:
        return self.serving_s + self.cold_start_s + self.idle_s + self.warm_s

    @property
    def cost_per_month(self) -> float:
        return self.cost / self.days * DAYS_PER_MONTH if self.days else 0.0


def bill(run: FleetRun, provider: Provider, rate: Rate, cold_start_s: float) -> Bill:
    """Bill run at rate: each on-demand lifetime rounded up to the granularity (and the minimum) at the on-demand
    rate; kept-warm containers for the whole horizon at the always-on rate (RunPod's active workers are cheaper).
    A pool of nodes (your own cluster) bills its size for the whole horizon instead."""
    if rate.per_second is None:
        raise ValueError(f"{rate.provider} has no known price for {rate.gpu}")
    if provider.billing == "pool":
        return _pool(run, rate.per_second)
    step = provider.billing_granularity_s
    on_demand = sum(
        max(math.ceil(life / step - 1e-9) * step if step > 0 else life, provider.minimum_billed_s)
        for life in run.lifetimes_s
    )
    warm = run.keep_warm * run.horizon_s
    warm_rate = rate.warm_per_second if rate.warm_per_second is not None else rate.per_second
    booting = run.cold_starts * cold_start_s
    return Bill(
        serving_s=run.serving_flex_s,
        cold_start_s=booting,
        idle_s=max(0.0, on_demand - run.serving_flex_s - booting),
        warm_s=warm,
        cost=on_demand * rate.per_second + warm * warm_rate,
        days=run.horizon_s / 86_400,
    )


def _pool(run: FleetRun, per_second: float) -> Bill:
    """Nodes you own bill whether pods run or not: the most containers up at once, for the whole horizon."""
    pool_s = max(run.peak_containers, run.keep_warm) * run.horizon_s
    serving = run.serving_warm_s + run.serving_flex_s
    return Bill(
        serving_s=serving,
        cold_start_s=0.0,
        idle_s=max(0.0, pool_s - serving),
        warm_s=0.0,
        cost=pool_s * per_second,
        days=run.horizon_s / 86_400,
    )
