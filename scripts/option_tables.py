"""Rewrite the option tables in docs/targets/*.md from the targets' own declarations.

Run: .venv/bin/python scripts/option_tables.py   (tests/unit/test_options.py fails while a table is stale)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gpuserve.adapters.table import DOCS_BEGIN, DOCS_END, markdown, option_table  # noqa: E402
from gpuserve.loader import load_app  # noqa: E402

EXAMPLE = "examples/text-generation/app.py"
DOCS = {
    "docker": "docker.md",
    "runpod": "runpod.md",
    "cog": "replicate.md",
    "modal": "modal.md",
    "kubernetes": "kubernetes.md",
    "skypilot": "skypilot.md",
}


def with_table(text: str, target: str) -> str:
    """The document with the text between its markers replaced by the target's table for the example."""
    head, begin, rest = text.partition(DOCS_BEGIN)
    _, end, tail = rest.partition(DOCS_END)
    if not begin or not end:
        raise SystemExit(f"no option table markers in the {target} doc")
    table = markdown(option_table(load_app(str(ROOT / EXAMPLE)), target))
    return f"{head}{DOCS_BEGIN}\n{table}{DOCS_END}{tail}"


def main() -> None:
    for target, name in DOCS.items():
        path = ROOT / "docs" / "targets" / name
        path.write_text(with_table(path.read_text(), target))


if __name__ == "__main__":
    main()
