"""`gpuserve cost` for the skypilot and kubernetes targets: catalog rows, SkyServe's autoscaler, VM billing, spot."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pytest
from click.testing import CliRunner

from gpuserve.cli import main
from gpuserve.cost import load_prices
from gpuserve.cost.billing import bill
from gpuserve.cost.compare import Scenario, estimate
from gpuserve.cost.simulate import FleetRun
from gpuserve.cost.skyserve import ReplicaPolicy, simulate_skyserve
from gpuserve.cost.workload import DAY_S, Requests, poisson, traffic_profile
from gpuserve.gpus import GPU_TYPES

BOOK = load_prices()
SKY = BOOK.providers["skypilot"]


def steady(requests_per_day: float, seconds: float, **options: object) -> Scenario:
    traffic = poisson(
        requests_per_day=requests_per_day,
        seconds_per_request=seconds,
        profile=traffic_profile("steady"),
        days=1,
        seed=0,
    )
    return Scenario(requests=traffic, **options)  # type: ignore[arg-type]


def test_skypilot_rows_price_whole_instances_of_their_gpu_count_with_their_source() -> None:
    h100 = BOOK.rate("skypilot", "H100") or pytest.fail("no skypilot H100 row")
    assert h100.per_second == pytest.approx(6.88 / 3600)  # p5.4xlarge on demand, one H100
    assert h100.spot_per_second is None  # no spot price for it in us-east-1
    eight = BOOK.rate("skypilot", "H100", 8) or pytest.fail("no 8 x H100")
    assert eight.per_second == pytest.approx(55.04 / 3600)  # p5.48xlarge, whole
    assert eight.spot_per_second == pytest.approx(17.6289 / 3600)  # its spot price in use1-az6
    assert "p5.48xlarge" in eight.note and "us-east-1" in eight.note
    assert h100.source.startswith("https://github.com/skypilot-org/skypilot-catalog/blob/00148f2a/")
    assert BOOK.offered_gpus("skypilot") == set(GPU_TYPES)
    # SkyPilot matches `A100-80GB:1` to 1-GPU instances only, and AWS sells A100s eight at a time; L4s one or four.
    assert BOOK.rate("skypilot", "A100-80GB") is None and BOOK.rate("skypilot", "L4", 2) is None
    for gpu in GPU_TYPES:
        rates = [r for (p, g, _n), r in BOOK.rates.items() if p == "skypilot" and g == gpu]
        assert rates, gpu
        for rate in rates:
            assert rate.read_on is None and rate.source == SKY.source  # the catalog copy is undated: it warns
            assert rate.note, gpu
    assert any("skypilot prices come from a copy" in w for w in BOOK.stale(date(2026, 11, 28), 180, [h100]))


def test_a_vm_bills_per_second_with_a_60_second_minimum() -> None:
    rate = BOOK.rate("skypilot", "T4") or pytest.fail("no T4")
    per_second = rate.per_second or pytest.fail("T4 unpriced")
    run = FleetRun(
        horizon_s=DAY_S,
        requests=2,
        keep_warm=0,
        lifetimes_s=(20.0, 61.2),
        cold_starts=2,
        cold_hits=2,
        serving_warm_s=0.0,
        serving_flex_s=2.0,
        waits_s=(5.0, 5.0),
        peak_containers=1,
    )
    assert bill(run, SKY, rate, cold_start_s=5).cost == pytest.approx((60 + 62) * per_second)


def test_skyserve_scales_from_zero_at_its_next_decision_and_down_after_the_downscale_delay() -> None:
    # A request at 0 s: the decision at 0 s saw no traffic; the next comes 5 s later (no replicas), launches a replica
    # that is ready at 105 s. The window empties at 60 s, but while the request waits (its client retries) one replica
    # is wanted; from the decision at 105 s, 60 decisions 20 s apart agree on zero, so the replica goes at 1,285 s.
    policy = ReplicaPolicy(cold_start_s=100, target_qps_per_replica=0.5, downscale_delay_s=1200)
    run = simulate_skyserve([0.0], [2.0], policy, DAY_S)
    assert (run.cold_starts, run.cold_hits, run.waits_s, run.lifetimes_s) == (1, 1, (105.0,), (1280.0,))


def test_skyserve_adds_a_replica_only_after_the_upscale_delay() -> None:
    # One request a second of 1.5 s, one kept-warm replica, 0.5 QPS per replica wanted: two replicas are wanted from
    # the decision at 40 s; the 15th decision in a row that agrees (320 s) launches one, ready at 330 s. The backlog
    # then peaks: the warm replica has done 220 requests, so request 220 (arrived at 220 s) waited 110 s. Traffic ends
    # at 999 s; from 1,040 s one replica is wanted, and three decisions later (1,080 s) the newer one goes: 760 s.
    policy = ReplicaPolicy(cold_start_s=10, target_qps_per_replica=0.5, downscale_delay_s=60, min_replicas=1)
    run = simulate_skyserve([float(i) for i in range(1000)], [1.5] * 1000, policy, DAY_S)
    assert (run.cold_starts, run.cold_hits, run.peak_containers, run.lifetimes_s) == (1, 1, 2, (760.0,))
    assert run.waits_s[-1] == 110.0


def test_spot_prefer_bills_skypilot_at_spot_rates_and_leaves_serverless_providers_on_demand() -> None:
    on_demand = estimate(BOOK, "skypilot", ("L40S",), steady(500, 10.0), what_ifs=False)
    spot = estimate(BOOK, "skypilot", ("L40S",), steady(500, 10.0, spot="prefer"), what_ifs=False)
    assert spot.run == on_demand.run  # the same replicas; preemptions are not simulated
    assert spot.cost_per_month / on_demand.cost_per_month == pytest.approx(0.9154 / 1.861)  # g6e.xlarge
    assert any("preemptions are not simulated" in note for note in spot.notes)
    assert not any("spot" in note for note in on_demand.notes)
    modal = [estimate(BOOK, "modal", ("H100",), steady(500, 10.0, spot=s), what_ifs=False) for s in ("off", "only")]
    assert modal[0].cost_per_month == modal[1].cost_per_month
    assert modal[1].notes == ("spot=only: modal sells no spot capacity, so on-demand rates",)


def test_spot_only_without_a_spot_price_is_unpriced_and_prefer_falls_back_to_on_demand() -> None:
    h100 = BOOK.rate("skypilot", "H100") or pytest.fail("no H100")
    book = replace(BOOK, rates=BOOK.rates | {("skypilot", "H100", 1): replace(h100, spot_per_second=None)})
    only = estimate(book, "skypilot", ("H100",), steady(100, 1.0, spot="only"), what_ifs=False)
    assert only.status == "price unknown" and only.rate is not None and "no spot price" in only.rate.note
    prefer = estimate(book, "skypilot", ("H100",), steady(100, 1.0, spot="prefer"), what_ifs=False)
    off = estimate(book, "skypilot", ("H100",), steady(100, 1.0), what_ifs=False)
    assert prefer.cost_per_month == off.cost_per_month > 0
    assert prefer.notes[0] == "spot=prefer: no spot price read for H100, so on-demand rates"


def test_kubernetes_bills_the_most_pods_up_at_once_for_every_hour() -> None:
    book = BOOK.with_rates("kubernetes", {"H100": 2.5}, "your rate")
    e = estimate(book, "kubernetes", ("H100",), steady(5000, 30.0), what_ifs=False)
    assert e.run is not None and e.run.peak_containers > 1
    assert e.cost_per_month == pytest.approx(e.run.peak_containers * 2.5 * 24 * 30)
    assert e.notes[0].startswith("your nodes bill whether pods run or not: a pool of")
    unrated = estimate(book, "kubernetes", ("L4",), steady(5000, 30.0), what_ifs=False)
    assert unrated.status == "no rate given"


def test_kubernetes_is_compared_only_with_a_rate() -> None:
    args = ["cost", "--gpu", "H100", "--requests-per-day", "200", "--seconds-per-request", "2", "--days", "1", "--json"]
    runner = CliRunner()
    without = json.loads(runner.invoke(main, args).stdout)
    assert [row["provider"] for row in without["estimates"]] == ["modal", "runpod", "replicate", "skypilot"]
    assert "kubernetes" not in without["prices"]["sources"]
    rated = runner.invoke(main, [*args, "--rate", "kubernetes:H100=2.50"])
    assert rated.exit_code == 0, rated.output
    kubernetes = json.loads(rated.stdout)["estimates"][-1]
    assert kubernetes["provider"] == "kubernetes" and kubernetes["price"]["per_second"] == pytest.approx(2.5 / 3600)
    assert not any("kubernetes" in w for w in json.loads(rated.stdout)["warnings"])
    bad = runner.invoke(main, [*args, "--rate", "modal:H100=2.50"])
    assert bad.exit_code == 2 and "PROVIDER one of kubernetes" in bad.stderr


def test_the_table_says_which_rates_are_spot_and_that_preemptions_are_not_simulated() -> None:
    args = ["cost", "--gpu", "L4", "--requests-per-day", "300", "--seconds-per-request", "2", "--days", "1"]
    table = CliRunner().invoke(main, [*args, "--spot", "prefer"])
    assert table.exit_code == 0, table.output
    assert "1 GPU(s) per container, spot=prefer\n" in table.stdout
    assert "  skypilot: spot=prefer: spot rates; preemptions are not simulated" in table.stdout
    assert "  runpod: spot=prefer: runpod sells no spot capacity, so on-demand rates" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 120


def test_skyserve_with_a_downscale_delay_under_a_cold_start_can_bill_thinner_traffic_more() -> None:
    # Why the property "more traffic never costs less" holds for SkyPilot only where downscale_delay (idle_timeout)
    # is not shorter than a VM's cold start: half the requests leave minutes without traffic, SkyServe lets the
    # replica go after 60 s and launches another, whose 300 s of provisioning bill again.
    full = poisson(
        requests_per_day=2237,
        seconds_per_request=1.0,
        profile=traffic_profile("business-hours"),
        days=1,
        seed=24,
    )
    thinned = Requests(full.arrivals[::2], full.durations[::2], full.horizon_s)
    less, more = (
        estimate(BOOK, "skypilot", ("T4",), Scenario(r, idle_timeout=60), what_ifs=False) for r in (thinned, full)
    )
    assert less.run is not None and more.run is not None
    assert (less.run.cold_starts, more.run.cold_starts) == (2, 1)
    assert less.cost_per_month > more.cost_per_month
