"""`gpuserve eject`: each ejected directory runs with gpuserve absent and answers as the gpuserve build does.

Each directory is written outside the repository and run by its platform's local runtime in a virtualenv of its
own requirements.txt (no gpuserve there, no PYTHONPATH): RunPod's local API, cog's server, Modal's `.local()`,
uvicorn. The answers are compared with what gpuserve's own server gives for the same input (which every gpuserve
build is tested to give). The rewrite of the user's module is checked here too: what goes, what stays, what is
translated and what is refused.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gpuserve.adapters._common import PINS
from gpuserve.eject import eject
from gpuserve.eject.source import references
from gpuserve.errors import BuildError
from gpuserve.loader import load_app
from tests.apps import ASYNC, BATCHED, FAULTY, HELLO, STREAM, TEXT, Case
from tests.proc import free_port, started, wait_until
from tests.venvs import python_of, requirement_lines, venv_for

LocalOutput = Callable[[Case], Any]
TARGETS = ("runpod", "cog", "modal", "docker")
LOCAL_RUNTIME = {"modal": [f"modal=={PINS['modal']}"], "cog": [f"cog=={PINS['cog']}"]}


def ejected(case: Case, target: str, tmp_path: Path) -> tuple[Path, Path]:
    """The ejected directory (outside the repo) and a virtualenv of its requirements, with gpuserve absent."""
    directory = eject(load_app(case.ref), target, tmp_path / f"{case.key}-{target}").directory
    venv = venv_for(requirement_lines(directory / "requirements.txt") + LOCAL_RUNTIME.get(target, []))
    absent = subprocess.run([python_of(venv), "-c", "import gpuserve"], capture_output=True, cwd=directory, env=bare())
    assert absent.returncode != 0 and b"No module named 'gpuserve'" in absent.stderr
    return directory, venv


def bare(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the ejected code runs with: nothing that could lead to the repository."""
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR", "HF_HUB_OFFLINE")}
    return keep | {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"} | (extra or {})


def assert_no_trace(directory: Path, case_ref: str) -> None:
    """No file imports or names gpuserve; the word appears only where the user wrote it (comments, descriptions)."""
    source = Path(case_ref.split(":")[0])
    theirs = [
        node.value
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "gpuserve" in node.value
    ]
    for path in directory.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text()
        if path.suffix == ".py":
            assert list(references(text)) == [], path
        if path.name != source.name:
            for string in theirs:
                text = text.replace(string, "").replace(json.dumps(string)[1:-1], "")
            assert "gpuserve" not in text.lower(), path


@contextmanager
def serving(command: list[str], directory: Path, env: dict[str, str], ready: str) -> Iterator[httpx.Client]:
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    with (
        started(argv, directory, bare(env | {"PORT": str(port)})) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
    ):
        wait_until(lambda: client.get(ready).status_code == 200, 90, f"{argv[1:3]} ready", proc)
        yield client


def answers(case: Case, target: str, directory: Path, venv: Path, env: dict[str, str]) -> tuple[Any, str]:
    """(the output for case.good, the refusal for case.bad) from the ejected directory's local runtime."""
    python = python_of(venv)
    if target == "runpod":
        command = [python, "handler.py", "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", "{port}"]
        with serving(command, directory, env, "/openapi.json") as client:
            good = client.post("/runsync", json={"input": case.good}).json()
            bad = client.post("/runsync", json={"input": case.bad}).json()
        assert good["status"] == "COMPLETED", good
        refusal = bad["output"][0]["error"] if case.streaming else bad["error"]  # a generator's chunks, aggregated
        return good["output"], refusal
    if target == "cog":
        command = [python, "-m", "cog.server.http", "--host", "127.0.0.1"]
        stub = {"COG_PREDICT_TYPE_STUB": "runner.py:Runner", "PATH": f"{venv / 'bin'}:/usr/bin:/bin"}
        with serving(command, directory, env | stub, "/health-check") as client:
            wait_until(lambda: client.get("/health-check").json()["status"] == "READY", 60, "cog READY")
            good = client.post("/predictions", json={"input": case.good}).json()
            bad = client.post("/predictions", json={"input": case.bad})
        assert good["status"] == "succeeded", good
        assert bad.status_code == 422, bad.text  # cog's own check, from .cog/openapi_schema.json
        return good["output"], json.dumps(bad.json()["detail"])
    if target == "modal":
        driver = directory.parent / "driver.py"
        driver.write_text(MODAL_DRIVER)
        good_run, bad_run = (
            subprocess.run(
                [python, str(driver), case.ref.rsplit(":", 1)[1], json.dumps(value)],
                cwd=directory,
                env=bare(env),
                capture_output=True,
                text=True,
                timeout=120,
            )
            for value in (case.good, case.bad)
        )
        assert good_run.returncode == 0, good_run.stdout + good_run.stderr
        assert bad_run.returncode == 3, bad_run.stdout + bad_run.stderr
        return json.loads(good_run.stdout.splitlines()[-1]), bad_run.stdout
    command = [python, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", "{port}"]
    with serving(command, directory, env, "/health") as client:
        good = client.post("/predict", json={"input": case.good})
        bad = client.post("/predict", json={"input": case.bad})
        if case.streaming:
            events = client.post("/predict", json={"input": case.good}, headers={"Accept": "text/event-stream"})
            chunks = [json.loads(line[6:]) for line in events.text.splitlines() if line.startswith("data: ")]
            assert chunks[:-1] == good.json()["output"] and "event: done" in events.text
    assert good.status_code == 200 and bad.status_code == 422, bad.text
    return good.json()["output"], bad.json()["error"]["message"]


# Calls the class's predict with .local() (no token), as a Modal caller would with .remote(); prints the answer.
MODAL_DRIVER = """\
import asyncio, inspect, json, sys
sys.path.insert(0, ".")
import modal_app


async def collect(value):
    if inspect.isawaitable(value):
        value = await value
    if hasattr(value, "__aiter__"):
        return [item async for item in value]
    return list(value) if hasattr(value, "__next__") else value


try:
    method = getattr(modal_app, sys.argv[1])().predict
    print(json.dumps(asyncio.run(collect(method.local(**json.loads(sys.argv[2]))))))
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}")
    sys.exit(3)
"""
# More predict forms, `make test-full` only. Not ASYNC on modal: its setup() is async, so the Modal class's
# @modal.enter hook is too, and modal 1.6's .local() calls enter hooks without awaiting them (modal/cls.py,
# _Obj._enter); a container awaits them.
MORE = [
    pytest.param(case, target, marks=pytest.mark.full, id=f"{case.key}-{target}")
    for case, targets in (
        (ASYNC, ("runpod", "cog", "docker")),
        (BATCHED, TARGETS),
        (FAULTY, TARGETS),
        (TEXT, ("cog", "docker")),
    )
    for target in targets
]


@pytest.mark.parametrize(
    ("case", "target"),
    [pytest.param(case, target, id=f"{case.key}-{target}") for case in (HELLO, STREAM) for target in TARGETS] + MORE,
)
def test_ejected_directory_answers_like_the_gpuserve_build_without_gpuserve(
    case: Case, target: str, tmp_path: Path, local_output: LocalOutput, case_env: Callable[[Case], dict[str, str]]
) -> None:
    directory, venv = ejected(case, target, tmp_path)
    assert_no_trace(directory, case.ref)
    output, refusal = answers(case, target, directory, venv, case_env(case))
    assert output == local_output(case)
    if case.expected is not None:
        assert output == case.expected
    assert case.bad_field in refusal, refusal


# The rewrite of the user's module ---------------------------------------------------------------------------

MODEL = '''\
"""A model that uses gpuserve in the ways a team would."""

import os
import gpuserve
from pydantic import BaseModel, Field

image = gpuserve.Image(python="3.11").pip_install("pydantic==2.14.3")  # the image: only the decorator reads it
weights = gpuserve.HuggingFace("acme/tiny", revision="abc123", allow_patterns=["*.json"])
GREETING = "hi"  # kept: predict reads it


class Item(BaseModel):
    text: str = Field(min_length=1)


@gpuserve.model(
    name="rewritten",
    image=image,
    weights=[weights, gpuserve.Local("data")],
    batch=gpuserve.Batch(max_size=4),  # a comment inside the decorator goes with it
)
class Rewritten:
    # a comment in the class stays
    def setup(self) -> None:
        self.folder = gpuserve.weights_path(weights)
        self.local = gpuserve.weights_path("data")

    def predict(self, items: list[Item]) -> list[str | gpuserve.ItemError]:
        image = os.environ.get("IMAGE", GREETING)  # a local named like the removed setting
        return [gpuserve.ItemError("no") if i.text == "x" else f"{image} {i.text}" for i in items]
'''

EXPECTED = '''\
"""A model that uses gpuserve in the ways a team would."""

import os
from pydantic import BaseModel, Field

from pathlib import Path


class ItemError(Exception):
    """Returned by predict in an item's place: that request fails with this message."""


def weights_path(source: str) -> Path:
    """Where a weight source is on disk, fetched on first use (Hugging Face sources through its cache)."""
    if source == 'acme/tiny':
        from huggingface_hub import snapshot_download

        return Path(snapshot_download('acme/tiny', revision='abc123', allow_patterns=['*.json']))
    if source == 'data':
        return Path(__file__).resolve().parent / 'data'
    raise KeyError(f"no weight source {source!r}; the declared ones are: acme/tiny, data")


GREETING = "hi"  # kept: predict reads it


class Item(BaseModel):
    text: str = Field(min_length=1)


class Rewritten:
    # a comment in the class stays
    def setup(self) -> None:
        self.folder = weights_path('acme/tiny')
        self.local = weights_path('data')

    def predict(self, items: list[Item]) -> list[str | ItemError]:
        image = os.environ.get("IMAGE", GREETING)  # a local named like the removed setting
        return [ItemError("no") if i.text == "x" else f"{image} {i.text}" for i in items]
'''


def write_app(tmp_path: Path, source: str, name: str = "model.py") -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    (path.parent / "data").mkdir(exist_ok=True)
    (path.parent / "data" / "vocab.txt").write_text("a\n")
    return path


def test_the_rewrite_removes_gpuserve_translates_weights_and_item_errors_and_keeps_the_rest(tmp_path: Path) -> None:
    path = write_app(tmp_path, MODEL)
    result = eject(load_app(str(path)), "docker", tmp_path / "out")
    assert (result.directory / "model.py").read_text() == EXPECTED
    assert (result.directory / "data" / "vocab.txt").read_text() == "a\n"  # Local weights travel with the code
    assert "huggingface_hub==" in (result.directory / "requirements.txt").read_text()
    assert any(note.startswith("batching (max_size=4") for note in result.notes)
    main = (result.directory / "main.py").read_text()
    assert "output = model.predict([inp])[0]" in main and "from model import Item, Rewritten" in main
    ast.parse(main)


@pytest.mark.parametrize(
    ("source", "says"),
    [
        (
            "import gpuserve\n\n@gpuserve.model\nclass M:\n    def predict(self, f: gpuserve.File) -> str:\n"
            "        return 'x'\n",
            "model.py:5='gpuserve.File': the ejected code cannot use it: files are fetched",
        ),
        (
            "import gpuserve\nW = gpuserve.URL('https://example.com/w.bin')\n\n@gpuserve.model(weights=[W])\n"
            "class M:\n    def setup(self) -> None:\n        self.w = gpuserve.weights_path(W)\n\n"
            "    def predict(self, x: int) -> int:\n        return x\n",
            "model.py:7='gpuserve.weights_path': the ejected code cannot use it: URL weights are downloaded and their "
            "sha256 checked",
        ),
        (
            "import gpuserve\nLIMITS = gpuserve.Limits(max_body_bytes=4096)\n\n@gpuserve.model(limits=LIMITS)\n"
            "class M:\n    def predict(self, x: int) -> int:\n        return x + LIMITS.max_body_bytes\n",
            "model.py:2='gpuserve.Limits': the ejected code cannot use it: it belongs to gpuserve",
        ),
    ],
    ids=["file", "url-weights", "settings-read-at-run-time"],
)
def test_what_plain_code_cannot_do_is_refused_with_the_line_and_the_fix(source: str, says: str, tmp_path: Path) -> None:
    path = write_app(tmp_path, source)
    with pytest.raises(BuildError) as refused:
        eject(load_app(str(path)), "runpod", tmp_path / "out")
    assert says in str(refused.value) and "Fix: " in str(refused.value)
    assert not (tmp_path / "out").exists()


def test_a_directory_with_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(BuildError, match="exists and is not empty"):
        eject(load_app(HELLO.ref), "modal", tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_writes_plain_python_for_each_predict_form(target: str, tmp_path: Path) -> None:
    """Sync, async, streaming and batched models: the entry points parse, and import nothing of gpuserve."""
    for case in (HELLO, STREAM, ASYNC, BATCHED, TEXT):
        directory = eject(load_app(case.ref), target, tmp_path / case.key).directory
        assert_no_trace(directory, case.ref)
        for path in directory.rglob("*.py"):
            ast.parse(path.read_text())
