"""Every rendered file checked against the platform's own definition, over the examples and a spec matrix.

The definitions are the platforms' files copied into tests/data/platforms (see its README): RunPod's
v2 OpenAPI, cog's cog.yaml schema, reserved environment names and torch/CUDA tables; Dockerfiles
go through hadolint and a check of what COPY and useradd can find in the image.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from gpuserve.adapters import get_target, target_names
from gpuserve.adapters.base import RenderedTarget
from gpuserve.errors import BuildError
from tests.spec_matrix import matrix_apps

PLATFORMS = Path(__file__).resolve().parents[1] / "data" / "platforms"
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
# Users the base images already have, by uid: Ubuntu 24.04 ships `ubuntu` (1000); 22.04 and Debian slim none.
BASE_UIDS = {"ubuntu24.04": {1000}, "ubuntu22.04": set(), "slim-bookworm": set()}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, RenderedTarget | BuildError]]:
    """Each app of the matrix rendered for each target, or the BuildError the target gave."""
    out: dict[str, dict[str, RenderedTarget | BuildError]] = {}
    for key, app in matrix_apps(tmp_path_factory.mktemp("matrix")):
        out[key] = {}
        for target in target_names():
            try:
                out[key][target] = get_target(target).render(app)
            except BuildError as exc:
                out[key][target] = exc
    return out


def renders(rendered: dict[str, dict[str, RenderedTarget | BuildError]], target: str) -> list[RenderedTarget]:
    found = [r for r in (row[target] for row in rendered.values()) if isinstance(r, RenderedTarget)]
    assert len(found) >= 10, f"too few {target} renders to mean anything"
    return found


@cache
def runpod_validator(definition: str) -> jsonschema.protocols.Validator:
    openapi = json.loads((PLATFORMS / "runpod" / "openapi-v2.json").read_text())
    registry: Registry[Any] = Registry().with_resource("openapi", DRAFT202012.create_resource(openapi))
    schema = {"$ref": f"openapi#/components/schemas/{definition}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def test_runpod_endpoint_bodies_are_create_endpoint_requests(rendered: dict[str, Any]) -> None:
    validator = runpod_validator("CreateEndpointRequest")
    for result in renders(rendered, "runpod"):
        body = json.loads(result.files["endpoint.json"])
        errors = [e.message for e in validator.iter_errors(body)]
        assert not errors, (body["name"], errors)
        assert ("gpu" in body) != ("cpu" in body), "v2 takes exactly one of gpu and cpu"
        assert "template.json" not in result.files, "v2's endpoint body carries everything a template did"


def test_runpod_schema_refuses_unknown_and_v1_fields() -> None:
    """The check above can fail: v2 refuses v1's flat names and anything it does not know."""
    validator = runpod_validator("CreateEndpointRequest")
    good = {"name": "m", "type": "QUEUE", "image": "r/m:1", "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}}
    assert validator.is_valid(good)
    for extra in ({"gpuTypeIds": ["NVIDIA L4"]}, {"workersMin": 0}, {"templateIdd": "x"}):
        assert not validator.is_valid(good | extra), extra
    assert not validator.is_valid(good | {"gpu": {"pools": ["ADA_24"], "minCudaVersion": "13"}})


def test_runpod_gpu_exclusions_leave_the_wanted_cards(rendered: dict[str, Any]) -> None:
    """RunPod answers 400 to an excluded type outside the chosen pools, or to pools left empty."""
    from gpuserve.adapters.runpod import POOL_TYPES

    for result in renders(rendered, "runpod"):
        gpu = json.loads(result.files["endpoint.json"]).get("gpu")
        if gpu is None:
            continue
        in_pools = [t for pool in gpu["pools"] for t in POOL_TYPES[pool]]
        assert set(gpu.get("excludedTypes", [])) <= set(in_pools)
        for pool in gpu["pools"]:
            assert set(POOL_TYPES[pool]) - set(gpu.get("excludedTypes", [])), pool


def test_runpod_cuda_floor_matches_the_image(rendered: dict[str, Any]) -> None:
    for result in renders(rendered, "runpod"):
        gpu = json.loads(result.files["endpoint.json"]).get("gpu")
        base = result.files["Dockerfile"].splitlines()[2]
        if gpu is None:
            assert "nvidia/cuda" not in base
        else:
            assert base.startswith(f"FROM nvidia/cuda:{gpu['minCudaVersion']}."), (base, gpu)


@cache
def cog_schema() -> dict[str, Any]:
    return json.loads((PLATFORMS / "cog" / "config_schema_v1.0.json").read_text())  # type: ignore[no-any-return]


def cog_reserved(name: str) -> bool:
    rules = (PLATFORMS / "cog" / "env_denylist.txt").read_text().split()
    return any(name.startswith(r[:-1]) if r.endswith("*") else name == r for r in rules)


def cog_knows_torch(version: str) -> bool:
    table = json.loads((PLATFORMS / "cog" / "torch_compatibility.json").read_text())
    return any(row["Torch"].split("+")[0] == version for row in table)


def torch_pin(requirements: str) -> str | None:
    match = re.search(r"^torch==([^\s;]+)$", requirements, re.MULTILINE)
    return match.group(1) if match else None


def test_cog_yaml_passes_cogs_own_rules(rendered: dict[str, Any]) -> None:
    cuda_versions = {row["CUDA"] for row in json.loads((PLATFORMS / "cog" / "cuda_compatibility.json").read_text())}
    for result in renders(rendered, "cog"):
        config = yaml.safe_load(result.files["cog.yaml"])
        jsonschema.validate(config, cog_schema())
        names = [line.split("=", 1)[0] for line in config.get("environment") or []]
        assert not [n for n in names if cog_reserved(n)], names
        assert "concurrency" not in config, "concurrency.max is deprecated since cog 0.22; @concurrent carries it"
        pin = torch_pin(result.files["requirements.txt"])
        if config["build"]["gpu"] and pin is not None and not cog_knows_torch(pin):
            cuda = config["build"].get("cuda")
            assert cuda, f"cog build fails for torch=={pin} with gpu: true and no build.cuda"
            assert any(v.startswith(cuda + ".") for v in cuda_versions), cuda


def test_cog_refuses_reserved_environment_names(tmp_path: Path) -> None:
    from tests.spec_matrix import write_variant

    source = write_variant(tmp_path, "reserved", {})
    source.write_text(
        source.read_text().replace(
            "@gpuserve.model()",
            '@gpuserve.model(image=gpuserve.Image().env(HF_HUB_ENABLE_HF_TRANSFER="1", CUDA_VISIBLE_DEVICES="0"))',
        )
    )
    from gpuserve.loader import load_app

    with pytest.raises(BuildError) as info:
        get_target("cog").render(load_app(str(source)))
    assert [p.field for p in info.value.problems] == [
        "image.env(HF_HUB_ENABLE_HF_TRANSFER)",
        "image.env(CUDA_VISIBLE_DEVICES)",
    ]
    assert all(cog_reserved(str(p.value)) for p in info.value.problems)
    assert "set it in setup() instead" in str(info.value)


def dockerfile_renders(rendered: dict[str, Any]) -> list[RenderedTarget]:
    return [r for target in ("docker", "runpod") for r in renders(rendered, target)]


def test_dockerfiles_pass_hadolint(rendered: dict[str, Any], tmp_path: Path) -> None:
    for index, result in enumerate(dockerfile_renders(rendered)):
        path = tmp_path / f"Dockerfile.{index}"
        path.write_text(result.files["Dockerfile"])
        lint = subprocess.run(
            [HADOLINT, "--failure-threshold", "error", str(path)], capture_output=True, text=True, timeout=60
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_dockerfile_copy_sources_exist(rendered: dict[str, Any]) -> None:
    for result in dockerfile_renders(rendered):
        present = set(result.files) | set(result.copies)
        for line in result.files["Dockerfile"].splitlines():
            if not line.startswith("COPY ") or line.startswith("COPY --from="):
                continue
            for source in line.split()[1:-1]:
                assert source.rstrip("/") in present or any(p.startswith(source) for p in present), line


def test_no_user_or_uid_is_created_twice(rendered: dict[str, Any]) -> None:
    for result in dockerfile_renders(rendered):
        text = result.files["Dockerfile"]
        base = text.splitlines()[2]
        uids = next(set(v) for k, v in BASE_UIDS.items() if base.endswith(k))
        for uid in map(int, re.findall(r"useradd [^\n]*--uid (\d+)", text)):
            assert uid not in uids, f"{base}: uid {uid} exists in the base image"
            uids.add(uid)


def test_targets_refuse_what_they_cannot_express(rendered: dict[str, Any]) -> None:
    """Where a target refuses a spec, it says so by the field, not by crashing."""
    refused = [(key, t, r[t]) for key, r in rendered.items() for t in r if isinstance(r[t], BuildError)]
    assert refused, "the matrix holds GPUs some platform lacks"
    for key, target, error in refused:
        assert error.problems and all(p.field for p in error.problems), (key, target)
        assert f"--target {target}" in str(error), (key, target, str(error))


def test_every_app_renders_on_modal(rendered: dict[str, Any]) -> None:
    assert all(isinstance(r["modal"], RenderedTarget) for r in rendered.values())


def test_cog_torch_table_in_the_adapter_is_cogs() -> None:
    from gpuserve.adapters.cog import COG_TORCH_VERSIONS

    table = json.loads((PLATFORMS / "cog" / "torch_compatibility.json").read_text())
    assert set(COG_TORCH_VERSIONS) == {row["Torch"].split("+")[0] for row in table}
