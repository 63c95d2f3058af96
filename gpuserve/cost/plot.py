"""`--plot`: monthly cost against requests per day for each provider, break-even points marked."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import GpuserveError
from .compare import BreakEven
from .model import Workload, estimate
from .prices import PriceBook


def plot_costs(
    path: Path,
    book: PriceBook,
    providers: list[tuple[str, str]],
    work: Workload,
    cold: dict[str, float],
    points: list[BreakEven],
) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GpuserveError("--plot needs matplotlib: pip install 'gpuserve[cost]'") from None
    grid = [10 ** (i / 20) for i in range(0, 141)]  # 1 to 10^7 requests per day
    figure, axes = plt.subplots(figsize=(8, 5))
    for provider, gpu in providers:
        costs = [
            estimate(book, provider, gpu, replace(work, requests_per_day=r), cold.get(provider)).cost_per_month
            for r in grid
        ]
        axes.plot(grid, costs, label=f"{provider} ({gpu})")
    for point in points:
        axes.scatter([point.requests_per_day], [point.cost_per_month], color="black", zorder=3)
        axes.annotate(
            f"{point.cheaper_below}|{point.cheaper_above}\n{point.requests_per_day:,.0f}/day",
            (point.requests_per_day, point.cost_per_month),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=7,
        )
    axes.axvline(work.requests_per_day, color="grey", linestyle=":", label="your traffic")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("requests per day")
    axes.set_ylabel("USD per month")
    axes.set_title(
        f"{work.seconds_per_request:g} s per request, keep_warm={work.keep_warm}, idle_timeout={work.idle_timeout:g} s"
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
