"""The report of a run, with rich: inputs by target (pass or fail, latency), the differences, the time per target."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .compare import Outcome
from .session import Cell, Column, Report

STYLES = {"pass": "green", "fail": "bold red", "known": "yellow"}
LOG_LINES_SHOWN = 12


def latency(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def render(report: Report, console: Console) -> None:
    if report.drift:
        console.print(
            "[yellow]This environment does not have the versions the image pins, so an answer may differ for that "
            "reason alone (install the pins here to compare like with like):[/yellow]",
            *(f"  - {escape(line)}" for line in report.drift),
            sep="\n",
        )
    console.print(matrix(report))
    found = differences(report)
    if found.row_count:
        console.print(found)
    console.print(timings(report))
    checks = sum(len(column.cells) for column in report.columns)
    known = sum(1 for column in report.columns for cell in column.cells if cell.status == "known")
    if report.ok:
        note = f" ({known} known platform difference{'s' if known != 1 else ''}, listed above)" if known else ""
        console.print(f"[green]all {checks} checks match the in-process answers[/green]{note}")
    else:
        console.print(f"[bold red]{report.differences} differences[/bold red] from the in-process answers")


def matrix(report: Report) -> Table:
    table = Table(title=f"gpuserve test {report.app}: each input on each target", title_justify="left")
    table.add_column("input", overflow="fold")
    table.add_column("in-process")
    for column in report.columns:
        table.add_column(column.name)
    for index, case in enumerate(report.cases):
        cells = [_cell_text(column, index) for column in report.columns]
        table.add_row(Text(case.label), _reference_text(report.reference[index]), *cells)
    return table


def differences(report: Report) -> Table:
    """Each difference, a row: where, which input, and the first thing that differs."""
    table = Table(title="differences", title_justify="left")
    table.add_column("target")
    table.add_column("input", overflow="fold")
    table.add_column("first difference", overflow="fold")
    for column in report.columns:
        if column.error:
            lines = column.error.splitlines()
            shown = "\n".join(lines[:1] + lines[1:][-LOG_LINES_SHOWN:])
            table.add_row(column.name, "(all)", Text(f"could not run: {shown}", style=STYLES["fail"]))
            continue
        for case, cell in zip(report.cases, column.cells, strict=False):
            if cell.difference is None:
                continue
            text = Text(cell.difference, style=STYLES[cell.status])
            if cell.known:
                text.append(f"\nknown: {cell.known}", style="dim")
            table.add_row(column.name, Text(case.label), text)
    return table


def timings(report: Report) -> Table:
    table = Table(title="time per target (seconds)", title_justify="left")
    for name in ("target", "build", "venv", "start", "calls", "total"):
        table.add_column(name, justify="left" if name == "target" else "right")
    for timing in report.timings:
        phases = (timing.build, timing.venv, timing.start, timing.calls, timing.total)
        table.add_row(timing.target, *(f"{seconds:.2f}" for seconds in phases))
    return table


def _cell_text(column: Column, index: int) -> Text:
    if column.error or index >= len(column.cells):
        return Text("not run", style=STYLES["fail"])
    cell: Cell = column.cells[index]
    return Text(f"{cell.status} {latency(cell.outcome.seconds)}", style=STYLES[cell.status])


def _reference_text(outcome: Outcome) -> Text:
    return Text(f"{outcome.kind} {latency(outcome.seconds)}", style="dim" if outcome.kind != "output" else "")
