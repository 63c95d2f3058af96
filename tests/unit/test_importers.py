"""`gpuserve import`: the app written for each cog and RunPod form, read back by gpuserve's own loader.

The apps load here without cog or runpod installed: the wrapped module is imported only in setup(), which
these tests never call (tests/integration/test_import.py runs them against the originals).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gpuserve.build import build
from gpuserve.cli import ExitStatus, main
from gpuserve.errors import BuildError, SpecError
from gpuserve.importers import ImportFailed, import_cog, import_runpod
from gpuserve.importers.dockerfile import instructions, read_dockerfile
from gpuserve.importers.report import Report
from gpuserve.loader import LoadedApp, load_app

DATA = Path(__file__).resolve().parents[1] / "data" / "import"
TARGETS = ("docker", "runpod", "cog", "modal")


def project(name: str, tmp_path: Path) -> Path:
    """A copy of a test project: imports write app.py beside its code, never into the repository."""
    return Path(shutil.copytree(DATA / name, tmp_path / name))


def loaded(path: Path) -> LoadedApp:
    return load_app(str(path))


def cog_project(tmp_path: Path, runner: str, cog_yaml: str = 'run: "run.py:Runner"\n') -> Path:
    directory = tmp_path / "proj"
    directory.mkdir()
    (directory / "cog.yaml").write_text(cog_yaml)
    (directory / "run.py").write_text(runner)
    return directory


def runpod_project(tmp_path: Path, handler: str) -> Path:
    directory = tmp_path / "worker"
    directory.mkdir()
    (directory / "handler.py").write_text(handler)
    return directory / "handler.py"


def test_cog_runner_inputs_keep_every_input_constraint(tmp_path: Path) -> None:
    app = loaded(import_cog(project("cog-runner", tmp_path)).write())
    schema = app.signature.input_schema()
    props = schema["properties"]
    assert schema["required"] == ["text"]
    assert props["text"] | {"title": ""} == {
        "type": "string",
        "title": "",
        "description": "Text to transform",
        "minLength": 1,
        "maxLength": 20,
    }
    assert (props["mode"]["enum"], props["mode"]["default"]) == (["upper", "lower", "title"], "upper")
    assert (props["times"]["minimum"], props["times"]["maximum"], props["times"]["default"]) == (1, 3, 1)
    assert (props["ratio"]["minimum"], props["ratio"]["maximum"], props["ratio"]["default"]) == (0.0, 1.0, 0.5)
    assert (props["tag"]["pattern"], props["tag"]["default"]) == ("^[a-z]+$", "x")
    assert (props["level"]["enum"], props["level"]["default"]) == ([1, 2, 3], 1)
    assert props["shout"]["default"] is False
    assert props["suffix"]["anyOf"] == [{"type": "string"}, {"type": "null"}] and props["suffix"]["default"] is None
    assert list(props) == ["text", "mode", "times", "ratio", "tag", "level", "shout", "suffix"]  # cog's order
    assert set(app.signature.output_schema()["properties"]) == {"text", "length", "greeting"}


def test_cog_yaml_becomes_the_spec_and_the_rest_is_listed(tmp_path: Path) -> None:
    imported = import_cog(project("cog-runner", tmp_path))
    spec = loaded(imported.write()).spec
    assert (spec.name, spec.gpu and spec.gpu.as_strings, spec.image.python) == ("text-tool", ["L40S"], "3.11")
    assert (spec.image.pip, spec.image.apt, spec.image.env_dict) == (
        ("cog==0.23.1", "packaging==26.3"),
        ("libgl1",),
        {"GREETING": "Hello"},
    )
    [skipped] = imported.report.not_carried
    assert skipped.where == "cog.yaml build.run[0]" and skipped.value == "echo 'fetching nothing' > /tmp/build-step.txt"
    assert any(
        line.where == "cog.yaml build.gpu" and "L40S is the default" in line.why for line in imported.report.decided
    )
    header = imported.text.split('"""', 1)[0]
    assert "#   - cog.yaml build.run[0] \"echo 'fetching nothing' > /tmp/build-step.txt\": gpuserve images" in header


def test_gpu_option_names_the_gpu(tmp_path: Path) -> None:
    spec = loaded(import_cog(project("cog-runner", tmp_path), gpu="H100:2").write()).spec
    assert spec.gpu is not None and spec.gpu.as_strings == ["H100:2"]
    predictor = import_cog(project("cog-predictor", tmp_path), gpu="A100-80GB")
    assert any(line.where == "--gpu" for line in predictor.report.decided)
    with pytest.raises(SpecError, match="--gpu='K80': unknown GPU 'K80'"):
        import_cog(project("cog-stream", tmp_path), gpu="K80")


def test_older_predictor_form_with_files_in_and_out(tmp_path: Path) -> None:
    imported = import_cog(project("cog-predictor", tmp_path))
    app = loaded(imported.write())
    data = app.signature.input_schema()["properties"]["data"]
    assert (data["format"], data["description"]) == ("uri", "A text file to reverse")
    assert app.signature.output_schema() == {"type": "string", "format": "uri"}
    assert "return self.model.predict(data=data, times=times)" in imported.text
    assert app.spec.image.pip == ("cog==0.23.1", "packaging==26.3")  # from requirements.txt
    [skipped] = imported.report.not_carried
    assert skipped.where == "requirements.txt:2" and skipped.value.startswith("--extra-index-url")


def test_async_iterator_runner_streams_asynchronously(tmp_path: Path) -> None:
    app = loaded(import_cog(project("cog-stream", tmp_path)).write())
    assert (app.signature.streaming, app.signature.is_async, app.signature.output_type) == (True, True, str)
    assert (app.spec.concurrency, app.spec.image.python) == (2, "3.12")  # @concurrent(max=2); python_version


RUNNER_FORMS = """
from typing import Iterator, List, Optional
import cog
from cog import BaseRunner, ConcatenateIterator, Input, Path, Secret


class Runner(BaseRunner):
    def setup(self, weights=None):
        pass

    def run(
        self,
        key: Secret = Input(description="API key"),
        images: List[Path] = Input(description="Pictures", accept="image/*, .webp"),
        legacy: cog.File = Input(description="Old file"),
        maybe: Optional[Secret] = None,
    ) -> ConcatenateIterator[str]:
        self.record_metric("calls", 1)
        yield "x"
"""


def test_secret_file_list_and_concatenate_forms(tmp_path: Path) -> None:
    imported = import_cog(cog_project(tmp_path, RUNNER_FORMS))
    app = loaded(imported.write())
    props = app.signature.input_schema()["properties"]
    assert (props["key"]["type"], props["key"]["format"], props["key"]["writeOnly"]) == ("string", "password", True)
    assert props["images"]["items"] == {"type": "string", "format": "uri"}
    assert (app.signature.streaming, app.signature.is_async, app.signature.output_type) == (True, False, str)
    text = imported.text
    assert "from cog import Secret" in text
    assert "key=Secret(key)" in text and "maybe=None if maybe is None else Secret(maybe)" in text
    assert "legacy=io.BytesIO(legacy.read_bytes())" in text
    assert 'self.model.setup(weights=os.environ.get("COG_WEIGHTS"))' in text
    assert 'Annotated[gpuserve.File, gpuserve.FileLimits(content_types=("image/*",))]' in text
    said = {line.where: line for line in imported.report.not_carried}
    assert said["run.py images Input(accept=...)"].value == ".webp"
    assert "run.py record_metric" in said


def test_async_run_and_async_setup_are_awaited(tmp_path: Path) -> None:
    runner = (
        "from cog import BaseRunner\n\nclass Runner(BaseRunner):\n    async def setup(self) -> None:\n        pass\n\n"
        "    async def run(self, text: str) -> str:\n        return text\n"
    )
    imported = import_cog(cog_project(tmp_path, runner))
    app = loaded(imported.write())
    assert app.signature.is_async and not app.signature.streaming
    assert "await self.model.setup()" in imported.text and "return await self.model.run(text=text)" in imported.text


def test_the_users_code_is_read_never_run(tmp_path: Path) -> None:
    runner = 'raise SystemExit("ran at import")\nfrom cog import BaseRunner\n\nclass Runner(BaseRunner):\n'
    runner += "    def run(self, n: int = 1) -> int:\n        return n\n"
    app = loaded(import_cog(cog_project(tmp_path, runner)).write())
    assert app.signature.input_schema()["properties"]["n"]["default"] == 1
    handler = runpod_project(
        tmp_path,
        'raise SystemExit("ran")\nimport runpod\ndef handler(job):\n    return 1\n'
        'runpod.serverless.start({"handler": handler})\n',
    )
    assert loaded(import_runpod(handler).write()).signature.input_schema()["properties"] == {}  # reads no keys


HOSTILE = 'say """hi""" \\ {x} \'q\'\nnext line'


def test_hostile_strings_stay_inside_their_literals(tmp_path: Path) -> None:
    runner = (
        "from cog import BaseRunner, Input\n\nclass Runner(BaseRunner):\n"
        f"    def run(self, a: str = Input(default={HOSTILE!r}, description={HOSTILE!r}, choices=[{HOSTILE!r}, 'b'])"
        ") -> str:\n        return a\n"
    )
    yaml_text = 'run: "run.py:Runner"\nenvironment:\n  - "NOTE=say \\"hi\\" \'q\'"\nbuild:\n  run:\n    - "a\\nb"\n'
    imported = import_cog(cog_project(tmp_path, runner, yaml_text))
    app = loaded(imported.write())
    prop = app.signature.input_schema()["properties"]["a"]
    assert (prop["description"], prop["default"], prop["enum"]) == (HOSTILE, HOSTILE, [HOSTILE, "b"])
    assert app.spec.image.env_dict == {"NOTE": "say \"hi\" 'q'"}
    assert "a\\nb" in imported.text.split('"""', 1)[0]  # the build step's line break, shown on its comment line


@pytest.mark.parametrize(
    ("cog_yaml", "runner", "message"),
    [
        ("build: {}\n", "", "cog.yaml: 1 problem:\n  - run=None: names no runner"),
        ('run: "run.py:Runner"\npredict: "run.py:Runner"\n', "", "run, predict=None: both are set"),
        ('run: "run.py:Model"\n', "class Runner:\n    pass\n", "run.py defines no class Model. Allowed: Runner"),
        ('run: "missing.py:Runner"\n', "", "names no Python file in the project"),
        (
            'run: "run.py:Runner"\n',
            "from cog import BaseRunner\nclass Runner(BaseRunner):\n"
            "    def run(self, d: dict, e) -> set:\n        return 1\n",
            "run.py Runner.run: 3 problems:\n  - d=None: dict is not an input type cog or gpuserve takes",
        ),
    ],
)
def test_projects_that_cannot_be_read_are_refused_naming_the_field(
    tmp_path: Path, cog_yaml: str, runner: str, message: str
) -> None:
    with pytest.raises(ImportFailed, match=None) as caught:
        import_cog(cog_project(tmp_path, runner, cog_yaml))
    assert message in str(caught.value)


def test_the_app_goes_beside_its_module_and_replaces_only_its_own(tmp_path: Path) -> None:
    directory = project("cog-stream", tmp_path)
    with pytest.raises(ImportFailed, match="-o=.*is not in .*cog-stream, where the app imports stream.py from"):
        import_cog(directory, out=tmp_path / "elsewhere.py")
    with pytest.raises(ImportFailed, match="would take the name of the module it imports"):
        import_cog(directory, out=directory / "stream.py")
    (directory / "app.py").write_text("print('mine')\n")
    with pytest.raises(BuildError, match="exists and was not written by gpuserve import"):
        import_cog(directory).write()
    import_cog(directory).write(force=True)
    import_cog(directory).write()  # its own: replaced without --force
    assert (directory / "app.py").read_text().startswith("# Written by `gpuserve import`")


def test_every_build_carries_the_module_the_app_wraps(tmp_path: Path) -> None:
    app = import_cog(project("cog-predictor", tmp_path)).write()
    built = {target: build(f"{app}:Predictor", target, tmp_path / "build" / target) for target in TARGETS}
    assert all("predict.py" in result.files for result in built.values())
    assert "COPY predict.py ./predict.py" in (built["docker"].directory / "Dockerfile").read_text()
    modal_app = (built["modal"].directory / "modal_app.py").read_text()
    assert ".add_local_python_source('gpuserve', 'app', 'predict')" in modal_app


def test_runpod_target_refuses_a_module_it_would_overwrite(tmp_path: Path) -> None:
    app = import_runpod(project("runpod-sync", tmp_path) / "handler.py").write()
    with pytest.raises(BuildError, match=r"handler.py='.*handler.py': is a file of the runpod target too"):
        build(f"{app}:Handler", "runpod", tmp_path / "build")


def test_runpod_handler_keys_become_typed_parameters(tmp_path: Path) -> None:
    imported = import_runpod(project("runpod-sync", tmp_path) / "handler.py")
    app = loaded(imported.write())
    schema = app.signature.input_schema()
    assert schema["required"] == ["prompt"] and schema["properties"]["prompt"] == {"title": "Prompt"}
    assert schema["properties"]["count"] == {"default": 2, "title": "Count", "type": "integer"}
    image = app.spec.image
    assert (image.python, image.pip, image.apt, image.env_dict) == (
        "3.11",
        ("runpod==1.12.0", "packaging==26.3"),
        ("curl",),
        {"PREFIX": ">> "},
    )
    assert app.spec.gpu is None
    [skipped] = imported.report.not_carried
    assert skipped.where == "Dockerfile:12" and skipped.value.startswith("python -c")


def test_runpod_validator_schema_types_the_inputs(tmp_path: Path) -> None:
    imported = import_runpod(project("runpod-async", tmp_path) / "async_handler.py")
    app = loaded(imported.write())
    props = app.signature.input_schema()["properties"]
    assert {k: (v.get("type"), v.get("default")) for k, v in props.items()} == {
        "text": ("string", None),
        "repeat": ("integer", 1),
        "upper": ("boolean", False),
    }
    assert app.signature.is_async and app.spec.concurrency == 4  # concurrency_modifier always answers 4
    assert app.spec.gpu is not None and app.spec.gpu.as_strings == ["L40S"]  # a CUDA base image
    assert [line.where for line in imported.report.not_carried] == ["async_handler.py:11 repeat constraints"]


def test_runpod_input_passed_on_whole_is_any_object(tmp_path: Path) -> None:
    app = loaded(import_runpod(project("runpod-stream", tmp_path) / "stream_handler.py").write())
    assert app.signature.style == "model" and app.signature.streaming
    assert app.signature.input_schema()["additionalProperties"] is True
    assert app.signature.input_model.model_validate({"text": "a", "more": [1]}).model_dump() == {
        "text": "a",
        "more": [1],
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('return job["input"]["a"]', {"a": ("Any", True, None)}),
        (
            'values = job["input"]\n    return values.get("n", 3), values["s"]',
            {"n": ("int", False, 3), "s": ("Any", True, None)},
        ),
        ('return job.get("input", {}).get("f", 0.5)', {"f": ("float", False, 0.5)}),
        ('return job["input"].get("n", LIMIT)', {"n": ("int", False, 8)}),
        ('return job["id"], job["input"].get("x")', {"x": ("Any", False, None)}),
        ('return "a" in job["input"]', None),
        ("return process(job)", None),
        ('values = job["input"]\n    values = {}\n    return values', None),
        ('return job["input"].get("n", compute())', None),
    ],
)
def test_which_input_keys_a_handler_reads(tmp_path: Path, body: str, expected: dict[str, Any] | None) -> None:
    start = "runpod.serverless.start({'handler': handler})"
    source = f"import runpod\nLIMIT = 8\n\ndef handler(job):\n    {body}\n\n{start}\n"
    app = loaded(import_runpod(runpod_project(tmp_path, source)).write())
    if expected is None:
        assert app.signature.style == "model" and app.signature.input_schema()["additionalProperties"] is True
        return
    fields = app.signature.input_model.model_fields
    assert {
        n: (_type_name(f.annotation), f.is_required(), f.default if not f.is_required() else None)
        for n, f in fields.items()
    } == expected


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def test_handler_answers_are_read_as_runpod_reads_them(tmp_path: Path) -> None:
    path = import_runpod(project("runpod-sync", tmp_path) / "handler.py").write()
    module = sys.modules[load_app(str(path)).cls.__module__]
    with pytest.raises(module.HandlerError, match=r'^\["a is missing", "b is bad"\]$'):
        module._answer({"error": ["a is missing", "b is bad"], "partial": 1})
    assert module._answer({}) is None and module._answer({"x": 1, "refresh_worker": True}) == {"x": 1}
    assert module._answer({"x": 1, "error": ""}) == {"x": 1} and module._answer([1]) == [1]
    with pytest.raises(module.HandlerError, match="^stopped$"):
        module._chunk({"error": "stopped"})
    assert module._job({"a": 1})["input"] == {"a": 1}


def test_a_worker_that_never_starts_is_refused(tmp_path: Path) -> None:
    handler = runpod_project(tmp_path, "def handler(job):\n    return 1\n")
    with pytest.raises(ImportFailed, match="runpod.serverless.start=None: is never called"):
        import_runpod(handler)
    handler.write_text("import runpod\nrunpod.serverless.start(make_config())\n")
    with pytest.raises(ImportFailed, match="takes a config that cannot be read without running the file"):
        import_runpod(handler)


DOCKERFILE = """# syntax=docker/dockerfile:1
FROM python:3.12 AS build
RUN pip install build

FROM runpod/pytorch:2.4.0-py3.10-cuda12.4.1-devel-ubuntu22.04
WORKDIR /app
COPY builder/requirements.txt .
# a comment between instructions
RUN apt-get update && \\
    DEBIAN_FRONTEND=noninteractive apt-get install -y ffmpeg libsm6 \\
    && rm -rf /var/lib/apt/lists/*
RUN python -m pip install --upgrade pip && pip install --no-cache-dir -r requirements.txt --extra-index-url https://x.example
ENV HF_HOME=/cache PATH=/opt/bin:$PATH
ENV LEGACY some value
COPY weights/ /weights
COPY src/handler.py .
CMD ["python", "-u", "handler.py"]
"""


def test_dockerfile_final_stage_becomes_the_image(tmp_path: Path) -> None:
    (tmp_path / "builder").mkdir()
    (tmp_path / "builder" / "requirements.txt").write_text("transformers==5.24.0\nrunpod==1.12.0\n")
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    report = Report()
    image = read_dockerfile(tmp_path / "Dockerfile", tmp_path / "src" / "handler.py", report)
    assert (image.python, image.cuda, image.torch) == ("3.10", True, "2.4.0")
    assert [line for _, line in image.pip] == ["transformers==5.24.0", "runpod==1.12.0"]
    assert [name for _, name in image.apt] == ["ffmpeg", "libsm6"]
    assert [(key, value) for _, key, value in image.env] == [
        ("HF_HOME", "/cache"),
        ("PATH", "/opt/bin:$PATH"),
        ("LEGACY", "some value"),
    ]
    skipped = [(line.where, line.value) for line in report.not_carried]
    assert skipped == [
        ("Dockerfile:2", "FROM python:3.12 AS build"),
        ("Dockerfile:3", "RUN pip install build"),
        ("Dockerfile:12", "--extra-index-url https://x.example"),
        ("Dockerfile:15", "COPY weights/ /weights"),
    ]


def test_runpod_pytorch_base_pins_torch_and_reports_its_python(tmp_path: Path) -> None:
    handler = runpod_project(
        tmp_path, "import runpod\ndef handler(job):\n    return 1\nrunpod.serverless.start({'handler': handler})\n"
    )
    (handler.parent / "Dockerfile").write_text(
        "FROM runpod/pytorch:2.4.0-py3.10-cuda12.4.1-devel-ubuntu22.04\nENV A=$B\nCOPY handler.py /\n"
    )
    imported = import_runpod(handler, gpu="H100")
    spec = loaded(imported.write()).spec
    assert spec.image.pip == ("runpod==1.12.0", "torch==2.4.0") and spec.image.python == "3.11"
    assert spec.gpu is not None and spec.gpu.as_strings == ["H100"]
    said = {line.where: line.why for line in imported.report.not_carried}
    assert "gpuserve images run Python 3.11, 3.12, 3.13" in said["Dockerfile"]
    assert "refers to another variable" in said["Dockerfile:2"]


def test_instructions_join_continuations_and_drop_comments() -> None:
    text = "FROM a\nRUN one \\\n  # inside\n  two\n\n# gone\nENV A=1\n"
    assert [(i.line, i.keyword, i.value) for i in instructions(text)] == [
        (1, "FROM", "a"),
        (2, "RUN", "one two"),
        (7, "ENV", "A=1"),
    ]


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_writes_the_app_and_prints_the_report(tmp_path: Path) -> None:
    directory = project("cog-runner", tmp_path)
    code, out, _ = run_cli("import", "cog", str(directory), "--name", "my-tool")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"wrote {directory / 'app.py'}"
    assert "  Not carried over (1):" in lines
    assert loaded(directory / "app.py").spec.name == "my-tool"
    code, out, _ = run_cli("--help")
    assert "import" in out and "Write a gpuserve app that wraps a cog or RunPod project" in out


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        (["cog", "{dir}", "--gpu", "K80"], ExitStatus.USAGE, "Invalid value for '--gpu': unknown GPU 'K80'"),
        (["cog", "{dir}", "--name", "Bad Name"], ExitStatus.SPEC, "--name='Bad Name': is not a model name"),
        (["runpod", "{dir}/run.py"], ExitStatus.LOAD, "runpod.serverless.start=None: is never called"),
        (["cog", "{dir}/.."], ExitStatus.LOAD, "holds no cog.yaml"),
    ],
)
def test_cli_refusals_exit_with_their_status(tmp_path: Path, args: list[str], status: int, said: str) -> None:
    directory = project("cog-runner", tmp_path)
    code, _out, err = run_cli("import", *(a.replace("{dir}", str(directory)) for a in args))
    assert code == status and said in err


def test_the_migration_guide_shows_the_test_projects_and_what_import_writes() -> None:
    """docs/migration.md's before and after blocks are these projects and the apps written for them, verbatim."""
    from tests.integration.test_docs import read_blocks

    texts = {block.text for block in read_blocks((DATA.parents[2] / "docs" / "migration.md").read_text())}
    shown = [DATA / "cog-runner" / "cog.yaml", DATA / "cog-runner" / "run.py"]
    shown += [DATA / "runpod-sync" / "handler.py", DATA / "runpod-sync" / "Dockerfile"]
    for path in shown:
        assert path.read_text() in texts, path
    assert import_cog(DATA / "cog-runner").text in texts
    assert import_runpod(DATA / "runpod-sync" / "handler.py").text in texts
