"""`--plot`: simulated monthly cost against requests per day with break-even points, and each provider's waits."""

from __future__ import annotations

from pathlib import Path

from ..errors import GpuserveError
from .compare import Estimate
from .sweep import BreakEven, Level


def plot_costs(
    path: Path, *, levels: list[Level], points: list[BreakEven], estimates: list[Estimate], traffic: float, title: str
) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GpuserveError("--plot needs matplotlib: pip install 'gpuserve[cost]'") from None
    figure, (costs, waits) = plt.subplots(1, 2, figsize=(12, 5))
    for e in estimates:
        if not e.priced:
            continue
        kept = [(lv.requests_per_day, lv.cost_per_month[e.provider]) for lv in levels]
        xs = [x for x, y in kept if y is not None]
        costs.plot(xs, [y for _, y in kept if y is not None], marker=".", label=f"{e.provider} ({e.gpu})")
    for point in points:
        costs.scatter([point.requests_per_day], [point.cost_per_month], color="black", zorder=3)
        costs.annotate(
            f"{point.cheaper_below}|{point.cheaper_above}\n{point.requests_per_day:,.0f}/day",
            (point.requests_per_day, point.cost_per_month),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=7,
        )
    costs.axvline(traffic, color="grey", linestyle=":", label="your traffic")
    costs.set(xscale="log", yscale="log", xlabel="requests per day", ylabel="USD per month (simulated)")
    costs.grid(True, which="both", alpha=0.3)
    costs.legend()
    for e in estimates:
        if e.run is None or not e.run.requests:
            continue
        run = e.run
        zeros = run.requests - len(run.waits_s)
        xs = [0.0, *run.waits_s]
        ys = [zeros / run.requests, *((zeros + i + 1) / run.requests for i in range(len(run.waits_s)))]
        waits.step(xs, ys, where="post", label=f"{e.provider} (p95 {run.wait_percentile(95):.1f} s)")
    waits.set(xlabel="wait before a request starts: queue plus cold start (s)", ylabel="share of requests", ylim=(0, 1))
    waits.set_xscale("symlog", linthresh=1.0)
    waits.grid(True, alpha=0.3)
    waits.legend()
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
