"""Comparing providers: the cheapest with its reason, and the traffic at which two providers cost the same."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .model import Estimate, Workload, estimate
from .prices import PriceBook


@dataclass(frozen=True)
class BreakEven:
    cheaper_below: str
    cheaper_above: str
    requests_per_day: float
    cost_per_month: float


def cheapest(estimates: list[Estimate]) -> tuple[Estimate | None, str]:
    """The offered estimate with the lowest bill, and why, in one sentence."""
    offered = sorted((e for e in estimates if e.offered), key=lambda e: e.cost_per_day)
    if not offered:
        return None, "no provider offers this GPU"
    best = offered[0]
    parts = {
        "busy": best.busy_s,
        "idle before scale-down": best.idle_s,
        "cold starts": best.cold_start_s,
        "keep-warm": best.warm_s,
    }
    biggest = max(parts, key=lambda k: parts[k])
    share = parts[biggest] / best.billed_s if best.billed_s else 0.0
    reason = f"{best.provider} is cheapest at ${best.cost_per_month:,.2f}/month"
    if len(offered) > 1:
        runner_up = offered[1]
        saving = 1 - best.cost_per_day / runner_up.cost_per_day if runner_up.cost_per_day else 0.0
        reason += f", {saving:.0%} below {runner_up.provider}"
    reason += f"; {biggest} is {share:.0%} of its billed GPU time"
    if best.cold_starts_per_day >= 1:
        reason += f", with {best.cold_starts_per_day:,.1f} cold starts a day"
    return best, reason + "."


def break_evens(
    book: PriceBook,
    providers: list[tuple[str, str]],
    work: Workload,
    cold: dict[str, float],
    low: float = 1.0,
    high: float = 1e7,
) -> list[BreakEven]:
    """Requests per day where each pair of providers costs the same (log grid, then bisection)."""

    def monthly(provider: str, gpu: str, requests: float) -> float:
        return estimate(
            book, provider, gpu, replace(work, requests_per_day=requests), cold.get(provider)
        ).cost_per_month

    grid = [low * (high / low) ** (i / 200) for i in range(201)]
    found: list[BreakEven] = []
    for i, (a, gpu_a) in enumerate(providers):
        for b, gpu_b in providers[i + 1 :]:
            diffs = [monthly(a, gpu_a, r) - monthly(b, gpu_b, r) for r in grid]
            for j in range(len(grid) - 1):
                if diffs[j] == 0 or (diffs[j] < 0) == (diffs[j + 1] < 0):
                    continue
                lo, hi = grid[j], grid[j + 1]
                for _ in range(60):
                    mid = math.sqrt(lo * hi)
                    if (monthly(a, gpu_a, mid) - monthly(b, gpu_b, mid) < 0) == (diffs[j] < 0):
                        lo = mid
                    else:
                        hi = mid
                below, above = (a, b) if diffs[j] < 0 else (b, a)
                found.append(BreakEven(below, above, hi, monthly(a, gpu_a, hi)))
    return sorted(found, key=lambda x: x.requests_per_day)
