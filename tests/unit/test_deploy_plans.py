"""`gpuserve deploy`: the dry-run plans, compared with expected text exactly, and preflight's problems.

The expected plans live in tests/data/deploy; rewrite them with `pytest tests/unit/test_deploy_plans.py
--update-golden` and review the diff. Tools are fake executables written here (they record their argv), so
preflight sees a machine with docker, cog and modal whatever this one has.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from gpuserve.cli import ExitStatus, main
from gpuserve.deploy import DeployOptions, plan_deploy, render_plan
from gpuserve.deploy.context import content_tag, has_tag
from gpuserve.deploy.plan import Call, Choose, Command
from gpuserve.loader import LoadedApp, load_app
from tests.apps import HELLO, ROOT, TEXT

EXPECTED = ROOT / "tests" / "data" / "deploy"
PLATFORMS = ROOT / "tests" / "data" / "platforms"
SECRETS = {
    "RUNPOD_API_KEY": "rpa_SECRET_runpod_key_1234",
    "REPLICATE_API_TOKEN": "r8_SECRET_replicate_token_5678",
    "MODAL_TOKEN_ID": "ak-SECRET-modal-id",
    "MODAL_TOKEN_SECRET": "as-SECRET-modal-secret",
    "HF_TOKEN": "hf_SECRET_hugging_face_token",
}

FAKE_TOOL = """#!{python}
\"\"\"A stand-in for {name}: records its argv, directory, stdin and --from-json file; FAKE_FAIL makes it fail.\"\"\"
import json, os, sys
record = {{"tool": {name!r}, "argv": sys.argv[1:], "cwd": os.getcwd()}}
if "--token-stdin" in sys.argv or sys.argv[1:4] == ["apply", "-f", "-"]:
    record["stdin"] = sys.stdin.read()
    print("logged in with " + record["stdin"].strip())
if "--from-json" in sys.argv:
    record["file"] = json.load(open(sys.argv[sys.argv.index("--from-json") + 1]))
with open(os.environ["FAKE_TOOLS_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
words = " ".join([{name!r}] + sys.argv[1:3])
if words == "docker info":
    print("28.2.2")
elif os.environ.get("FAKE_FAIL") and words.startswith(os.environ["FAKE_FAIL"]):
    print("step 1/2: working")
    print("denied: requested access to the resource is denied", file=sys.stderr)
    sys.exit(1)
else:
    print(words + ": ok")
"""


def write_fake_tools(
    directory: Path, names: tuple[str, ...] = ("docker", "cog", "modal", "kubectl", "kustomize", "sky")
) -> Path:
    """Executables that stand in for the platform tools; each run is a JSON line in FAKE_TOOLS_LOG."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = directory / name
        path.write_text(FAKE_TOOL.format(python=sys.executable, name=name))
        path.chmod(0o755)
    return directory


def tool_runs(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@dataclass(frozen=True)
class PlanCase:
    key: str
    ref: str
    options: DeployOptions


def options(app: str, target: str, **extra: Any) -> DeployOptions:
    return DeployOptions(app=app, target=target, build_dir=f"build/{target}", tag="v1", **extra)


HELLO_APP = "examples/hello/app.py"
PLANS = [
    PlanCase("runpod-hello", HELLO.ref, options(HELLO_APP, "runpod", registry="ghcr.io/acme")),
    PlanCase(
        "runpod-private-image",
        HELLO.ref,
        options(HELLO_APP, "runpod", image="registry.acme.dev:5000/team/hello", registry_auth="cred-42"),
    ),
    PlanCase("cog-hello", HELLO.ref, options(HELLO_APP, "cog", model="acme/hello")),
    PlanCase(
        "modal-text-generation", TEXT.ref, options("examples/text-generation/app.py", "modal", secrets_from_env=True)
    ),
    PlanCase("docker-hello", HELLO.ref, options(HELLO_APP, "docker", registry="ghcr.io/acme", push=True)),
    PlanCase(
        "kubernetes-text-generation",
        TEXT.ref,
        options("examples/text-generation/app.py", "kubernetes", registry="ghcr.io/acme", secrets_from_env=True),
    ),
    PlanCase(
        "skypilot-text-generation",
        TEXT.ref,
        options("examples/text-generation/app.py", "skypilot", registry="ghcr.io/acme"),
    ),
]


@pytest.fixture
def ready_env(tmp_path: Path) -> dict[str, str]:
    """An environment with every tool and credential a deploy looks for."""
    tools = write_fake_tools(tmp_path / "bin")
    return {"PATH": str(tools), "FAKE_TOOLS_LOG": str(tmp_path / "tools.log"), **SECRETS}


@cache
def loaded(ref: str) -> LoadedApp:
    return load_app(ref)


@pytest.mark.parametrize("case", PLANS, ids=[c.key for c in PLANS])
def test_dry_run_plan_is_the_expected_text(
    case: PlanCase, ready_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    text = render_plan(plan_deploy(loaded(case.ref), case.options, env=ready_env, home=tmp_path), dry_run=True)
    expected = EXPECTED / f"{case.key}.txt"
    if request.config.getoption("--update-golden"):
        expected.parent.mkdir(parents=True, exist_ok=True)
        expected.write_text(text, encoding="utf-8")
    assert text == expected.read_text(encoding="utf-8")
    for value in SECRETS.values():
        assert value not in text


def test_preflight_names_every_missing_tool_credential_and_option(tmp_path: Path) -> None:
    empty = {"PATH": str(tmp_path / "nothing")}
    missing = {
        target: plan_deploy(
            loaded(HELLO.ref), replace(options(HELLO_APP, target), tag=None), env=empty, home=tmp_path
        ).missing
        for target in ("runpod", "cog", "modal", "docker", "kubernetes", "skypilot")
    }
    named = {target: [line.split(":", 1)[0] for line in lines] for target, lines in missing.items()}
    assert named == {
        "runpod": ["docker", "RUNPOD_API_KEY", "--registry"],
        "cog": ["cog", "docker", "REPLICATE_API_TOKEN", "--model"],
        "modal": ["modal", "Modal token"],
        "docker": ["docker"],
        "kubernetes": ["docker", "kubectl", "kustomize", "--registry"],
        "skypilot": ["docker", "sky", "--registry"],
    }
    assert all(". Fix: " in line for lines in missing.values() for line in lines)
    assert "export RUNPOD_API_KEY=" in missing["runpod"][1]
    assert f"{tmp_path / '.modal.toml'}" in missing["modal"][1]


def test_preflight_reads_the_modal_token_file_and_refuses_half_a_token(tmp_path: Path) -> None:
    tools = {"PATH": str(write_fake_tools(tmp_path / "bin"))}
    app = loaded(HELLO.ref)
    half = plan_deploy(app, options(HELLO_APP, "modal"), env=tools | {"MODAL_TOKEN_ID": "ak-1"}, home=tmp_path)
    assert half.missing == (
        "Modal token: MODAL_TOKEN_ID is set but MODAL_TOKEN_SECRET is not; the modal CLI needs both. Fix: run "
        "`modal token new`, or export MODAL_TOKEN_ID and MODAL_TOKEN_SECRET (from modal.com/settings/tokens)",
    )
    (tmp_path / ".modal.toml").write_text("[default]\ntoken_id = 'ak-1'\n")
    assert plan_deploy(app, options(HELLO_APP, "modal"), env=tools, home=tmp_path).missing == ()


def test_preflight_refuses_a_stopped_docker_daemon_and_bad_options(ready_env: dict[str, str], tmp_path: Path) -> None:
    env = ready_env | {"FAKE_FAIL": "docker info"}
    app = loaded(HELLO.ref)
    plan = plan_deploy(app, options(HELLO_APP, "docker", push=True), env=env, home=tmp_path)
    assert [line.split(":", 1)[0] for line in plan.missing] == ["Docker daemon", "--push"]
    assert "denied: requested access" in plan.missing[0]
    assert "hello:v1 names no registry or namespace" in plan.missing[1]
    cog = plan_deploy(app, options(HELLO_APP, "cog", model="hello"), env=ready_env, home=tmp_path)
    assert cog.missing == ("--model: 'hello' is not OWNER/NAME. Fix: pass it as OWNER/NAME, e.g. acme/hello",)
    runpod = plan_deploy(app, options(HELLO_APP, "runpod", registry="r.io/a", secrets_from_env=True), env=ready_env)
    assert [line.split(":", 1)[0] for line in runpod.missing] == ["--secrets-from-env"]


def test_dry_run_with_nothing_set_prints_the_plan_and_the_problems_and_exits_0(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path / "nothing"), "HOME": str(tmp_path)} | {name: "" for name in SECRETS}
    result = CliRunner(env=env).invoke(main, ["deploy", HELLO.ref, "--target", "runpod", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "docker build --platform linux/amd64 -t '<REGISTRY>/hello:" in result.stdout
    assert "Preflight: 3 problems (a deploy would stop here, before step 1):" in result.stdout
    assert "Note: <REGISTRY> stands for --registry, which was not given" in result.stdout


def test_without_dry_run_preflight_stops_before_any_step(ready_env: dict[str, str], tmp_path: Path) -> None:
    env = ready_env | {"RUNPOD_API_KEY": "", "HOME": str(tmp_path)}
    result = CliRunner(env=env).invoke(main, ["deploy", HELLO.ref, "--target", "runpod", "-o", str(tmp_path / "b")])
    assert result.exit_code == ExitStatus.DEPLOY
    assert result.stderr.splitlines()[:3] == [
        "error: gpuserve deploy: 2 problems, nothing was run:",
        "  - RUNPOD_API_KEY: not set; RunPod's API needs it. Fix: create a key at "
        "https://www.runpod.io/console/user/settings, then export RUNPOD_API_KEY=...",
        "  - --registry: not given; RunPod pulls the worker image from a registry you push to. Fix: pass --registry "
        "REGISTRY/NAMESPACE (e.g. docker.io/acme or ghcr.io/acme), or --image REF",
    ]
    assert [run["argv"] for run in tool_runs(tmp_path / "tools.log")] == [["info", "--format", "{{.ServerVersion}}"]]
    assert not (tmp_path / "b").exists()


def test_a_bad_tag_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["deploy", HELLO.ref, "--target", "docker", "--tag", "-v1", "--dry-run"])
    assert result.exit_code == ExitStatus.USAGE
    assert "'-v1' is not a tag" in result.stderr


@cache
def runpod_validator(definition: str) -> jsonschema.protocols.Validator:
    openapi = json.loads((PLATFORMS / "runpod" / "openapi-v2.json").read_text())
    registry: Registry[Any] = Registry().with_resource("openapi", DRAFT202012.create_resource(openapi))
    return jsonschema.Draft202012Validator({"$ref": f"openapi#/components/schemas/{definition}"}, registry=registry)


@pytest.mark.parametrize("case", [HELLO, TEXT], ids=lambda c: c.key)
def test_runpod_calls_send_bodies_runpods_openapi_takes(case: Any, ready_env: dict[str, str]) -> None:
    plan = plan_deploy(loaded(case.ref), options("app.py", "runpod", image="r.io/a/m", registry_auth="c1"), ready_env)
    choose = plan.steps[-1]
    assert isinstance(choose, Choose)
    for call, definition in ((choose.create, "CreateEndpointRequest"), (choose.update, "UpdateEndpointRequest")):
        assert [e.message for e in runpod_validator(definition).iter_errors(call.body)] == []
        assert call.body["image"] == "r.io/a/m:v1" and call.body["registry"] == "c1"
    assert not runpod_validator("UpdateEndpointRequest").is_valid(choose.create.body)  # `type` is create-only
    find = plan.steps[3]
    assert isinstance(find, Call) and (find.method, find.url) == ("GET", "https://api.runpod.io/v2/serverless")


def test_the_default_tag_changes_exactly_when_the_rendered_directory_does(tmp_path: Path) -> None:
    from gpuserve.adapters import get_target

    source = (ROOT / "examples" / "hello" / "app.py").read_text()
    tags = []
    for n, text in enumerate([source, source, source.replace('"Hola"', '"¡Hola"')]):
        path = tmp_path / str(n) / "app.py"
        path.parent.mkdir()
        path.write_text(text)
        tags.append(content_tag(get_target("runpod").render(load_app(f"{path}:Hello"))))
    assert tags[0] == tags[1] != tags[2]
    assert all(len(tag) == 12 for tag in tags)


def test_image_references_keep_their_tag_and_registry_port() -> None:
    assert has_tag("ghcr.io/acme/hello:v2") and has_tag("acme/hello@sha256:abc")
    assert not has_tag("localhost:5000/acme/hello") and not has_tag("hello")
    plan = plan_deploy(loaded(HELLO.ref), options(HELLO_APP, "docker", image="localhost:5000/hello"), env={})
    build = plan.steps[1]
    assert isinstance(build, Command) and build.lines() == ["docker build -t localhost:5000/hello:v1 build/docker"]
