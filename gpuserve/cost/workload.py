"""The traffic to replay: a Poisson process shaped by an hourly profile, or a trace of real requests."""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..errors import GpuserveError

HOURS = 24
DAY_S = 86_400.0

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
class Requests:
    """Arrival times (seconds from the start, sorted) and how long each request runs, over horizon_s."""

    arrivals: list[float]
    durations: list[float]
    horizon_s: float

    @property
    def days(self) -> float:
        return self.horizon_s / DAY_S

    @property
    def per_day(self) -> float:
        return len(self.arrivals) / self.days


def poisson(
    *, requests_per_day: float, seconds_per_request: float, profile: tuple[float, ...], days: int, seed: int
) -> Requests:
    """Poisson arrivals whose rate follows profile hour by hour, for whole days.

    Unit-rate arrival epochs are mapped through the inverse of the cumulative rate, so one seed gives the
    same pattern at every traffic level (twice the traffic is the same pattern, twice as dense): costs
    compared across traffic levels or providers differ by the traffic, not by the draw.
    """
    horizon = days * DAY_S
    if requests_per_day <= 0:
        return Requests([], [], horizon)
    cumulative = [0.0]
    for share in profile:
        cumulative.append(cumulative[-1] + share)
    uniform, log = random.Random(seed).random, math.log
    arrivals: list[float] = []
    append = arrivals.append
    epoch = -log(1.0 - uniform())  # unit-rate epochs: requests_per_day of them per simulated day
    for day in range(days):
        for hour, share in enumerate(profile):
            if share <= 0:
                continue
            low = (day + cumulative[hour]) * requests_per_day
            high = (day + cumulative[hour + 1]) * requests_per_day
            base, scale = day * DAY_S + hour * 3600.0, 3600.0 / (requests_per_day * share)
            while epoch < high:
                append(base + (epoch - low) * scale)
                epoch -= log(1.0 - uniform())
    return Requests(arrivals, [seconds_per_request] * len(arrivals), horizon)


def read_trace(path: Path, seconds_per_request: float | None) -> Requests:
    """A CSV with a `timestamp` column (epoch seconds or ISO 8601) and an optional `duration_s` column."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "timestamp" not in reader.fieldnames:
            raise GpuserveError(
                f"--trace {str(path)!r}: no `timestamp` column (found {reader.fieldnames or 'no header'}); "
                "write a CSV header `timestamp,duration_s` with epoch seconds or ISO 8601 times"
            )
        rows: list[tuple[float, float]] = []
        for line, row in enumerate(reader, start=2):
            stamp, duration = row["timestamp"].strip(), (row.get("duration_s") or "").strip()
            try:
                when = _timestamp(stamp)
                length = float(duration) if duration else seconds_per_request
            except ValueError:
                raise GpuserveError(
                    f"--trace {str(path)!r} line {line}: timestamp {stamp!r} / duration_s {duration!r} is not "
                    "epoch seconds or ISO 8601 / a number of seconds"
                ) from None
            if length is None:
                raise GpuserveError(
                    f"--trace {str(path)!r} line {line}: no duration_s and no --seconds-per-request to fill it in"
                )
            if not length > 0 or not math.isfinite(length):
                raise GpuserveError(f"--trace {str(path)!r} line {line}: duration_s {duration!r} must be above 0")
            rows.append((when, length))
    if not rows:
        raise GpuserveError(f"--trace {str(path)!r} has no requests; give one row per request")
    rows.sort()
    start = math.floor(rows[0][0] / DAY_S) * DAY_S  # midnight UTC before the first request: hours keep their place
    days = max(1, math.ceil((rows[-1][0] - start) / DAY_S))
    return Requests([t - start for t, _ in rows], [d for _, d in rows], days * DAY_S)


def trace_profile(requests: Requests) -> tuple[float, ...]:
    """The trace's share of requests in each hour of the day (UTC)."""
    counts = [0] * HOURS
    for t in requests.arrivals:
        counts[int(t % DAY_S // 3600)] += 1
    return tuple(c / len(requests.arrivals) for c in counts)


def _timestamp(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
