"""The cost model: a day of traffic, hour by hour, billed the way serverless GPU providers bill.

For each hour h with n requests (rate lam = n / 3600 per second), request length S billed up
to the provider's granularity (S'), concurrency c, keep_warm K, idle_timeout T, cold start C:

  sharing    k = min(c, max(1, lam * S))      requests a busy container serves at once
  busy       n * S' / k                        container-seconds doing work
  K = 0      a container stays up T after its last request; gaps between requests are
             exponential, so idle = n * (1 - e^(-lam T)) / lam (at most the hour's slack),
             and the requests arriving after a gap longer than T start cold: n * e^(-lam T),
             plus one cold start when traffic resumes after an hour with none
  K > 0      the warm pool bills K * 3600 at the always-on rate and absorbs busy time up to
             K * 3600; overflow starts ceil(overflow / 3600) extra containers, each one cold
             start and T idle seconds before it scales down
  cold       cold starts * C, billed like busy time

A day is the sum of its 24 hours; a month is 30 days. GPU-seconds are container-seconds times
the GPUs per container.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .prices import PriceBook

HOURS = 24
DAYS_PER_MONTH = 30

TRAFFIC_SHAPES: dict[str, tuple[float, ...]] = {
    "steady": tuple([1 / 24] * 24),
    # 09:00 to 17:00, evenly
    "business-hours": tuple(1 / 8 if 9 <= h < 17 else 0.0 for h in range(24)),
    # three one-hour bursts (09:00, 14:00, 20:00) carry the whole day
    "bursty": tuple(1 / 3 if h in (9, 14, 20) else 0.0 for h in range(24)),
}


def traffic_profile(shape: str | None = None, weights: list[float] | None = None) -> tuple[float, ...]:
    """24 hourly shares of the day's requests, summing to 1."""
    if weights is not None:
        if len(weights) != HOURS or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"an hourly profile needs 24 non-negative numbers with a positive sum, got {len(weights)}")
        total = sum(weights)
        return tuple(w / total for w in weights)
    if shape not in TRAFFIC_SHAPES:
        raise ValueError(f"traffic {shape!r} is not one of {', '.join(TRAFFIC_SHAPES)}")
    return TRAFFIC_SHAPES[shape]


@dataclass(frozen=True)
class Workload:
    requests_per_day: float
    seconds_per_request: float
    profile: tuple[float, ...]
    keep_warm: int = 0
    idle_timeout: float = 300
    concurrency: int = 1
    gpu_count: int = 1


@dataclass(frozen=True)
class Estimate:
    """One provider's bill for one day of the workload (GPU-seconds), and what it costs."""

    provider: str
    gpu: str
    offered: bool
    busy_s: float = 0.0
    idle_s: float = 0.0
    cold_start_s: float = 0.0
    warm_s: float = 0.0
    cold_starts_per_day: float = 0.0
    cost_per_day: float = 0.0
    cold_start_seconds: float = 0.0

    @property
    def billed_s(self) -> float:
        return self.busy_s + self.idle_s + self.cold_start_s + self.warm_s

    @property
    def cost_per_month(self) -> float:
        return self.cost_per_day * DAYS_PER_MONTH

    def cost_per_request(self, requests_per_day: float) -> float | None:
        return self.cost_per_day / requests_per_day if requests_per_day > 0 else None


def estimate(book: PriceBook, provider: str, gpu: str, work: Workload, cold_start_s: float | None = None) -> Estimate:
    """The day's bill on provider for gpu ("CPU" for none); offered=False where it lacks the GPU."""
    rate = book.rate(provider, gpu)
    if rate is None:
        return Estimate(provider, gpu, offered=False)
    terms = book.providers[provider]
    cold = terms.cold_start_s if cold_start_s is None else cold_start_s
    granularity = max(terms.billing_granularity_s, 1e-9)
    billed_request = max(math.ceil(work.seconds_per_request / granularity - 1e-9) * granularity, terms.minimum_billed_s)
    busy = idle = colds = 0.0
    for hour, share in enumerate(work.profile):
        h_busy, h_idle, h_colds = _hour(work.requests_per_day * share, billed_request, work)
        if work.keep_warm == 0 and share > 0 and work.profile[hour - 1] == 0 and work.requests_per_day > 0:
            h_colds += 1  # traffic resumes after a quiet hour: every container scaled down meanwhile
        busy, idle, colds = busy + h_busy, idle + h_idle, colds + h_colds
    gpus = work.gpu_count
    warm = work.keep_warm * 3600.0 * HOURS
    on_demand_s = (busy + idle + colds * cold) * gpus
    cost = on_demand_s * rate.per_second + warm * gpus * rate.warm_per_second
    return Estimate(
        provider=provider,
        gpu=gpu,
        offered=True,
        busy_s=busy * gpus,
        idle_s=idle * gpus,
        cold_start_s=colds * cold * gpus,
        warm_s=warm * gpus,
        cold_starts_per_day=colds,
        cost_per_day=cost,
        cold_start_seconds=cold,
    )


def _hour(n: float, billed_request: float, work: Workload) -> tuple[float, float, float]:
    """(busy, idle, cold starts) container-seconds for one hour with n requests, beyond the warm pool."""
    if n <= 0:
        return 0.0, 0.0, 0.0
    lam = n / 3600.0
    sharing = min(work.concurrency, max(1.0, lam * work.seconds_per_request))
    busy = n * billed_request / sharing
    if work.keep_warm == 0:
        gone = math.exp(-lam * work.idle_timeout)
        slack = max(0.0, math.ceil(busy / 3600.0) * 3600.0 - busy)
        idle = min(n * (1 - gone) / lam, slack)
        return busy, idle, n * gone
    overflow = max(0.0, busy - work.keep_warm * 3600.0)
    extra = math.ceil(overflow / 3600.0 - 1e-9)
    return overflow, extra * work.idle_timeout, float(extra)
