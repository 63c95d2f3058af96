"""Each provider's simulated month for one workload, what more money buys there, and which provider to pick."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace

from .billing import DAYS_PER_MONTH, Bill, bill
from .prices import PriceBook, Provider, Rate
from .simulate import Fleet, FleetRun, simulate
from .skyserve import ReplicaPolicy, simulate_skyserve
from .workload import DAY_S, Requests

WHAT_IF_REQUESTS = 300_000  # what-if runs replay at most about this many requests (whole days, at least one)


@dataclass(frozen=True)
class Scenario:
    """The workload and the spec's scaling options; max_containers None means each provider's default."""

    requests: Requests
    keep_warm: int = 0
    idle_timeout: float = 300
    concurrency: int = 1
    max_containers: int | None = None
    gpu_count: int = 1
    spot: str = "off"  # the spec's spot option: "off", "prefer" or "only"
    target_qps_per_replica: float | None = None  # SkyServe's; None: what one replica can do (concurrency / mean)


@dataclass(frozen=True)
class WhatIf:
    """One change to the scaling options, against the same traffic: what it adds to the bill and what it removes."""

    change: str
    extra_per_month: float
    cold_hits_removed_per_month: float
    p95_before_s: float
    p95_after_s: float

    @property
    def hits_removed_per_dollar(self) -> float | None:
        return self.cold_hits_removed_per_month / self.extra_per_month if self.extra_per_month > 0 else None


@dataclass(frozen=True)
class Estimate:
    provider: str
    gpu: str
    status: str  # "priced", "price unknown" or "not offered"
    rate: Rate | None = None
    terms: Provider | None = None
    cold_start_s: float = 0.0
    max_containers: int | None = None
    run: FleetRun | None = None
    bill: Bill | None = None
    needed_containers: float = 0.0  # the busiest hour's work, in containers kept fully busy
    what_ifs: tuple[WhatIf, ...] = ()
    notes: tuple[str, ...] = ()  # how this provider was priced and simulated, where it differs from the rest
    target_qps_per_replica: float | None = None  # SkyServe's autoscaler target, where it applies

    @property
    def priced(self) -> bool:
        return self.bill is not None

    @property
    def overloaded(self) -> bool:
        """The busiest hour needs more containers than max_containers allows: the queue grows without bound."""
        return self.max_containers is not None and self.needed_containers > self.max_containers

    @property
    def cost_per_month(self) -> float:
        return self.bill.cost_per_month if self.bill else 0.0

    def per_month(self, count: float) -> float:
        return count / self.bill.days * DAYS_PER_MONTH if self.bill and self.bill.days else 0.0

    @property
    def cold_hit_share(self) -> float:
        return self.run.cold_hits / self.run.requests if self.run and self.run.requests else 0.0


def needed_containers(requests: Requests, concurrency: int) -> float:
    """Containers the busiest clock hour keeps busy: its requests' seconds of work over 3,600 s and the slots."""
    work: dict[int, float] = {}
    for t, s in zip(requests.arrivals, requests.durations, strict=True):
        hour = int(t // 3600)
        work[hour] = work.get(hour, 0.0) + s
    return max(work.values(), default=0.0) / 3600 / concurrency


def estimate(
    book: PriceBook,
    provider: str,
    gpus: tuple[str, ...],
    scenario: Scenario,
    *,
    cold_start_s: float | None = None,
    what_ifs: bool = True,
) -> Estimate:
    """One provider's month: the first GPU of gpus it offers (as the targets pick), simulated and billed."""
    terms = book.providers[provider]
    offered = [(g, r) for g in gpus if (r := book.rate(provider, g, scenario.gpu_count)) is not None]
    if not offered:
        return Estimate(provider, gpus[0], "no rate given" if terms.user_rate else "not offered")
    gpu, rate = offered[0]
    rate, notes = _spot(terms, rate, scenario.spot)
    cold = terms.cold_start_s if cold_start_s is None else cold_start_s
    cap = scenario.max_containers if scenario.max_containers is not None else terms.default_max_containers
    qps = None
    if terms.skyserve is not None:
        qps = scenario.target_qps_per_replica or _replica_qps(scenario.requests, scenario.concurrency)
    base = Estimate(
        provider,
        gpu,
        "price unknown" if rate.per_second is None else "priced",
        rate=rate,
        terms=terms,
        cold_start_s=cold,
        max_containers=cap,
        needed_containers=needed_containers(scenario.requests, scenario.concurrency),
        notes=notes,
        target_qps_per_replica=qps,
    )
    if rate.per_second is None:
        return base
    fleet = Fleet(
        cold_start_s=cold,
        idle_timeout_s=scenario.idle_timeout,
        keep_warm=scenario.keep_warm,
        max_containers=cap,
        concurrency=scenario.concurrency,
    )
    run = _run(scenario.requests, fleet, terms, qps)
    done = replace(base, run=run, bill=bill(run, terms, rate, cold))
    done = replace(done, notes=notes + _how(done, scenario))
    return replace(done, what_ifs=_what_ifs(done, scenario.requests, fleet)) if what_ifs else done


def _spot(terms: Provider, rate: Rate, spot: str) -> tuple[Rate, tuple[str, ...]]:
    """The rate the spec's spot option picks: spot where the provider sells it and a spot price was read."""
    if spot == "off":
        return rate, ()
    if terms.user_rate:
        return rate, (f"spot={spot}: your rate is used as given, whatever capacity your nodes are",)
    if not terms.spot:
        return rate, (f"spot={spot}: {terms.name} sells no spot capacity, so on-demand rates",)
    if rate.spot_per_second is None:
        if spot == "only":
            note = f"spot=only and no spot price read for {rate.gpu}"
            return replace(rate, per_second=None, warm_per_second=None, note=note), ()
        return rate, (f"spot=prefer: no spot price read for {rate.gpu}, so on-demand rates",)
    spot_rate = replace(rate, per_second=rate.spot_per_second, warm_per_second=rate.spot_per_second)
    return spot_rate, (
        f"spot={spot}: spot rates; preemptions are not simulated (a preempted replica means another cold start"
        + (", or on-demand rates while spot is short" if spot == "prefer" else "")
        + "): read the bill as a lower bound",
    )


def _how(e: Estimate, scenario: Scenario) -> tuple[str, ...]:
    """What the table cannot show: SkyServe's replica policy, a cluster's pool billed whether pods run or not."""
    assert e.terms is not None and e.run is not None
    if e.terms.skyserve is not None:
        cap = e.max_containers if e.max_containers is not None else "none"
        return (
            f"SkyServe replica_policy min_replicas={scenario.keep_warm}, max_replicas={cap}, "
            f"target_qps_per_replica={e.target_qps_per_replica:.4g}, "
            f"upscale_delay {e.terms.skyserve.upscale_delay_s:g} s (SkyServe's default), "
            f"downscale_delay = idle_timeout; VMs bill per second with a {e.terms.minimum_billed_s:g} s minimum; "
            "the SkyServe controller VM is not included",
        ) + (
            ()
            if scenario.target_qps_per_replica is not None
            else (
                f"target_qps_per_replica={e.target_qps_per_replica:.4g} is what one replica serves at this request "
                "length; the skypilot target's service.yaml assumes one second a predict: set "
                "replica_policy.target_qps_per_replica to this value there (or price another with "
                "--target-qps-per-replica)",
            )
        )
    if e.terms.billing == "pool":
        gpus = max(e.run.peak_containers, e.run.keep_warm) * scenario.gpu_count
        return (
            f"your nodes bill whether pods run or not: a pool of {gpus} GPU(s) (the most pods up at once) "
            "for every hour, at your rate",
        )
    return ()


def _replica_qps(requests: Requests, concurrency: int) -> float:
    """What one replica can serve a second: its slots over the mean request length."""
    mean = sum(requests.durations) / len(requests.durations) if requests.durations else 1.0
    return concurrency / mean


def _run(requests: Requests, fleet: Fleet, terms: Provider, qps: float | None = None) -> FleetRun:
    if terms.skyserve is None:
        return simulate(requests.arrivals, requests.durations, fleet, requests.horizon_s)
    sky = terms.skyserve
    policy = ReplicaPolicy(
        cold_start_s=fleet.cold_start_s,
        target_qps_per_replica=qps or _replica_qps(requests, fleet.concurrency),
        downscale_delay_s=fleet.idle_timeout_s,
        upscale_delay_s=sky.upscale_delay_s,
        min_replicas=fleet.keep_warm,
        max_replicas=fleet.max_containers,
        concurrency=fleet.concurrency,
        decision_interval_s=sky.decision_interval_s,
        no_replica_decision_interval_s=sky.no_replica_decision_interval_s,
        qps_window_s=sky.qps_window_s,
    )
    return simulate_skyserve(requests.arrivals, requests.durations, policy, requests.horizon_s)


def _what_ifs(base: Estimate, requests: Requests, fleet: Fleet) -> tuple[WhatIf, ...]:
    """keep_warm one higher and idle_timeout twice as long, each replayed on the same traffic (at most
    WHAT_IF_REQUESTS of it: the first whole days), against the current options on that same traffic."""
    assert base.terms is not None
    terms, qps = base.terms, base.target_qps_per_replica
    days = max(1, min(round(requests.days), math.ceil(WHAT_IF_REQUESTS / max(requests.per_day, 1.0))))
    short = first_days(requests, days)
    changes = []
    if fleet.max_containers is None or fleet.keep_warm < fleet.max_containers:
        changes.append((f"keep_warm={fleet.keep_warm + 1}", replace(fleet, keep_warm=fleet.keep_warm + 1)))
    longer = replace(fleet, idle_timeout_s=fleet.idle_timeout_s * 2)
    changes.append((f"idle_timeout={longer.idle_timeout_s:g} s", longer))
    before = base.run if short is requests and base.run is not None else _run(short, fleet, terms, qps)
    return tuple(_compare(change, before, _run(short, changed, terms, qps), base) for change, changed in changes)


def first_days(requests: Requests, days: int) -> Requests:
    """The requests of the first days whole days (all of them when that is the whole horizon)."""
    end = days * DAY_S
    if end >= requests.horizon_s:
        return requests
    cut = bisect.bisect_left(requests.arrivals, end)
    return Requests(requests.arrivals[:cut], requests.durations[:cut], end)


def _compare(change: str, before: FleetRun, after: FleetRun, base: Estimate) -> WhatIf:
    assert base.rate is not None and base.terms is not None
    month = DAYS_PER_MONTH * DAY_S / before.horizon_s
    cost_before = bill(before, base.terms, base.rate, base.cold_start_s).cost
    cost_after = bill(after, base.terms, base.rate, base.cold_start_s).cost
    return WhatIf(
        change=change,
        extra_per_month=(cost_after - cost_before) * month,
        cold_hits_removed_per_month=(before.cold_hits - after.cold_hits) * month,
        p95_before_s=before.wait_percentile(95),
        p95_after_s=after.wait_percentile(95),
    )


def cheapest(estimates: list[Estimate], p95_s: float | None = None) -> tuple[Estimate | None, str]:
    """The priced estimate with the lowest bill that keeps up with the traffic (and p95 wait within p95_s), and why."""
    priced = [e for e in estimates if e.priced and not e.overloaded]
    fits = [e for e in priced if p95_s is None or e.run is not None and e.run.wait_percentile(95) <= p95_s]
    fits.sort(key=lambda e: e.cost_per_month)
    goal = "" if p95_s is None else f" with p95 wait at most {p95_s:g} s"
    if not fits:
        if not priced:
            return None, "no provider has a known price for this GPU and keeps up with the traffic."
        nearest = min(priced, key=lambda e: e.run.wait_percentile(95) if e.run else math.inf)
        assert nearest.run is not None
        return None, (
            f"no provider keeps p95 wait at most {p95_s:g} s with these options; the lowest is {nearest.provider}'s "
            f"{nearest.run.wait_percentile(95):.1f} s: try the keep_warm and idle_timeout changes below."
        )
    best = fits[0]
    assert best.bill is not None
    reason = f"{best.provider} ({best.gpu}) is cheapest{goal} at ${best.cost_per_month:,.2f}/month"
    if len(fits) > 1 and fits[1].cost_per_month > 0:
        reason += f", {1 - best.cost_per_month / fits[1].cost_per_month:.0%} below {fits[1].provider}"
    parts = {
        "serving requests": best.bill.serving_s,
        "cold starts": best.bill.cold_start_s,
        "idle time before scale-down": best.bill.idle_s,
        "kept-warm containers": best.bill.warm_s,
    }
    biggest = max(parts, key=lambda k: parts[k])
    share = parts[biggest] / best.bill.billed_s if best.bill.billed_s else 0.0
    return best, reason + f"; {biggest}: {share:.0%} of the container time it bills."
