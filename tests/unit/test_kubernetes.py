"""The kubernetes target's manifests, checked against Kubernetes' own schemas (kubernetes-validate, strict) and
KEDA's CRD, over the examples and a spec matrix; every value read back from the parsed YAML equals the spec's."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions, major_minor

from gpuserve.adapters import get_target
from gpuserve.adapters._common import base_image
from gpuserve.adapters._kube import DRIVER_LABEL, GPU_LABEL, GPU_PRODUCTS, SPOT_LABEL, SPOT_TAINTS
from gpuserve.adapters.base import RenderedTarget
from gpuserve.adapters.docker import STOP_MARGIN
from gpuserve.adapters.kubernetes import PRESTOP_SECONDS
from gpuserve.loader import LoadedApp, load_app
from gpuserve.spec import ModelSpec
from tests.spec_matrix import matrix_apps, write_variant

KEDA_CRD = Path(__file__).resolve().parents[1] / "data" / "keda" / "http.keda.sh_httpscaledobjects.yaml"
# The three newest minor versions kubernetes-validate ships schemas for.
NEWEST = sorted({tuple(map(int, major_minor(v).split("."))) for v in all_versions()})[-3:]
VERSIONS = [f"{major}.{minor}" for major, minor in NEWEST]
# Beyond tests/spec_matrix.py: spot, a warm pool with an HPA, one replica (a ReadWriteOnce cache).
EXTRA: dict[str, dict[str, Any]] = {
    "spot-prefer-fallbacks": {"gpu": ["H100", "A100-80GB"], "spot": "prefer", "keep_warm": 1, "max_containers": 4},
    "spot-only-cpu": {"spot": "only", "secrets": ["API_KEY"]},
    "warm-single-l4": {"gpu": "L4", "keep_warm": 1, "max_containers": 1, "grace": 120, "setup_timeout": 95},
}

Manifests = dict[str, dict[str, Any]]  # kind -> the parsed object


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, LoadedApp, RenderedTarget, Manifests]]:
    """Every app of the matrix rendered for kubernetes, with its k8s/ manifests parsed back (one object a file)."""
    directory = tmp_path_factory.mktemp("k8s")
    apps = matrix_apps(directory) + [
        (key, load_app(str(write_variant(directory, key, options)))) for key, options in EXTRA.items()
    ]
    out = []
    for key, app in apps:
        rendered = get_target("kubernetes").render(app)
        manifests: Manifests = {}
        for name, text in rendered.files.items():
            if name.startswith("k8s/"):
                docs = list(yaml.safe_load_all(text))
                assert len(docs) == 1, name
                manifests[docs[0]["kind"]] = docs[0]
        out.append((key, app, rendered, manifests))
    assert len(out) >= 20
    return out


def test_the_newest_three_versions_are_recent() -> None:
    assert len(VERSIONS) == 3 and NEWEST[0] >= (1, 33), VERSIONS


def test_manifests_pass_kubernetes_strict_schemas(renders: list[Any]) -> None:
    checked = 0
    for key, _app, _rendered, manifests in renders:
        for kind, obj in manifests.items():
            if kind in ("Kustomization", "HTTPScaledObject"):
                continue
            for version in VERSIONS:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    pytest.fail(f"{key} {kind} on {version}: {'.'.join(map(str, exc.path))}: {exc.message}")
                checked += 1
    assert checked >= 4 * 3 * len(renders)


def test_strict_schemas_refuse_an_unknown_field_and_a_bad_type(renders: list[Any]) -> None:
    """The check above can fail: a misspelt field or a string where an integer belongs is refused."""
    deployment = renders[0][3]["Deployment"]
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["terminationGracePeriod"] = 30
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["startupProbe"]["failureThreshold"] = "many"
    for bad in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, VERSIONS[-1], strict=True)


def _closed(schema: Any) -> Any:
    """A CRD schema as the API server's strict field validation applies it: unknown fields are errors."""
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


@cache
def keda_validator() -> jsonschema.protocols.Validator:
    crd = yaml.safe_load(KEDA_CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = _closed(version["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema)


def test_httpscaledobjects_pass_kedas_crd(renders: list[Any]) -> None:
    crd = yaml.safe_load(KEDA_CRD.read_text())
    seen = 0
    for key, _app, _rendered, manifests in renders:
        obj = manifests.get("HTTPScaledObject")
        if obj is None:
            continue
        assert obj["apiVersion"] == f"{crd['spec']['group']}/v1alpha1" and obj["kind"] == crd["spec"]["names"]["kind"]
        errors = [f"{list(e.path)}: {e.message}" for e in keda_validator().iter_errors(obj)]
        assert not errors, (key, errors)
        target = obj["spec"]["scaleTargetRef"]
        assert ("port" in target) != ("portName" in target), "the CRD's rule: either port or portName"
        seen += 1
    assert seen >= 5


def test_keda_check_refuses_unknown_fields(renders: list[Any]) -> None:
    obj = next(m["HTTPScaledObject"] for *_, m in renders if "HTTPScaledObject" in m)
    for path, field in ((("spec",), "minReplicaCount"), (("spec", "replicas"), "minimum")):
        bad = copy.deepcopy(obj)
        node = bad
        for part in path:
            node = node[part]
        node[field] = 1
        assert not keda_validator().is_valid(bad), field


def test_kustomization_lists_every_manifest(renders: list[Any]) -> None:
    for key, app, rendered, manifests in renders:
        kustomization = manifests["Kustomization"]
        files = {name.removeprefix("k8s/") for name in rendered.files if name.startswith("k8s/")}
        assert set(kustomization["resources"]) | {"kustomization.yaml"} == files, key
        assert kustomization["images"] == [{"name": app.spec.name, "newTag": "latest"}]


def pod_of(manifests: Manifests) -> dict[str, Any]:
    return manifests["Deployment"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_image_and_command_are_the_docker_targets(renders: list[Any]) -> None:
    for key, app, rendered, manifests in renders:
        docker = get_target("docker").render(app)
        assert rendered.files["Dockerfile"] == docker.files["Dockerfile"], key
        assert rendered.copies == docker.copies, key
        (container,) = pod_of(manifests)["containers"]
        cmd = next(line for line in docker.files["Dockerfile"].splitlines() if line.startswith("CMD "))
        assert container["command"] == yaml.safe_load(cmd.removeprefix("CMD ")), key
        assert container["image"] == app.spec.name


def test_lifecycle_values_read_back(renders: list[Any]) -> None:
    for key, app, _rendered, manifests in renders:
        spec: ModelSpec = app.spec
        pod = pod_of(manifests)
        (container,) = pod["containers"]
        assert pod["terminationGracePeriodSeconds"] == PRESTOP_SECONDS + spec.grace + STOP_MARGIN, key
        assert container["lifecycle"]["preStop"]["sleep"]["seconds"] == PRESTOP_SECONDS
        startup = container["startupProbe"]
        covered = startup["failureThreshold"] * startup["periodSeconds"]
        assert covered >= spec.setup_timeout > covered - startup["periodSeconds"], key
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, (key, probe)
        assert "initialDelaySeconds" not in container["livenessProbe"], "the startup probe gates liveness"
        deadline = manifests["Deployment"]["spec"]["progressDeadlineSeconds"]
        assert deadline > spec.setup_timeout, "a rollout may take as long as the model's start"
        assert (pod["securityContext"] | container["securityContext"]).items() >= {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 1000,
            "allowPrivilegeEscalation": False,
        }.items()


def test_gpu_count_and_types_read_back(renders: list[Any]) -> None:
    gpu_apps = 0
    for key, app, _rendered, manifests in renders:
        spec: ModelSpec = app.spec
        pod = pod_of(manifests)
        resources = pod["containers"][0]["resources"]
        (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        gpu_terms = [e for e in term["matchExpressions"] if e["key"] == GPU_LABEL]
        tolerated = [t["key"] for t in pod.get("tolerations", [])]
        if spec.gpu is None:
            assert "limits" not in resources and not gpu_terms and "nvidia.com/gpu" not in tolerated, key
            assert DRIVER_LABEL not in str(term), key
            continue
        gpu_apps += 1
        assert resources["limits"] == {"nvidia.com/gpu": spec.gpu.count}, key
        assert resources["requests"]["nvidia.com/gpu"] == spec.gpu.count
        wanted = [product for name in spec.gpu.types for product in GPU_PRODUCTS[name]]
        assert [e["values"] for e in gpu_terms] == [wanted], key
        cuda = base_image(spec).cuda
        assert cuda is not None
        driver = [e for e in term["matchExpressions"] if e["key"] == DRIVER_LABEL]
        assert driver == [{"key": DRIVER_LABEL, "operator": "Gt", "values": [str(int(cuda.min_driver) - 1)]}], key
        assert "nvidia.com/gpu" in tolerated
        preferred = pod["affinity"]["nodeAffinity"].get("preferredDuringSchedulingIgnoredDuringExecution", [])
        by_gpu = [p for p in preferred if p["preference"]["matchExpressions"][0]["key"] == GPU_LABEL]
        if len(spec.gpu.types) > 1:
            order = [p["preference"]["matchExpressions"][0]["values"] for p in by_gpu]
            assert order == [list(GPU_PRODUCTS[name]) for name in spec.gpu.types], key
            weights = [p["weight"] for p in by_gpu]
            assert weights == sorted(weights, reverse=True) and len(set(weights)) == len(weights)
        else:
            assert not by_gpu, key
    assert gpu_apps >= 15


def test_spot_becomes_affinity_and_tolerations(renders: list[Any]) -> None:
    seen = set()
    for key, app, _rendered, manifests in renders:
        pod = pod_of(manifests)
        affinity = pod["affinity"]["nodeAffinity"]
        (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        required = [e for e in term["matchExpressions"] if e["key"] == SPOT_LABEL]
        preferred = [
            p
            for p in affinity.get("preferredDuringSchedulingIgnoredDuringExecution", [])
            if p["preference"]["matchExpressions"][0]["key"] == SPOT_LABEL
        ]
        taints = {(t["key"], t.get("value")) for t in pod.get("tolerations", []) if t["key"] != "nvidia.com/gpu"}
        spot = app.spec.spot
        seen.add(spot)
        if spot == "off":
            assert required == [{"key": SPOT_LABEL, "operator": "NotIn", "values": ["spot"]}] and not preferred, key
            assert not taints, key
        elif spot == "only":
            assert required == [{"key": SPOT_LABEL, "operator": "In", "values": ["spot"]}] and not preferred, key
            assert taints == set(SPOT_TAINTS), key
        else:
            assert not required and len(preferred) == 1, key
            assert preferred[0]["preference"]["matchExpressions"][0]["values"] == ["spot"]
            assert taints == set(SPOT_TAINTS), key
    assert seen == {"off", "prefer", "only"}


def test_secrets_are_references_by_name(renders: list[Any]) -> None:
    for key, app, _rendered, manifests in renders:
        spec: ModelSpec = app.spec
        env = pod_of(manifests)["containers"][0].get("env", [])
        assert [e["name"] for e in env] == list(spec.secrets), key
        for entry in env:
            assert "value" not in entry
            assert entry["valueFrom"] == {"secretKeyRef": {"name": f"{spec.name}-secrets", "key": entry["name"]}}
        assert "Secret" not in manifests, "Secret values never enter the rendered files"


def test_scaling_reads_back(renders: list[Any]) -> None:
    kinds = set()
    for key, app, _rendered, manifests in renders:
        spec: ModelSpec = app.spec
        top = spec.max_containers or max(spec.keep_warm, 3)
        assert "replicas" not in manifests["Deployment"]["spec"], "the autoscaler owns the replica count"
        if spec.keep_warm == 0:
            kinds.add("keda")
            assert "HorizontalPodAutoscaler" not in manifests
            keda = manifests["HTTPScaledObject"]["spec"]
            assert keda["replicas"] == {"min": 0, "max": top}, key
            assert keda["scaledownPeriod"] == spec.idle_timeout
            assert keda["scalingMetric"] == {"concurrency": {"targetValue": spec.slots}}
            assert keda["scaleTargetRef"]["name"] == keda["scaleTargetRef"]["service"] == spec.name
            assert int(keda["timeouts"]["conditionWait"].removesuffix("s")) > spec.setup_timeout
            assert int(keda["timeouts"]["responseHeader"].removesuffix("s")) > spec.timeout
        else:
            kinds.add("hpa")
            assert "HTTPScaledObject" not in manifests
            hpa = manifests["HorizontalPodAutoscaler"]["spec"]
            assert (hpa["minReplicas"], hpa["maxReplicas"]) == (spec.keep_warm, top), key
            assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == spec.idle_timeout
            (metric,) = hpa["metrics"]
            assert metric["pods"]["metric"]["name"] == "gpuserve_requests_in_flight"
            assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": str(spec.slots)}
        claim = manifests["PersistentVolumeClaim"]
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce" if top == 1 else "ReadWriteMany"], key
        pdb = manifests["PodDisruptionBudget"]["spec"]
        assert pdb["maxUnavailable"] == 1 and pdb["selector"] == manifests["Deployment"]["spec"]["selector"]
        service = manifests["Service"]["spec"]
        assert service["selector"] == manifests["Deployment"]["spec"]["selector"]["matchLabels"]
    assert kinds == {"keda", "hpa"}


def test_weight_cache_is_the_claim_at_the_image_cache_dir(renders: list[Any]) -> None:
    for key, _app, rendered, manifests in renders:
        pod = pod_of(manifests)
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "cache"]
        assert f"GPUSERVE_CACHE_DIR={mount['mountPath']}\n" in rendered.files["Dockerfile"], key
        (volume,) = [v for v in pod["volumes"] if v["name"] == "cache"]
        assert volume["persistentVolumeClaim"]["claimName"] == manifests["PersistentVolumeClaim"]["metadata"]["name"]
