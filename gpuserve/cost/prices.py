"""The price data file: one row per provider and GPU, each provider with its source and the date it was read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

from ..errors import GpuserveError
from ..gpus import canonical_gpu_name

DEFAULT_MAX_AGE_DAYS = 180  # prices read longer ago than this print a warning (`--max-price-age-days`)


@dataclass(frozen=True)
class Rate:
    """One GPU on one provider. Rates are USD per second per GPU; warm is the always-on rate where it differs."""

    provider: str
    gpu: str
    per_second: float
    warm_per_second: float


@dataclass(frozen=True)
class Provider:
    name: str
    billing_granularity_s: float
    minimum_billed_s: float
    cold_start_s: float
    cold_start_source: str
    source: str
    read_on: date


@dataclass(frozen=True)
class PriceBook:
    providers: dict[str, Provider]
    rates: dict[tuple[str, str], Rate]
    origin: str

    def rate(self, provider: str, gpu: str) -> Rate | None:
        return self.rates.get((provider, gpu))

    def stale(self, today: date, max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> list[str]:
        """A warning per provider whose prices are older than max_age_days."""
        return [
            f"{p.name} prices were read on {p.read_on.isoformat()}, {(today - p.read_on).days} days ago "
            f"(over {max_age_days}): check {p.source} and pass --prices FILE"
            for p in self.providers.values()
            if (today - p.read_on).days > max_age_days
        ]


def load_prices(path: str | Path | None = None) -> PriceBook:
    """Read prices from FILE, or the data file shipped in the package."""
    if path is None:
        text = resources.files("gpuserve").joinpath("data/prices.json").read_text(encoding="utf-8")
        origin = "gpuserve/data/prices.json"
    else:
        text, origin = Path(path).read_text(encoding="utf-8"), str(path)
    try:
        data = json.loads(text)
        providers = {
            name: Provider(
                name=name,
                billing_granularity_s=float(p["billing_granularity_s"]),
                minimum_billed_s=float(p.get("minimum_billed_s", 0)),
                cold_start_s=float(p["cold_start_s"]),
                cold_start_source=str(p.get("cold_start_source", "")),
                source=str(p["source"]),
                read_on=date.fromisoformat(p["read_on"]),
            )
            for name, p in data["providers"].items()
        }
        rates: dict[tuple[str, str], Rate] = {}
        for row in data["prices"]:
            gpu = "CPU" if row["gpu"] == "CPU" else canonical_gpu_name(row["gpu"])
            if gpu is None or row["provider"] not in providers:
                raise ValueError(f"row {row}: unknown GPU or provider")
            per_second = float(row["per_second"])
            rates[(row["provider"], gpu)] = Rate(
                provider=row["provider"],
                gpu=gpu,
                per_second=per_second,
                warm_per_second=float(row.get("warm_per_second", per_second)),
            )
    except (KeyError, ValueError, TypeError) as exc:
        raise GpuserveError(
            f"price file {origin}: {exc}. Each provider needs billing_granularity_s, cold_start_s, source, "
            "read_on (YYYY-MM-DD); each price row provider, gpu, per_second."
        ) from None
    return PriceBook(providers, rates, origin)
