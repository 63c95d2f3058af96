"""`gpuserve cost`: parse the options, simulate each provider (gpuserve.cost), print the table or JSON."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import click

from ..cost.prices import DEFAULT_MAX_AGE_DAYS
from ..loader import load_app
from . import ExitStatus, fail

RATED = ("kubernetes",)  # providers without a list price: shown only with a rate


def _cold_starts(values: tuple[str, ...], providers: list[str]) -> dict[str, float]:
    cold: dict[str, float] = {}
    for value in values:
        provider, _, seconds = value.partition("=")
        if provider not in providers or not seconds:
            fail(
                f"--cold-start-seconds {value!r}: write PROVIDER=SECONDS with PROVIDER one of {', '.join(providers)}",
                ExitStatus.USAGE,
            )
        try:
            cold[provider] = float(seconds)
        except ValueError:
            fail(f"--cold-start-seconds {value!r}: {seconds!r} is not a number of seconds", ExitStatus.USAGE)
    return cold


def _rates(values: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """--rate kubernetes:H100=2.50: USD per GPU-hour, by provider and canonical GPU name."""
    from ..gpus import canonical_gpu_name

    rates: dict[str, dict[str, float]] = {}
    for value in values:
        provider, _, rest = value.partition(":")
        name, _, price = rest.partition("=")
        gpu = canonical_gpu_name(name)
        hint = f"write PROVIDER:GPU=USD_PER_GPU_HOUR, e.g. kubernetes:H100=2.50, PROVIDER one of {', '.join(RATED)}"
        if provider not in RATED or gpu is None or not price:
            fail(f"--rate {value!r}: {hint} and GPU a name gpuserve knows", ExitStatus.USAGE)
        try:
            hourly = float(price)
        except ValueError:
            fail(f"--rate {value!r}: {price!r} is not a number of USD per GPU-hour; {hint}", ExitStatus.USAGE)
        if not hourly > 0:
            fail(f"--rate {value!r}: the rate must be more than 0 USD per GPU-hour; {hint}", ExitStatus.USAGE)
        rates.setdefault(provider, {})[gpu] = hourly
    return rates


@click.command("cost")
@click.argument("app", required=False)
@click.option("--gpu", help='GPU to price, e.g. H100 or "H100:2" (default: APP\'s gpu; CPU without either).')
@click.option("--requests-per-day", type=click.FloatRange(min=0), help="Average requests a day (or give --trace).")
@click.option(
    "--seconds-per-request",
    type=click.FloatRange(min=0, min_open=True),
    help="How long one request runs; with --trace, fills in rows without duration_s.",
)
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
    "--trace",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of real requests to replay: a timestamp column (epoch seconds or ISO 8601), optional duration_s.",
)
@click.option(
    "--cold-start-seconds",
    "cold_start",
    multiple=True,
    metavar="PROVIDER=S",
    help="Cold start per provider, e.g. modal=20 (defaults in the price file).",
)
@click.option(
    "--rate",
    "rates",
    multiple=True,
    metavar="PROVIDER:GPU=USD",
    help="Your own cluster's cost per GPU-hour, e.g. kubernetes:H100=2.50: kubernetes is shown only with one.",
)
@click.option(
    "--spot",
    type=click.Choice(["off", "prefer", "only"]),
    help="Override APP's spot: prefer or only prices SkyPilot's VMs at spot rates (preemptions not simulated).",
)
@click.option(
    "--target-qps-per-replica",
    type=click.FloatRange(min=0, min_open=True),
    help="SkyServe's autoscaler target (default: what one replica can do, concurrency / seconds per request).",
)
@click.option("--keep-warm", type=click.IntRange(min=0), help="Override APP's keep_warm.")
@click.option("--idle-timeout", type=click.FloatRange(min=0), help="Override APP's idle_timeout (seconds).")
@click.option("--concurrency", type=click.IntRange(min=1), help="Override APP's concurrency.")
@click.option(
    "--max-containers",
    type=click.IntRange(min=1),
    help="Override APP's max_containers (default: each provider's own; RunPod's is 3 workers).",
)
@click.option("--p95", "p95_s", type=click.FloatRange(min=0), help="Also name the cheapest with p95 wait <= SECONDS.")
@click.option("--days", type=click.IntRange(min=1, max=366), default=30, show_default=True, help="Days to simulate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the simulated arrivals.")
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
    help="Draw monthly cost against requests per day, and the waits, to this PNG.",
)
def command(
    app: str | None,
    gpu: str | None,
    requests_per_day: float | None,
    seconds_per_request: float | None,
    traffic: str,
    profile: Path | None,
    trace: Path | None,
    cold_start: tuple[str, ...],
    rates: tuple[str, ...],
    spot: str | None,
    target_qps_per_replica: float | None,
    keep_warm: int | None,
    idle_timeout: float | None,
    concurrency: int | None,
    max_containers: int | None,
    p95_s: float | None,
    days: int,
    seed: int,
    months: int,
    prices_file: Path | None,
    max_price_age_days: int,
    as_json: bool,
    plot: Path | None,
) -> None:
    """Which provider is cheapest for this model and this traffic: each provider's autoscaling and billing simulated."""
    from ..cost import compare, load_prices, report, sweep, workload
    from ..gpus import parse_gpu

    spec = load_app(app).spec if app else None
    try:
        request = parse_gpu(gpu) if gpu else (spec.gpu if spec else None)
    except ValueError as exc:
        fail(f"--gpu {gpu!r}: {exc}", ExitStatus.USAGE)
    book = load_prices(prices_file)  # a bad price file raises GpuserveError: exit status 2 as well
    for provider, per_gpu_hour in _rates(rates).items():
        book = book.with_rates(provider, per_gpu_hour, f"your rate (--rate {provider}:GPU=USD per GPU-hour)")
    providers = book.priced_providers()
    cold = _cold_starts(cold_start, list(book.providers))
    if trace is not None:
        if requests_per_day is not None:
            fail("--requests-per-day and --trace: give one; a trace sets its own traffic", ExitStatus.USAGE)
        requests = workload.read_trace(trace, seconds_per_request)
        hourly = workload.trace_profile(requests)
        mean_s = sum(requests.durations) / len(requests.durations)
        shape, duration = f"trace {trace.name}", f"{mean_s:g} s (trace mean)"
    else:
        if requests_per_day is None or seconds_per_request is None:
            fail("give --requests-per-day and --seconds-per-request, or --trace FILE", ExitStatus.USAGE)
        try:
            hourly = workload.traffic_profile(traffic, json.loads(profile.read_text()) if profile else None)
        except ValueError as exc:
            fail(f"--profile {str(profile)!r}: {exc}", ExitStatus.USAGE)
        requests = workload.poisson(
            requests_per_day=requests_per_day,
            seconds_per_request=seconds_per_request,
            profile=hourly,
            days=days,
            seed=seed,
        )
        mean_s = seconds_per_request
        shape = f"{traffic if profile is None else profile.name} traffic (Poisson)"
        duration = f"{seconds_per_request:g} s"
    scenario = compare.Scenario(
        requests=requests,
        keep_warm=keep_warm if keep_warm is not None else (spec.keep_warm if spec else 0),
        idle_timeout=idle_timeout if idle_timeout is not None else (spec.idle_timeout if spec else 300),
        concurrency=concurrency if concurrency is not None else (spec.concurrency if spec else 1),
        max_containers=max_containers if max_containers is not None else (spec.max_containers if spec else None),
        gpu_count=request.count if request else 1,
        spot=spot if spot is not None else (spec.spot if spec else "off"),
        target_qps_per_replica=target_qps_per_replica,
    )
    choices = [(provider, request.types if request else ("CPU",)) for provider in providers]
    estimates = [compare.estimate(book, p, gpus, scenario, cold_start_s=cold.get(p)) for p, gpus in choices]
    levels = sweep.sweep(book, choices, scenario, seconds_per_request=mean_s, profile=hourly, cold=cold, seed=seed)
    points = sweep.break_evens(levels, estimates)
    summary = report.Summary(
        workload=_workload(
            scenario, per_day=requests_per_day, shape=shape, duration=duration, seed=seed, p95_s=p95_s, months=months
        ),
        estimates=estimates,
        cheapest=compare.cheapest(estimates),
        within_p95=compare.cheapest(estimates, p95_s) if p95_s is not None else None,
        levels=levels,
        points=points,
        warnings=book.stale(date.today(), max_price_age_days, [e.rate for e in estimates if e.rate is not None]),
        months=months,
    )
    if plot:
        from ..cost.plot import plot_costs

        title = summary.workload
        plot_costs(
            plot,
            levels=levels,
            points=points,
            estimates=estimates,
            traffic=requests.per_day,
            title=f"{title['duration']} per request, {title['traffic']}, keep_warm={title['keep_warm']}, "
            f"idle_timeout={title['idle_timeout']:g} s, concurrency={title['concurrency']}",
        )
    result = report.to_dict(summary, book)
    click.echo(json.dumps(result, indent=2) if as_json else report.table(result))
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)


def _workload(
    scenario: Any, *, per_day: float | None, shape: str, duration: str, seed: int, p95_s: float | None, months: int
) -> dict[str, Any]:
    requests = scenario.requests
    return {
        "requests_per_day": per_day if per_day is not None else requests.per_day,
        "requests_simulated": len(requests.arrivals),
        "duration": duration,
        "traffic": shape,
        "days": requests.days,
        "seed": seed,
        "keep_warm": scenario.keep_warm,
        "idle_timeout": scenario.idle_timeout,
        "concurrency": scenario.concurrency,
        "max_containers": scenario.max_containers,
        "gpu_count": scenario.gpu_count,
        "spot": scenario.spot,
        "p95_s": p95_s,
        "months": months,
    }
