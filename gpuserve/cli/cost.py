from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import click

from ..cost.prices import DEFAULT_MAX_AGE_DAYS
from . import ExitStatus, fail
from ._app import load_or_exit

PROVIDERS = ("modal", "runpod", "replicate")


def _cold_starts(values: tuple[str, ...]) -> dict[str, float]:
    cold: dict[str, float] = {}
    for value in values:
        provider, _, seconds = value.partition("=")
        if provider not in PROVIDERS or not seconds:
            fail(
                f"--cold-start-seconds {value!r}: write PROVIDER=SECONDS with PROVIDER one of {', '.join(PROVIDERS)}",
                ExitStatus.USAGE,
            )
        try:
            cold[provider] = float(seconds)
        except ValueError:
            fail(f"--cold-start-seconds {value!r}: {seconds!r} is not a number of seconds", ExitStatus.USAGE)
    return cold


@click.command("cost")
@click.argument("app", required=False)
@click.option("--gpu", help='GPU to price, e.g. H100 or "H100:2" (default: APP\'s gpu; CPU without either).')
@click.option("--requests-per-day", type=click.FloatRange(min=0), required=True)
@click.option("--seconds-per-request", type=click.FloatRange(min=0, min_open=True), required=True)
@click.option(
    "--traffic",
    type=click.Choice(["steady", "bursty", "business-hours"]),
    default="steady",
    show_default=True,
    help="Shape of the day (see docs/cost.md).",
)
@click.option(
    "--profile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON list of 24 hourly weights instead of --traffic.",
)
@click.option(
    "--cold-start-seconds",
    "cold_start",
    multiple=True,
    metavar="PROVIDER=S",
    help="Cold start per provider, e.g. modal=20 (defaults in the price file).",
)
@click.option("--keep-warm", type=click.IntRange(min=0), help="Override APP's keep_warm.")
@click.option("--idle-timeout", type=click.FloatRange(min=0), help="Override APP's idle_timeout (seconds).")
@click.option("--concurrency", type=click.IntRange(min=1), help="Override APP's concurrency.")
@click.option("--months", type=click.IntRange(min=1), default=1, show_default=True, help="Months to total.")
@click.option(
    "--prices",
    "prices_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A price file to use instead of the one shipped.",
)
@click.option(
    "--max-price-age-days",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_AGE_DAYS,
    show_default=True,
    help="Warn when prices were read longer ago than this.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw monthly cost against requests per day to this PNG.",
)
def command(
    app: str | None,
    gpu: str | None,
    requests_per_day: float,
    seconds_per_request: float,
    traffic: str,
    profile: Path | None,
    cold_start: tuple[str, ...],
    keep_warm: int | None,
    idle_timeout: float | None,
    concurrency: int | None,
    months: int,
    prices_file: Path | None,
    max_price_age_days: int,
    as_json: bool,
    plot: Path | None,
) -> None:
    """Which provider is cheapest for this model and this traffic, with cold starts and keep-warm counted."""
    from ..cost import Workload, estimate, load_prices, traffic_profile
    from ..cost.compare import break_evens, cheapest
    from ..gpus import parse_gpu

    spec = load_or_exit(app).spec if app else None
    try:
        request = parse_gpu(gpu) if gpu else (spec.gpu if spec else None)
    except ValueError as exc:
        fail(f"--gpu {gpu!r}: {exc}", ExitStatus.USAGE)
    book = load_prices(prices_file)  # a bad price file raises GpuserveError: exit status 2 as well
    try:
        hourly = traffic_profile(traffic, json.loads(profile.read_text()) if profile else None)
    except ValueError as exc:
        fail(f"--profile {str(profile)!r}: {exc}", ExitStatus.USAGE)
    work = Workload(
        requests_per_day=requests_per_day,
        seconds_per_request=seconds_per_request,
        profile=hourly,
        keep_warm=keep_warm if keep_warm is not None else (spec.keep_warm if spec else 0),
        idle_timeout=idle_timeout if idle_timeout is not None else (spec.idle_timeout if spec else 300),
        concurrency=concurrency if concurrency is not None else (spec.concurrency if spec else 1),
        gpu_count=request.count if request else 1,
    )
    cold = _cold_starts(cold_start)
    choices: list[tuple[str, str]] = []
    for provider in PROVIDERS:
        types = request.types if request else ("CPU",)
        offered = [t for t in types if book.rate(provider, t)]
        choices.append((provider, offered[0] if offered else types[0]))
    estimates = [estimate(book, p, g, work, cold.get(p)) for p, g in choices]
    best, reason = cheapest(estimates)
    offered_choices = [(e.provider, e.gpu) for e in estimates if e.offered]
    points = break_evens(book, offered_choices, work, cold)
    warnings = book.stale(date.today(), max_price_age_days)
    if plot:
        from ..cost.plot import plot_costs

        plot_costs(plot, book, offered_choices, work, cold, points)
    report = _report(
        work=work,
        estimates=estimates,
        best=best,
        reason=reason,
        points=points,
        warnings=warnings,
        book=book,
        months=months,
        traffic=traffic if profile is None else str(profile),
    )
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(_table(report))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def _report(
    *,
    work: Any,
    estimates: list[Any],
    best: Any,
    reason: str,
    points: list[Any],
    warnings: list[str],
    book: Any,
    months: int,
    traffic: str,
) -> dict[str, Any]:
    rows = []
    for e in estimates:
        row: dict[str, Any] = {"provider": e.provider, "gpu": e.gpu, "offered": e.offered}
        if e.offered:
            row |= {
                "gpu_seconds_per_day": {
                    "busy": e.busy_s,
                    "idle": e.idle_s,
                    "cold_start": e.cold_start_s,
                    "keep_warm": e.warm_s,
                    "total": e.billed_s,
                },
                "cold_starts_per_day": e.cold_starts_per_day,
                "cold_start_seconds": e.cold_start_seconds,
                "cost_per_request": e.cost_per_request(work.requests_per_day),
                "cost_per_day": e.cost_per_day,
                "cost_per_month": e.cost_per_month,
                "cost_total": e.cost_per_month * months,
            }
        rows.append(row)
    workload = asdict(work) | {"traffic": traffic, "months": months}
    workload.pop("profile")
    return {
        "workload": workload,
        "estimates": rows,
        "cheapest": {"provider": best.provider, "gpu": best.gpu, "reason": reason} if best else None,
        "break_even": [asdict(p) for p in points],
        "prices": {
            "file": book.origin,
            "sources": {p.name: {"url": p.source, "read_on": p.read_on.isoformat()} for p in book.providers.values()},
        },
        "warnings": warnings,
    }


def _table(report: dict[str, Any]) -> str:
    w = report["workload"]
    gpu_s = "GPU-s/day"
    lines = [
        f"{w['requests_per_day']:,.0f} requests/day x {w['seconds_per_request']:g} s, {w['traffic']} traffic, "
        f"keep_warm={w['keep_warm']}, idle_timeout={w['idle_timeout']:g} s, concurrency={w['concurrency']}, "
        f"{w['gpu_count']} GPU(s) per container",
        "",
        f"{'provider':<10} {'gpu':<10} {'busy':>10} {'idle':>10} {'cold':>10} {'warm':>10} {'colds/day':>10} "
        f"{'$/request':>11} {'$/month':>11} {'$ total':>11}",
        f"{'':<10} {'':<10} {gpu_s:>10} {gpu_s:>10} {gpu_s:>10} {gpu_s:>10}",
    ]
    for row in report["estimates"]:
        if not row["offered"]:
            lines.append(f"{row['provider']:<10} {row['gpu']:<10} not offered")
            continue
        s = row["gpu_seconds_per_day"]
        per_request = f"{row['cost_per_request']:.6f}" if row["cost_per_request"] is not None else "-"
        lines.append(
            f"{row['provider']:<10} {row['gpu']:<10} {s['busy']:>10,.0f} {s['idle']:>10,.0f} "
            f"{s['cold_start']:>10,.0f} {s['keep_warm']:>10,.0f} {row['cold_starts_per_day']:>10,.1f} "
            f"{per_request:>11} {row['cost_per_month']:>11,.2f} {row['cost_total']:>11,.2f}"
        )
    lines.append("")
    lines.append(report["cheapest"]["reason"] if report["cheapest"] else "No provider offers this GPU.")
    for point in report["break_even"]:
        lines.append(
            f"break-even at {point['requests_per_day']:,.0f} requests/day (${point['cost_per_month']:,.2f}/month): "
            f"{point['cheaper_below']} is cheaper below, {point['cheaper_above']} above"
        )
    lines.append(
        f"prices: {report['prices']['file']}; "
        + ", ".join(f"{k} {v['url']} (read {v['read_on']})" for k, v in report["prices"]["sources"].items())
    )
    return "\n".join(lines)
