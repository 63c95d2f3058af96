"""The bench scripts run, on a tiny load: every row measured, every server answering (a benchmark is not a test)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("[!_]*.py"))


def run_quick(script: str, tmp_path: Path) -> tuple[str, object]:
    """Run `script --quick --json FILE`: its printed table and its results."""
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout, json.loads(out.read_text())


def test_every_bench_script_is_run_by_this_file() -> None:
    assert {"serving.py", "handlers.py", "coldstart.py", "instructions.py"} <= set(SCRIPTS)


def test_serving_measures_every_server_at_every_connection_count(tmp_path: Path) -> None:
    table, results = run_quick("serving.py", tmp_path)
    assert isinstance(results, list)
    servers = {"raw ASGI (ceiling)", "FastAPI", "gpuserve", "LitServe", "FastAPI sync", "gpuserve sync"}
    assert {(r["server"], r["connections"]) for r in results} == {(s, n) for s in servers for n in (1, 16, 64)}
    assert all(r["rps"] > 0 and r["errors"] == 0 for r in results), results
    assert "vs FastAPI" in table and "middle half of rounds" in table and "95% interval of the median" in table


def test_handlers_measure_runpod_and_cog_against_hand_written(tmp_path: Path) -> None:
    table, results = run_quick("handlers.py", tmp_path)
    assert isinstance(results, list)
    assert {r["case"].split()[0] for r in results} == {"RunPod", "cog"} and len(results) == 9
    assert {r["case"] for r in results} >= {"RunPod hand-written again (A/A)", "cog hand-written again (A/A)"}
    assert all(r["good_rps"] > 0 for r in results), results
    assert "time vs hand-written" in table and "middle half of rounds" in table
    assert "95% interval of the median" in table
    assert "µs inside handler or run()" in table and all(r["inside_us"] > 0 for r in results), results
    assert all(len(r["time_ratios"]) == 1 for r in results), results  # --quick: one round


@pytest.mark.skipif(shutil.which("vgdb") is None, reason="valgrind is not installed (Debian's package valgrind)")
def test_instructions_are_counted_for_every_row_and_compared_with_the_hand_written_of_its_kind(
    tmp_path: Path,
) -> None:
    table, results = run_quick("instructions.py", tmp_path)
    assert isinstance(results, list)
    assert {r["case"].split()[0] for r in results} == {"RunPod", "cog", "FastAPI", "gpuserve"} and len(results) == 20
    assert {r["connections"] for r in results} == {1, 64}
    # --quick: 20 jobs, or one on each of 64 connections; a no-op job or request is 400k-1M instructions here
    assert all(r["jobs"] == max(20, r["connections"]) and r["per_job"] > 100_000 for r in results), results
    likes = {r["case"]: r["like"] for r in results}
    assert likes["RunPod gpuserve (sync predict)"] == "RunPod hand-written, sync handler"
    assert likes["cog gpuserve (async predict)"] == "cog hand-written, async run()"
    assert likes["gpuserve serve (sync predict), 64 conn."] == "FastAPI hand-written, sync endpoint, 64 conn."
    assert "instructions per job" in table and "vs hand-written of its kind" in table


def test_middle_half_of_the_rounds_ratios_is_their_first_to_third_quartile() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from _harness import middle_half
    finally:
        sys.path.remove(str(BENCH))
    assert middle_half([1.3, 0.9, 1.0, 1.1, 0.8]) == "0.90x-1.10x"
    assert (middle_half([1.04]), middle_half([])) == ("1.04x", "-")


def test_median_interval_is_the_sign_tests_order_statistics_and_needs_six_rounds() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from _harness import median_interval
    finally:
        sys.path.remove(str(BENCH))
    # 31 rounds: the 10th smallest and the 10th largest (P(Binomial(31, 1/2) < 10) = 0.015, < 11: 0.035)
    assert median_interval([round(1 + i / 100, 2) for i in reversed(range(31))]) == "1.09x-1.21x"
    assert median_interval([1.3, 0.9, 1.0, 1.1, 0.8, 1.2]) == "0.80x-1.30x"  # 6 rounds: 1 - 2/64 >= 0.95
    assert median_interval([1.3, 0.9, 1.0, 1.1, 0.8]) == "-"  # 5 rounds: 1 - 2/32 < 0.95


def test_time_inside_is_the_calls_median_and_the_later_work_spread_over_each_processs_jobs(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from handlers import read_inside
    finally:
        sys.path.remove(str(BENCH))
    inside = tmp_path / "inside.txt"
    inside.write_text("2.0\n6.0\n4.0\n")
    assert read_inside(inside) == 4.0
    # two processes: 30 µs of later work over 100 + 50 jobs (each process's last count of calls timed)
    (tmp_path / "inside.txt.later").write_text("11 10.0 60\n11 10.0 100\n12 10.0 50\n")
    assert read_inside(inside) == pytest.approx(4.2)


def test_coldstart_times_every_start_and_the_imports(tmp_path: Path) -> None:
    table, results = run_quick("coldstart.py", tmp_path)
    assert isinstance(results, dict)
    assert len(results["starts"]) == 5 and all(s[0] > 0 for s in results["starts"].values())
    assert len(results["imports_s"]) == 4 and all(s > 0 for s in results["imports_s"].values())
    assert "from gpuserve import model" in table


OWN_TESTS = {"serving.py", "handlers.py", "coldstart.py", "instructions.py"}


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s not in OWN_TESTS])
def test_other_bench_scripts_run_quick(script: str, tmp_path: Path) -> None:
    """Scripts others add (bench/batching.py) take --quick and --json too."""
    run_quick(script, tmp_path)
