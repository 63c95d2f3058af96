"""Import a model that already runs on another platform: a gpuserve app that wraps its code unchanged.

`import_cog(DIR)` reads cog.yaml and its runner (or older predictor); `import_runpod(handler.py)` reads a RunPod
worker and its Dockerfile. Both read the user's files with `ast` and yaml only (nothing of theirs runs here)
and return the app's text with the report of what was decided and what could not be carried over, which is
also written as comments at the top of the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .pysource import ImportFailed
from .report import Report
from .writer import AppPlan, render, write

__all__ = ["ImportFailed", "Imported", "import_cog", "import_runpod"]


@dataclass(frozen=True)
class Imported:
    """A generated app: where it goes, its text, and what the import decided and could not carry."""

    path: Path
    text: str
    report: Report

    def write(self, *, force: bool = False) -> Path:
        """Write the app; an existing file is replaced only when gpuserve import wrote it, or with force."""
        write(self.path, self.text, force=force)
        return self.path


def import_cog(
    directory: str | Path, *, out: Path | None = None, gpu: str | None = None, name: str | None = None
) -> Imported:
    """The app for the cog project in `directory` (cog.yaml and the class its `run:` or `predict:` names)."""
    from .cog import plan_cog

    return _done(plan_cog(Path(directory), out=out, gpu=gpu, name=name))


def import_runpod(
    handler: str | Path,
    *,
    dockerfile: Path | None = None,
    out: Path | None = None,
    gpu: str | None = None,
    name: str | None = None,
) -> Imported:
    """The app for the RunPod worker whose handler is in `handler` (and the Dockerfile beside it, or `dockerfile`)."""
    from .runpod import plan_runpod

    return _done(plan_runpod(Path(handler), dockerfile=dockerfile, out=out, gpu=gpu, name=name))


def _done(plan: AppPlan) -> Imported:
    return Imported(plan.out, render(plan), plan.report)
