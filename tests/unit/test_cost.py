"""`gpuserve cost`: the fleet simulation on cases worked by hand, its properties, the price file, and the command."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuserve.adapters.cog import MULTI_GPU, REPLICATE_GPUS
from gpuserve.adapters.runpod import WANTED
from gpuserve.cli import main
from gpuserve.cost import load_prices
from gpuserve.cost.billing import bill
from gpuserve.cost.compare import Scenario, cheapest, estimate
from gpuserve.cost.simulate import Fleet, simulate
from gpuserve.cost.sweep import Level, break_evens
from gpuserve.cost.workload import DAY_S, Requests, poisson, read_trace, traffic_profile
from gpuserve.gpus import GPU_TYPES
from tests.apps import TEXT

BOOK = load_prices()
MODAL_H100 = 0.001097 + 1 * 0.0000131 + 4 * 0.00000222  # GPU, plus the 1 core and 4 GiB Modal bills alongside


def steady(requests_per_day: float, seconds: float, days: int = 2, seed: int = 0) -> Scenario:
    traffic = poisson(
        requests_per_day=requests_per_day,
        seconds_per_request=seconds,
        profile=traffic_profile("steady"),
        days=days,
        seed=seed,
    )
    return Scenario(requests=traffic)


RATED = BOOK.with_rates("kubernetes", {"H100": 2.5}, "a rate for the tests")  # kubernetes needs your own rate


def monthly(provider: str, scenario: Scenario, gpu: str = "H100") -> float:
    return estimate(RATED, provider, (gpu,), scenario, what_ifs=False).cost_per_month


def test_sparse_requests_each_pay_a_cold_start_the_work_and_the_idle_timeout() -> None:
    # Requests two hours apart, 2 s each, cold start 10 s, idle_timeout 60 s: every one starts a container,
    # waits 10 s for it, and the container bills 10 + 2 + 60 = 72 s.
    arrivals = [i * 7200.0 for i in range(12)]
    run = simulate(arrivals, [2.0] * 12, Fleet(cold_start_s=10, idle_timeout_s=60), horizon_s=DAY_S)
    assert (run.cold_starts, run.cold_hits, run.peak_containers) == (12, 12, 1)
    assert run.lifetimes_s == (72.0,) * 12
    assert run.wait_percentile(50) == run.wait_percentile(99) == 10.0
    got = bill(run, BOOK.providers["modal"], BOOK.rate("modal", "H100") or pytest.fail(), cold_start_s=10)
    assert (got.serving_s, got.cold_start_s, got.idle_s, got.warm_s) == (24.0, 120.0, 720.0, 0.0)
    assert got.cost == pytest.approx(12 * 72 * MODAL_H100)


def test_a_kept_warm_container_bills_the_whole_horizon_at_the_always_on_rate() -> None:
    # One request a minute of 1 s: the warm container serves them all, nothing starts on demand.
    arrivals = [60.0 * i for i in range(1440)]
    run = simulate(arrivals, [1.0] * 1440, Fleet(cold_start_s=12, idle_timeout_s=5, keep_warm=1), horizon_s=DAY_S)
    assert (run.cold_starts, run.lifetimes_s, run.waits_s, run.serving_warm_s) == (0, (), (), 1440.0)
    got = bill(run, BOOK.providers["runpod"], BOOK.rate("runpod", "H100") or pytest.fail(), cold_start_s=12)
    assert got.cost == pytest.approx(86_400 * 0.00093)  # RunPod's active-worker rate, not the flex 0.00116


def test_beyond_max_containers_requests_queue_first_come_first_served() -> None:
    # Three requests at once, 10 s each, one container allowed, cold start 5 s: they start at 5, 15 and 25 s.
    run = simulate([0.0, 0.0, 0.0], [10.0] * 3, Fleet(cold_start_s=5, idle_timeout_s=30, max_containers=1), 3600)
    assert run.waits_s == (5.0, 15.0, 25.0)
    assert (run.cold_starts, run.cold_hits, run.lifetimes_s) == (1, 1, (65.0,))  # 5 + 30 of work + 30 idle


def test_a_request_takes_a_busy_container_that_frees_before_the_new_one_is_ready() -> None:
    # A kept-warm container runs a 10 s request from 0; the next at 8 s finds no free slot, so a container starts
    # (ready at 8 + 12 = 20 s), but the warm one frees at 10 s and takes it: a 2 s wait, no cold-start hit, and
    # the new container comes up unused and idles out after 30 s.
    fleet = Fleet(cold_start_s=12, idle_timeout_s=30, keep_warm=1)
    run = simulate([0.0, 8.0], [10.0, 10.0], fleet, horizon_s=3600)
    assert (run.cold_starts, run.cold_hits, run.waits_s, run.lifetimes_s) == (1, 0, (2.0,), (12.0 + 30.0,))


def test_concurrent_slots_share_one_container() -> None:
    run = simulate([0.0, 1.0, 2.0], [10.0] * 3, Fleet(cold_start_s=4, idle_timeout_s=30, concurrency=4), 3600)
    assert (run.cold_starts, run.peak_containers, run.waits_s) == (1, 1, (2.0, 3.0, 4.0))
    assert run.serving_flex_s == pytest.approx(30 / 4)
    assert run.lifetimes_s == (4.0 + 10.0 + 30.0,)  # the last request ends at 4 + 10


def test_doubling_traffic_raises_every_providers_bill() -> None:
    # The closed-form model had Modal's bill fall from 1,000 to 2,000 requests a day of 30 s on an H100.
    for provider in ("modal", "runpod", "replicate", "skypilot", "kubernetes"):
        costs = [monthly(provider, steady(r, 30.0)) for r in (250, 500, 1000, 2000, 4000)]
        assert costs == sorted(costs), provider


def test_at_high_load_cost_grows_in_proportion_to_traffic_plus_square_root_spare() -> None:
    # Beyond the work itself (a per request), the autoscaler keeps spare containers for the traffic's swings,
    # which grow like the square root of the load (square-root staffing): cost = a * r + b * sqrt(r).
    # Fitted at 50,000 and 200,000 requests a day of 10 s, it predicts 100,000, and a is near the work's cost.
    costs = {r: monthly("modal", steady(r, 10.0, days=1)) for r in (50_000, 100_000, 200_000)}
    root = (50_000**0.5, 200_000**0.5)
    a = (costs[200_000] / root[1] - costs[50_000] / root[0]) / (root[1] - root[0])
    b = costs[50_000] / root[0] - a * root[0]
    assert costs[100_000] == pytest.approx(a * 100_000 + b * 100_000**0.5, rel=0.02)
    work = 10 * MODAL_H100 * 30  # a month of one request a day
    assert work < a < 1.2 * work


def test_keep_warm_costs_more_on_modal_and_removes_cold_start_hits() -> None:
    cold, warm = steady(200, 5.0), steady(200, 5.0)
    base = estimate(BOOK, "modal", ("H100",), cold, what_ifs=False)
    kept = estimate(BOOK, "modal", ("H100",), Scenario(warm.requests, keep_warm=1), what_ifs=False)
    assert kept.cost_per_month > base.cost_per_month
    assert kept.run is not None and base.run is not None and kept.run.cold_hits < base.run.cold_hits


def test_a_cap_on_containers_raises_queueing() -> None:
    traffic = steady(5000, 30.0).requests
    free = estimate(BOOK, "modal", ("H100",), Scenario(traffic), what_ifs=False)
    capped = estimate(BOOK, "modal", ("H100",), Scenario(traffic, max_containers=2), what_ifs=False)
    assert free.run is not None and capped.run is not None
    assert capped.run.wait_percentile(95) > free.run.wait_percentile(95)
    assert capped.cost_per_month < free.cost_per_month


def test_a_trace_replayed_twice_gives_the_same_answer(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text(
        "timestamp,duration_s\n2026-03-01T09:00:00Z,4\n1772356000,\n2026-03-01T09:00:30+00:00,2.5\n", encoding="utf-8"
    )
    first, second = read_trace(trace, 3.0), read_trace(trace, 3.0)
    assert first.durations == [4.0, 2.5, 3.0] and first.horizon_s == DAY_S
    assert first.arrivals[:2] == [9 * 3600.0, 9 * 3600.0 + 30]
    fleet = Fleet(cold_start_s=8, idle_timeout_s=300)
    assert simulate(first.arrivals, first.durations, fleet, DAY_S) == simulate(
        second.arrivals, second.durations, fleet, DAY_S
    )
    args = ["cost", "--gpu", "L4", "--trace", str(trace), "--seconds-per-request", "3", "--json"]
    outputs = [CliRunner().invoke(main, args) for _ in range(2)]
    assert outputs[0].exit_code == 0, outputs[0].output
    assert outputs[0].stdout == outputs[1].stdout


def test_a_seed_fixes_the_arrivals() -> None:
    same = [steady(300, 1.0, seed=7).requests.arrivals for _ in range(2)]
    assert same[0] == same[1] != steady(300, 1.0, seed=8).requests.arrivals


def test_break_even_is_interpolated_between_the_levels_where_costs_cross() -> None:
    levels = [Level(100, {"a": 10.0, "b": 40.0}, {}), Level(1000, {"a": 40.0, "b": 10.0}, {})]
    priced = [estimate(BOOK, p, ("H100",), steady(10, 1.0), what_ifs=False) for p in ("modal", "runpod")]
    renamed = [p.__class__(**{**p.__dict__, "provider": name}) for p, name in zip(priced, "ab", strict=True)]
    (point,) = break_evens(levels, renamed)
    assert (point.cheaper_below, point.cheaper_above) == ("a", "b")
    assert point.requests_per_day == pytest.approx(316.23, rel=1e-3) and point.cost_per_month == pytest.approx(20)


def test_cheapest_skips_providers_without_a_price_or_that_cannot_keep_up() -> None:
    busy = steady(20_000, 30.0, days=1)  # about 7 containers busy: RunPod's default of 3 workers cannot keep up
    estimates = [estimate(BOOK, p, ("H100",), busy, what_ifs=False) for p in ("modal", "runpod")]
    assert estimates[1].overloaded and not estimates[0].overloaded
    best, reason = cheapest(estimates)
    assert best is estimates[0] and reason.startswith("modal (H100) is cheapest at $")
    unknown = estimate(BOOK, "runpod", ("RTX-PRO-6000",), busy, what_ifs=False)
    assert unknown.status == "price unknown" and cheapest([unknown]) == (
        None,
        "no provider has a known price for this GPU and keeps up with the traffic.",
    )


def test_prices_name_the_gpus_each_build_target_offers() -> None:
    assert BOOK.offered_gpus("modal") == set(GPU_TYPES)
    assert BOOK.offered_gpus("runpod") == set(WANTED)
    assert BOOK.offered_gpus("replicate") == set(REPLICATE_GPUS.names)
    assert BOOK.offered_gpus("skypilot") == set(GPU_TYPES)  # SkyPilot's catalog has a VM for each; one is unpriced
    sku_to_gpu = {sku: gpu for gpu, (sku,) in REPLICATE_GPUS.names.items()}
    multi = {(gpu, n) for (p, gpu, n) in BOOK.rates if p == "replicate" and n > 1}
    assert multi == {(sku_to_gpu[sku], n) for sku, n in MULTI_GPU}
    assert BOOK.rate("replicate", "H100", 2) is None  # not in the cog target's multi-GPU table


def test_every_price_says_where_it_was_read() -> None:
    data = json.loads((Path(__file__).parents[2] / "gpuserve" / "data" / "prices.json").read_text())
    for name, provider in data["providers"].items():
        if provider.get("user_rate"):  # your own cluster: no list price, shown only with your rate
            assert name not in BOOK.priced_providers() and not BOOK.offered_gpus(name), name
            continue
        assert provider["source"].startswith("https://"), name
        assert provider["read_on"] is not None or "no date" in provider["read_note"], name
    for rate in BOOK.rates.values():
        assert rate.source.startswith("https://") and (rate.per_second is not None or rate.note), rate


def test_stale_and_undated_prices_warn() -> None:
    used = [BOOK.rate("modal", "H100"), BOOK.rate("runpod", "H100")]
    warnings = BOOK.stale(date(2026, 7, 1), 180, [r for r in used if r is not None])
    assert warnings == [
        "runpod prices come from a copy of https://docs.runpod.io/serverless/pricing whose date is unknown: "
        "check the page and pass --prices FILE"
    ]
    assert any("2025-06-01" in w for w in BOOK.stale(date(2026, 7, 1), 180, [BOOK.rate("modal", "B200")]))  # type: ignore[list-item]


def test_multi_gpu_rates() -> None:
    two = BOOK.rate("modal", "H100", 2)
    assert two is not None and two.per_second == pytest.approx(2 * 0.001097 + MODAL_H100 - 0.001097)
    assert (BOOK.rate("replicate", "L40S", 2) or pytest.fail()).per_second == 0.00195


def test_cli_table_json_and_plot(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["cost", TEXT.ref, "--requests-per-day", "1000", "--seconds-per-request", "2", "--days", "3"]
    table = runner.invoke(main, [*args, "--p95", "1"])
    assert table.exit_code == 0, table.output
    assert "1,000 requests/day x 2 s, steady traffic (Poisson); 3 days simulated (seed 0)" in table.stdout
    assert "p95 wait <= 1 s: " in table.stdout and "what more money buys" in table.stdout
    report = json.loads(runner.invoke(main, [*args, "--json", "--months", "3"]).stdout)
    assert {row["provider"]: row["gpu"] for row in report["estimates"]} == {
        "modal": "A10",
        "runpod": "L4",
        "replicate": "L40S",
        "skypilot": "A10",
    }  # each provider's first GPU from the fallback list
    modal = report["estimates"][0]
    assert modal["cost_total"] == pytest.approx(3 * modal["cost_per_month"])
    assert set(modal["latency"]) == {"cold_start_hit_share", "wait_p50_s", "wait_p95_s", "wait_p99_s", "wait_max_s"}
    assert [w["change"] for w in modal["what_ifs"]] == ["keep_warm=1", "idle_timeout=600 s"]
    assert report["sweep"] and report["prices"]["sources"]["modal"]["read_on"] == "2026-05-07"
    png = tmp_path / "cost.png"
    plotted = runner.invoke(main, [*args, "--gpu", "H100", "--plot", str(png)])
    assert plotted.exit_code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = runner.invoke(main, ["cost", "--gpu", "L4", "--seconds-per-request", "1"])
    assert missing.exit_code == 2 and "give --requests-per-day and --seconds-per-request" in missing.stderr


def test_the_worked_example_in_docs_prints_what_the_docs_show() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "cost.md").read_text(encoding="utf-8")
    example = doc[doc.index("## A worked example") :]
    command = example[example.index("```bash\n") + 8 :].split("\n", 1)[0]
    shown = example[example.index("```text\n") + 8 :].split("```", 1)[0]
    printed = CliRunner().invoke(main, command.split()[1:])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == shown


PROPERTY = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(
    requests=st.integers(min_value=20, max_value=4000),
    seconds=st.floats(min_value=0.5, max_value=40),
    seed=st.integers(min_value=0, max_value=3),
    provider=st.sampled_from(["modal", "runpod", "replicate", "skypilot", "kubernetes"]),
    spot=st.sampled_from(["off", "prefer"]),
)
def test_more_traffic_never_costs_less(requests: int, seconds: float, seed: int, provider: str, spot: str) -> None:
    """The same arrivals thinned to half (every other request) never cost more than all of them."""
    full = steady(requests, seconds, days=1, seed=seed).requests
    thinned = Requests(arrivals=full.arrivals[::2], durations=full.durations[::2], horizon_s=full.horizon_s)
    qps = 1 / seconds  # SkyServe's target, the same for both (by default it follows the mean request length)
    less, more = (Scenario(r, spot=spot, target_qps_per_replica=qps) for r in (thinned, full))
    assert monthly(provider, less) <= monthly(provider, more) + 1e-6


@PROPERTY
@given(requests=st.integers(min_value=5, max_value=200), seconds=st.floats(min_value=0.5, max_value=5))
def test_keep_warm_raises_cost_and_never_raises_cold_hits_while_containers_idle_out(
    requests: int, seconds: float
) -> None:
    """Where containers scale down between requests; under steady load a kept-warm one costs what one already on does,
    less its cold starts, and can come out a little cheaper (hypothesis found such a case with more traffic)."""
    scenario = steady(requests, seconds, days=1)
    base = estimate(BOOK, "modal", ("H100",), scenario, what_ifs=False)
    kept = estimate(BOOK, "modal", ("H100",), Scenario(scenario.requests, keep_warm=1), what_ifs=False)
    assert kept.run is not None and base.run is not None
    assert kept.cost_per_month >= base.cost_per_month and kept.run.cold_hits <= base.run.cold_hits
