"""`gpuserve cost`'s output: one dict that --json prints whole, and the table drawn from it."""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass
from typing import Any

from .compare import Estimate
from .prices import PriceBook
from .sweep import BreakEven, Level


@dataclass(frozen=True)
class Summary:
    """What the command found, with the workload described in words for the table's first line."""

    workload: dict[str, Any]
    estimates: list[Estimate]
    cheapest: tuple[Estimate | None, str]
    within_p95: tuple[Estimate | None, str] | None
    levels: list[Level]
    points: list[BreakEven]
    warnings: list[str]
    months: int


def to_dict(summary: Summary, book: PriceBook) -> dict[str, Any]:
    best, reason = summary.cheapest
    compared = {e.provider for e in summary.estimates}
    result: dict[str, Any] = {
        "workload": summary.workload,
        "estimates": [_estimate(e, summary.months) for e in summary.estimates],
        "cheapest": {"provider": best.provider if best else None, "gpu": best.gpu if best else None, "reason": reason},
    }
    if summary.within_p95 is not None:
        fit, why = summary.within_p95
        result["cheapest_within_p95"] = {
            "p95_s": summary.workload["p95_s"],
            "provider": fit.provider if fit else None,
            "reason": why,
        }
    result |= {
        "break_even": [asdict(p) for p in summary.points],
        "sweep": [asdict(level) for level in summary.levels],
        "prices": {
            "file": book.origin,
            "sources": {
                p.name: {
                    "url": p.source,
                    "read_on": p.read_on.isoformat() if p.read_on else None,
                    "user_rate": p.user_rate,
                }
                for p in book.providers.values()
                if p.name in compared
            },
        },
        "warnings": summary.warnings,
    }
    return result


def _estimate(e: Estimate, months: int) -> dict[str, Any]:
    row: dict[str, Any] = {"provider": e.provider, "gpu": e.gpu, "status": e.status, "notes": list(e.notes)}
    if e.rate is not None:
        row["price"] = {
            "per_second": e.rate.per_second,
            "warm_per_second": e.rate.warm_per_second,
            "source": e.rate.source,
            "read_on": e.rate.read_on.isoformat() if e.rate.read_on else None,
            "note": e.rate.note,
        }
    if e.run is None or e.bill is None:
        return row
    run, b = e.run, e.bill
    return row | {
        "max_containers": e.max_containers,
        "needed_containers": e.needed_containers,
        "keeps_up": not e.overloaded,
        "cold_start_seconds": e.cold_start_s,
        "container_seconds_per_month": {
            "serving": e.per_month(b.serving_s),
            "cold_start": e.per_month(b.cold_start_s),
            "idle": e.per_month(b.idle_s),
            "keep_warm": e.per_month(b.warm_s),
            "total": e.per_month(b.billed_s),
        },
        "cold_starts_per_month": e.per_month(run.cold_starts),
        "peak_containers": run.peak_containers,
        "latency": {
            "cold_start_hit_share": e.cold_hit_share,
            "wait_p50_s": run.wait_percentile(50),
            "wait_p95_s": run.wait_percentile(95),
            "wait_p99_s": run.wait_percentile(99),
            "wait_max_s": run.waits_s[-1] if run.waits_s else 0.0,
        },
        "cost_per_request": e.cost_per_month / e.per_month(run.requests) if run.requests else None,
        "cost_per_month": e.cost_per_month,
        "cost_total": e.cost_per_month * months,
        "what_ifs": [asdict(w) | {"hits_removed_per_dollar": w.hits_removed_per_dollar} for w in e.what_ifs],
    }


def table(report: dict[str, Any]) -> str:
    """The report as text, 120 columns at most."""
    w = report["workload"]
    lines = [
        f"{w['requests_per_day']:,.0f} requests/day x {w['duration']}, {w['traffic']}; "
        f"{w['days']:g} days simulated (seed {w['seed']}), costs per 30-day month",
        f"keep_warm={w['keep_warm']}, idle_timeout={w['idle_timeout']:g} s, concurrency={w['concurrency']}, "
        f"max_containers={w['max_containers'] if w['max_containers'] is not None else 'provider default'}, "
        f"{w['gpu_count']} GPU(s) per container" + (f", spot={w['spot']}" if w.get("spot", "off") != "off" else ""),
        "",
        f"{'provider':<10} {'gpu':<10} {'$/month':>10} {'$/request':>9} {'colds/mo':>9} {'cold hit':>8} "
        f"{'p50 wait':>8} {'p95 wait':>8} {'p99 wait':>8}  {'serve':>5} {'cold':>4} {'idle':>4} {'warm':>4}",
    ]
    for row in report["estimates"]:
        if "latency" not in row:
            why = row["status"] + (f": {row['price']['note']}" if row["status"] == "price unknown" else "")
            lines.append(f"{row['provider']:<10} {row['gpu']:<10} {why}"[:120])
            continue
        lat, s = row["latency"], row["container_seconds_per_month"]
        shares = [s[k] / s["total"] if s["total"] else 0.0 for k in ("serving", "cold_start", "idle", "keep_warm")]
        lines.append(
            f"{row['provider']:<10} {row['gpu']:<10} {row['cost_per_month']:>10,.2f} {row['cost_per_request']:>9.5f} "
            f"{row['cold_starts_per_month']:>9,.0f} {lat['cold_start_hit_share']:>8.1%} "
            f"{lat['wait_p50_s']:>7.1f}s {lat['wait_p95_s']:>7.1f}s {lat['wait_p99_s']:>7.1f}s  "
            + " ".join(f"{x:>{n}.0%}" for x, n in zip(shares, (5, 4, 4, 4), strict=True))
        )
        if not row["keeps_up"]:
            lines.append(
                f"{'':<10} cannot keep up: the busiest hour needs {row['needed_containers']:.1f} containers, "
                f"max_containers={row['max_containers']}; raise it (--max-containers)"
            )
    notes = [(row["provider"], note) for row in report["estimates"] for note in row.get("notes", [])]
    if notes:
        lines += ["", "notes:"]
        for provider, note in notes:
            lines += textwrap.wrap(f"{provider}: {note}", 120, initial_indent="  ", subsequent_indent="    ")
    lines += ["", *textwrap.wrap(f"cheapest: {report['cheapest']['reason']}", 120, subsequent_indent="  ")]
    if "cheapest_within_p95" in report:
        within = report["cheapest_within_p95"]
        lines += textwrap.wrap(f"p95 wait <= {within['p95_s']:g} s: {within['reason']}", 120, subsequent_indent="  ")
    lines.append("what more money buys (same traffic):")
    for row in report["estimates"]:
        for what in row.get("what_ifs", []):
            per_dollar = what["hits_removed_per_dollar"]
            buys = f"{per_dollar:,.2f} per $" if per_dollar is not None else "saves money"
            lines.append(
                f"  {row['provider']:<10} {what['change']:<18} {what['extra_per_month']:>+10,.2f} $/month "
                f"{what['cold_hits_removed_per_month']:>7,.0f} fewer cold-start hits/month ({buys}), "
                f"p95 {_seconds(what['p95_before_s'])} -> {_seconds(what['p95_after_s'])}"
            )
    for point in report["break_even"]:
        lines.append(
            f"break-even near {point['requests_per_day']:,.0f} requests/day (${point['cost_per_month']:,.2f}/month): "
            f"{point['cheaper_below']} is cheaper below, {point['cheaper_above']} above"
        )
    lines.append(f"prices: {report['prices']['file']}")
    for name, source in report["prices"]["sources"].items():
        if source["user_rate"]:
            lines.append(f"  {name}: {source['url']}")
        else:
            copy = f"copy of {source['read_on']}" if source["read_on"] else "undated copy"
            lines.append(f"  {name}: {source['url']} ({copy})")
    return "\n".join(lines)


def _seconds(value: float) -> str:
    """A wait for the what-if lines: tenths below 100 s, whole seconds above (SkyServe's waits run to minutes)."""
    return f"{value:.1f}s" if value < 100 else f"{value:.0f}s"
