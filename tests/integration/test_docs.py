"""Docs that run: every Python block and every offline `gpuserve ...` line in README.md and docs/**/*.md.

The way LitServe's test_readme.py and typer's docs_src tests keep docs honest: the fenced blocks are read
from the markdown and run, one temporary directory per markdown file, blocks in the order they appear.

What runs
- A ```python block runs as a script (`python BLOCK.py`) in the file's directory.
- In a ```bash / ```sh / ```shell / ```console block, each line that starts with `gpuserve` runs (up to the
  first `&&`, `||`, `;` or `|`: the rest is another program), and must exit 0. Lines that start with another
  program (pip, docker, curl, modal, cog, python, make, cd) are not run: they need the network, Docker, a
  platform account or a shell of their own. Of the gpuserve commands, `serve` (a server that does not
  return) is not run: SKIPPED_COMMANDS below. `deploy` runs: in the docs it is `--dry-run` (offline), and
  real deploys sit in blocks marked skip.
- Other blocks (json, output shown as plain text) are read, not run.

Where it runs
- A fresh temporary directory per markdown file, holding `examples` (a link to the repository's
  examples), so relative paths in the docs are relative to the repository root. `cd` is not followed.
- The environment has HF_HUB_OFFLINE=1 and MODEL_ID pointing at the tiny local GPT-2 the tests build
  (tests/conftest.py `tiny_gpt2`): nothing is downloaded.

What a block needs around it: an HTML comment on the line(s) right before the fence (blank lines
between are fine), unseen when the markdown renders:

    <!-- docs-test: file app.py -->                           write the block to app.py (and run it, if Python)
    <!-- docs-test: copy examples/hello/app.py app.py -->     copy a repository file into the directory first
    <!-- docs-test: same-as examples/hello/app.py -->         the block must equal that file, byte for byte
    <!-- docs-test: skip why it cannot run here -->           do not run the block (say why)

Several directives go in one comment separated by `;`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
SHELLS = {"bash", "sh", "shell", "console"}
# `deploy` runs: with --dry-run it prints its plan offline and exits 0 whatever is missing; a real deploy line
# goes in a block marked `docs-test: skip` (it needs a platform account and the network).
SKIPPED_COMMANDS = {
    "serve": "starts a server that runs until stopped (the integration tests serve every example)",
}
OPERATORS = {"&&", "||", ";", "|", "&"}
DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:(.*?)-->\s*$")  # a comment alone on its line
FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)")
TIMEOUT_S = 300


@dataclass
class Block:
    """One fenced block: where it starts (1-based line of the fence), its language, text and directives."""

    line: int
    language: str
    text: str
    directives: list[tuple[str, str]] = field(default_factory=list)


def read_blocks(markdown: str) -> list[Block]:
    """The fenced blocks of markdown, each with the docs-test directives written right before it."""
    lines = markdown.splitlines(keepends=True)
    blocks: list[Block] = []
    pending: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            comment = DIRECTIVE.match(lines[i])
            if comment is not None:
                pending += parse_directives(comment.group(1))
            elif lines[i].strip():
                pending = []  # a directive belongs to the block right after it, nothing further
            i += 1
            continue
        fence, language, start = opening.group(1), opening.group(2).lower(), i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        blocks.append(Block(line=start + 1, language=language, text="".join(body), directives=pending))
        pending = []
        i += 1
    return blocks


def parse_directives(text: str) -> list[tuple[str, str]]:
    """'file app.py; copy a b' -> [("file", "app.py"), ("copy", "a b")]."""
    found = []
    for part in text.split(";"):
        name, _, argument = part.strip().partition(" ")
        if name:
            if name not in ("file", "copy", "same-as", "skip"):
                raise ValueError(f"unknown docs-test directive {name!r}: use file, copy, same-as or skip")
            found.append((name, argument.strip()))
    return found


def gpuserve_commands(script: str) -> list[tuple[int, list[str]]]:
    """(line offset, argv) for each line of a shell block that runs gpuserve and is not in SKIPPED_COMMANDS."""
    commands = []
    logical: list[tuple[int, str]] = []  # (offset of the first physical line, the line with continuations joined)
    for offset, physical in enumerate(script.splitlines()):
        if logical and logical[-1][1].endswith("\\"):
            logical[-1] = (logical[-1][0], logical[-1][1][:-1] + " " + physical)
        else:
            logical.append((offset, physical))
    for offset, line in logical:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        if words[:1] != ["gpuserve"]:
            continue
        cut = next((k for k, word in enumerate(words) if word in OPERATORS), len(words))
        argv = words[:cut]
        if len(argv) > 1 and argv[1] in SKIPPED_COMMANDS:
            continue
        commands.append((offset, argv))
    return commands


def run_doc(doc: Path, work: Path, env: dict[str, str]) -> list[str]:
    """Run doc's blocks in work; a description of each failure."""
    failures: list[str] = []
    name = doc.relative_to(ROOT)
    for block in read_blocks(doc.read_text(encoding="utf-8")):
        where = f"{name}:{block.line}"
        if any(directive == "skip" for directive, _ in block.directives):
            continue
        target: Path | None = None
        for directive, argument in block.directives:
            if directive == "copy":
                source, destination = shlex.split(argument)
                shutil.copyfile(ROOT / source, work / destination)
            elif directive == "file":
                target = work / argument
                target.write_text(block.text, encoding="utf-8")
            elif directive == "same-as" and (ROOT / argument).read_text(encoding="utf-8") != block.text:
                failures.append(f"{where}: the block differs from {argument}; paste the file in again")
        if block.language == "python":
            script = target or work / f"docs_block_{block.line}.py"
            script.write_text(block.text, encoding="utf-8")
            failures += check(where, [sys.executable, str(script)], work, env)
        elif block.language in SHELLS:
            for offset, argv in gpuserve_commands(block.text):
                command = [sys.executable, "-m", "gpuserve.cli", *argv[1:]]
                failures += check(f"{name}:{block.line + offset + 1}: {shlex.join(argv)}", command, work, env)
    return failures


def check(where: str, command: list[str], work: Path, env: dict[str, str]) -> list[str]:
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    if result.returncode == 0:
        return []
    return [f"{where}\n  exit status {result.returncode}\n  {result.stderr.strip()[-2000:]}"]


@pytest.fixture(scope="module")
def docs_env(tiny_gpt2: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MODEL_ID": str(tiny_gpt2),
        "MPLBACKEND": "Agg",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_the_docs_run(doc: Path, tmp_path: Path, docs_env: dict[str, str]) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    failures = run_doc(doc, tmp_path, docs_env)
    assert not failures, "\n\n".join(failures)


def test_reading_blocks_directives_and_commands() -> None:
    markdown = (
        "text\n"
        "<!-- docs-test: copy examples/hello/app.py app.py; file b.py -->\n"
        "\n"
        "```python\nprint(1)\n```\n"
        "<!-- docs-test: skip needs a GPU -->\n"
        "Some words.\n"
        "```bash\n"
        "pip install x\n"
        "gpuserve serve app.py --port 8000\n"
        "gpuserve run app.py --input '{\"a\": 1}'   # a comment\n"
        "gpuserve build app.py \\\n  --target all && docker build .\n"
        "```\n"
    )
    first, second = read_blocks(markdown)
    assert (first.line, first.language, first.text) == (4, "python", "print(1)\n")
    assert first.directives == [("copy", "examples/hello/app.py app.py"), ("file", "b.py")]
    assert second.directives == []  # words between a directive and a fence cancel it
    assert gpuserve_commands(second.text) == [
        (2, ["gpuserve", "run", "app.py", "--input", '{"a": 1}']),
        (3, ["gpuserve", "build", "app.py", "--target", "all"]),
    ]
