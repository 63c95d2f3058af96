"""The price data file: how each provider bills and scales, and a row per provider and GPU with its source and date."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import GpuserveError
from ..gpus import canonical_gpu_name

DEFAULT_MAX_AGE_DAYS = 180  # prices read longer ago than this print a warning (`--max-price-age-days`)


@dataclass(frozen=True)
class Rate:
    """One GPU (count GPUs per container) on one provider: USD per second of a container, None where unknown."""

    provider: str
    gpu: str
    count: int
    per_second: float | None
    warm_per_second: float | None
    source: str
    read_on: date | None
    note: str = ""
    spot_per_second: float | None = None  # where the provider sells spot capacity (SkyPilot's VMs)


@dataclass(frozen=True)
class SkyServe:
    """SkyServe's request-rate autoscaler: its delays and intervals, in seconds (sky/serve/constants.py)."""

    upscale_delay_s: float
    decision_interval_s: float
    no_replica_decision_interval_s: float
    qps_window_s: float


@dataclass(frozen=True)
class Provider:
    name: str
    billing_granularity_s: float
    minimum_billed_s: float
    cold_start_s: float
    cold_start_source: str
    default_max_containers: int | None
    alongside_per_second: float  # CPU and memory billed with every GPU container (Modal), per container
    source: str
    read_on: date | None
    billing: str = "container"  # "container": each one from start to stop; "pool": nodes you own, all the time
    skyserve: SkyServe | None = None  # SkyServe's autoscaler instead of one that starts a container per request
    spot: bool = False  # sells spot capacity: the spec's spot option picks the spot rate
    user_rate: bool = False  # no list price: shown only where the user gives a rate (--rate, --prices)


@dataclass(frozen=True)
class PriceBook:
    providers: dict[str, Provider]
    rates: dict[tuple[str, str, int], Rate]
    origin: str

    def rate(self, provider: str, gpu: str, count: int = 1) -> Rate | None:
        """The container rate for count GPUs: a multi-GPU row where a provider sells fixed sizes, else count x one.

        None where the provider does not offer it; a Rate with per_second None where it does but the price is unknown.
        """
        exact = self.rates.get((provider, gpu, count))
        if exact is not None or count == 1 or self._fixed_sizes(provider):
            return exact
        one = self.rates.get((provider, gpu, 1))
        if one is None or one.per_second is None:
            return one
        warm = one.warm_per_second if one.warm_per_second is not None else one.per_second
        extra = self.providers[provider].alongside_per_second
        return replace(
            one,
            count=count,
            per_second=(one.per_second - extra) * count + extra,
            warm_per_second=(warm - extra) * count + extra,
            spot_per_second=None if one.spot_per_second is None else one.spot_per_second * count,
        )

    def with_rates(self, provider: str, per_gpu_hour: dict[str, float], source: str) -> PriceBook:
        """This book plus the user's own rates (USD per GPU-hour) for provider, e.g. a Kubernetes cluster's."""
        rates = dict(self.rates)
        for gpu, hourly in per_gpu_hour.items():
            rates[(provider, gpu, 1)] = Rate(provider, gpu, 1, hourly / 3600, hourly / 3600, source, None)
        return replace(self, rates=rates)

    def priced_providers(self) -> list[str]:
        """Providers to compare: every one with a list price, and those without one only where a rate was given."""
        rated = {p for (p, _g, _n), r in self.rates.items() if r.per_second is not None}
        return [name for name, terms in self.providers.items() if not terms.user_rate or name in rated]

    def offered_gpus(self, provider: str) -> set[str]:
        """GPU names the provider offers, priced or not (CPU excluded)."""
        return {gpu for (p, gpu, _count) in self.rates if p == provider and gpu != "CPU"}

    def _fixed_sizes(self, provider: str) -> bool:
        """A provider with multi-GPU rows sells only those sizes (Replicate's hardware list)."""
        return any(p == provider and n > 1 for (p, _g, n) in self.rates)

    def stale(self, today: date, max_age_days: int = DEFAULT_MAX_AGE_DAYS, used: list[Rate] | None = None) -> list[str]:
        """A warning per provider whose prices (those used, or all) were read over max_age_days ago or are undated."""
        warnings = []
        for name, terms in self.providers.items():
            if terms.user_rate:
                continue  # the user's own rate: nothing to go stale
            rows = [r for r in (used or self.rates.values()) if r.provider == name and r.per_second is not None]
            undated = sorted({r.source for r in rows if r.read_on is None})
            dated = [r for r in rows if r.read_on is not None]
            oldest = min(dated, key=lambda r: r.read_on or today, default=None)
            if undated:
                warnings.append(
                    f"{name} prices come from a copy of {', '.join(undated)} whose date is unknown: "
                    "check the page and pass --prices FILE"
                )
            if oldest is not None and oldest.read_on is not None and (today - oldest.read_on).days > max_age_days:
                warnings.append(
                    f"{name} prices were read as long ago as {oldest.read_on.isoformat()}, "
                    f"{(today - oldest.read_on).days} days ago (over {max_age_days}): "
                    f"check {oldest.source} and pass --prices FILE"
                )
        return warnings


def load_prices(path: str | Path | None = None) -> PriceBook:
    """Read prices from FILE, or the data file shipped in the package."""
    if path is None:
        text = resources.files("gpuserve").joinpath("data/prices.json").read_text(encoding="utf-8")
        origin = "gpuserve/data/prices.json"
    else:
        text, origin = Path(path).read_text(encoding="utf-8"), str(path)
    try:
        data = json.loads(text)
        providers = {name: _provider(name, p) for name, p in data["providers"].items()}
        rates: dict[tuple[str, str, int], Rate] = {}
        for row in data["prices"]:
            rate = _rate(row, providers)
            rates[(rate.provider, rate.gpu, rate.count)] = rate
    except (KeyError, ValueError, TypeError) as exc:
        raise GpuserveError(
            f"price file {origin}: {exc!s}. Each provider needs billing_granularity_s, cold_start_s, source and "
            "read_on (YYYY-MM-DD or null); each price row provider, gpu and per_second (a number or null), or "
            "instance_per_hour and gpus_per_instance (a VM's price, spot_instance_per_hour optional)."
        ) from None
    return PriceBook(providers, rates, origin)


def _provider(name: str, p: dict[str, Any]) -> Provider:
    cap = p.get("default_max_containers")
    alongside = float(p.get("cpu_core_per_second", 0)) * float(p.get("container_cpu_cores", 0)) + float(
        p.get("memory_gib_per_second", 0)
    ) * float(p.get("container_memory_gib", 0))
    billing = str(p.get("billing", "container"))
    if billing not in ("container", "pool"):
        raise ValueError(f"provider {name}: billing {billing!r} is not 'container' or 'pool'")
    skyserve = None
    if p.get("autoscaler") == "skyserve":
        skyserve = SkyServe(
            upscale_delay_s=float(p["upscale_delay_s"]),
            decision_interval_s=float(p["decision_interval_s"]),
            no_replica_decision_interval_s=float(p["no_replica_decision_interval_s"]),
            qps_window_s=float(p["qps_window_s"]),
        )
    return Provider(
        name=name,
        billing_granularity_s=float(p["billing_granularity_s"]),
        minimum_billed_s=float(p.get("minimum_billed_s", 0)),
        cold_start_s=float(p["cold_start_s"]),
        cold_start_source=str(p.get("cold_start_source", "")),
        default_max_containers=None if cap is None else int(cap),
        alongside_per_second=alongside,
        source=str(p["source"]),
        read_on=_date(p["read_on"]),
        billing=billing,
        skyserve=skyserve,
        spot=bool(p.get("spot", False)),
        user_rate=bool(p.get("user_rate", False)),
    )


def _rate(row: dict[str, Any], providers: dict[str, Provider]) -> Rate:
    gpu = "CPU" if row["gpu"] == "CPU" else canonical_gpu_name(row["gpu"])
    provider = providers.get(row["provider"])
    if gpu is None or provider is None:
        raise ValueError(f"row {row}: unknown GPU or provider")
    count = int(row.get("count", 1))
    spot: float | None = None
    if "instance_per_hour" in row:  # a VM (SkyPilot's catalog): sold whole, so it prices requests of its GPU count
        count = int(row["gpus_per_instance"])  # SkyPilot matches `H100:1` to 1-GPU instances only
        per_gpu = warm_per_gpu = float(row["instance_per_hour"]) / 3600
        if row.get("spot_instance_per_hour") is not None:
            spot = float(row["spot_instance_per_hour"]) / 3600
    else:
        per_gpu, warm_per_gpu = row["per_second"], row.get("warm_per_second", row["per_second"])
    alongside = 0.0 if gpu == "CPU" else provider.alongside_per_second
    return Rate(
        provider=provider.name,
        gpu=gpu,
        count=count,
        per_second=None if per_gpu is None else float(per_gpu) + alongside,
        warm_per_second=None if warm_per_gpu is None else float(warm_per_gpu) + alongside,
        source=str(row.get("source", provider.source)),
        read_on=_date(row["read_on"]) if "read_on" in row else provider.read_on,
        note=str(row.get("note", "")),
        spot_per_second=spot,
    )


def _date(value: object) -> date | None:
    return None if value is None else date.fromisoformat(str(value))
