"""The cost model on cases computed by hand (the arithmetic is written out below, not taken from the code)."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpuserve.cli import main
from gpuserve.cost import Workload, estimate, load_prices, traffic_profile
from gpuserve.cost.compare import break_evens, cheapest
from tests.apps import TEXT

BOOK = load_prices()


def test_steady_traffic_with_keep_warm_is_the_warm_pool_alone() -> None:
    # 43,200 requests/day of 1 s: 1,800 busy s an hour fit in one warm container; nothing else is billed.
    work = Workload(43_200, 1.0, traffic_profile("steady"), keep_warm=1, idle_timeout=300, concurrency=1)
    modal = estimate(BOOK, "modal", "H100", work)
    assert (modal.busy_s, modal.idle_s, modal.cold_start_s, modal.warm_s, modal.cold_starts_per_day) == (
        0,
        0,
        0,
        86_400,
        0,
    )
    assert modal.cost_per_day == pytest.approx(86_400 * 0.001097)  # 94.7808
    assert modal.cost_per_month == pytest.approx(30 * 94.7808)
    assert modal.cost_per_request(43_200) == pytest.approx(94.7808 / 43_200)
    runpod = estimate(BOOK, "runpod", "H100", work)
    assert runpod.cost_per_day == pytest.approx(86_400 * 0.00093)  # the active-worker rate: 80.352


def test_bursty_traffic_scaling_to_zero_pays_idle_and_cold_starts() -> None:
    # 300 requests/day in three one-hour bursts of 100; 2 s each; idle_timeout 60 s; cold start 10 s.
    work = Workload(300, 2.0, traffic_profile("bursty"), keep_warm=0, idle_timeout=60, concurrency=1)
    got = estimate(BOOK, "modal", "L40S", work, cold_start_s=10)
    lam = 100 / 3600  # requests per second inside a burst hour
    gone = math.exp(-lam * 60)  # P(next request comes after the container scaled down) = 0.188876
    busy = 3 * 100 * 2.0  # 600
    idle = 3 * 100 * (1 - gone) / lam  # 3 * 2,920.05
    colds = 3 * (100 * gone + 1)  # within bursts, plus one as each burst begins after a quiet hour
    assert got.busy_s == pytest.approx(busy)
    assert got.idle_s == pytest.approx(idle)
    assert got.cold_starts_per_day == pytest.approx(colds)
    assert got.cold_start_s == pytest.approx(colds * 10)
    assert got.cost_per_day == pytest.approx((busy + idle + colds * 10) * 0.000542)
    assert got.cost_per_day == pytest.approx(5.3966, rel=1e-3)


def test_concurrency_and_gpu_count_and_granularity(tmp_path: Path) -> None:
    data = json.loads((Path(__file__).parents[2] / "gpuserve" / "data" / "prices.json").read_text())
    data["providers"]["modal"]["billing_granularity_s"] = 5
    (tmp_path / "p.json").write_text(json.dumps(data))
    book = load_prices(tmp_path / "p.json")
    # 7,200 requests/hour of 3 s billed as 5 s; 15 requests in flight on average, 4 per container; 2 GPUs each.
    work = Workload(
        7_200 * 24, 3.0, traffic_profile("steady"), keep_warm=0, idle_timeout=300, concurrency=4, gpu_count=2
    )
    got = estimate(book, "modal", "H100", work, cold_start_s=0)
    busy_per_hour = 7_200 * 5 / 4  # 9,000 container-s: three containers' worth
    slack = 3 * 3_600 - busy_per_hour  # 1,800 s of the third container idle
    assert got.busy_s == pytest.approx(24 * busy_per_hour * 2)
    assert got.idle_s == pytest.approx(24 * slack * 2)


def test_a_provider_without_the_gpu_is_shown_as_such() -> None:
    work = Workload(1000, 1.0, traffic_profile("steady"))
    missing = estimate(BOOK, "replicate", "L4", work)
    assert not missing.offered and missing.cost_per_day == 0
    best, reason = cheapest([missing, estimate(BOOK, "runpod", "L4", work)])
    assert best is not None and best.provider == "runpod"
    assert reason.startswith("runpod is cheapest at $")


def test_break_even_between_warm_discount_and_cheaper_overflow() -> None:
    # keep_warm=1, steady, 1 s requests, cold start 10 s on both, idle_timeout 300 s.
    # RunPod's warm worker is 86,400 * (0.001097 - 0.00093) = $14.4288/day cheaper than Modal's, but its
    # overflow costs 0.00116 - 0.001097 = $0.000063/s more. Per hour with n > 3,600 requests, overflow is
    # n - 3,600 busy s plus 310 s (idle + cold) per extra container; equal when
    # 24 * ((n - 3600) + 310 * 3) * 0.000063 = 14.4288  ->  n = 12,212.857/hour = 293,108.6/day.
    work = Workload(1000, 1.0, traffic_profile("steady"), keep_warm=1, idle_timeout=300, concurrency=1)
    points = break_evens(BOOK, [("modal", "H100"), ("runpod", "H100")], work, {"modal": 10, "runpod": 10})
    assert len(points) == 1
    assert points[0].requests_per_day == pytest.approx(293_108.6, rel=1e-3)
    assert (points[0].cheaper_below, points[0].cheaper_above) == ("runpod", "modal")


def test_profiles_and_stale_prices() -> None:
    assert sum(traffic_profile("business-hours")) == pytest.approx(1) and traffic_profile("business-hours")[9] == 1 / 8
    assert traffic_profile(weights=[2.0] + [0.0] * 23)[0] == 1.0
    with pytest.raises(ValueError, match="24 non-negative numbers"):
        traffic_profile(weights=[1.0] * 23)
    warnings = BOOK.stale(date(2025, 7, 1), 180)
    assert warnings == []
    assert len(BOOK.stale(date(2026, 11, 23), 180)) == 3


def test_cli_table_json_and_plot(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["cost", TEXT.ref, "--requests-per-day", "1000", "--seconds-per-request", "2", "--traffic", "business-hours"]
    table = runner.invoke(main, args)
    assert table.exit_code == 0, table.output
    assert "1,000 requests/day x 2 s, business-hours traffic" in table.stdout
    assert "runpod is cheapest at $" in table.stdout
    report = json.loads(runner.invoke(main, [*args, "--json", "--months", "3"]).stdout)
    gpus = {row["provider"]: row["gpu"] for row in report["estimates"]}
    assert gpus == {
        "modal": "A10",
        "runpod": "L4",
        "replicate": "L40S",
    }  # each provider's first GPU from the fallback list
    modal = report["estimates"][0]
    assert modal["cost_total"] == pytest.approx(3 * modal["cost_per_month"])
    assert report["workload"]["idle_timeout"] == 300 and report["prices"]["sources"]["modal"]["read_on"] == "2025-06-01"
    missing = json.loads(
        runner.invoke(
            main, ["cost", "--gpu", "L4", "--requests-per-day", "10", "--seconds-per-request", "1", "--json"]
        ).stdout
    )
    assert [r["offered"] for r in missing["estimates"]] == [True, True, False]
    png = tmp_path / "cost.png"
    plotted = runner.invoke(
        main,
        [
            "cost",
            "--gpu",
            "H100",
            "--requests-per-day",
            "1000",
            "--seconds-per-request",
            "1",
            "--keep-warm",
            "1",
            "--plot",
            str(png),
        ],
    )
    assert plotted.exit_code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = runner.invoke(
        main,
        [
            "cost",
            "--gpu",
            "H100",
            "--requests-per-day",
            "1",
            "--seconds-per-request",
            "1",
            "--cold-start-seconds",
            "aws=3",
        ],
    )
    assert bad.exit_code == 2 and "write PROVIDER=SECONDS" in bad.stderr
