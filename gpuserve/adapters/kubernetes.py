"""kubernetes: the Docker target's image plus a kustomize base (k8s/) for a cluster with GPU nodes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..loader import LoadedApp
from ..render import render
from ._common import CACHE_DIR, base_image, header, image_options, limits_summary, weight_ids
from ._kube import DRIVER_LABEL, GPU_LABEL, GPU_RESOURCE, Placement, placement, spot_summary
from .base import Carried, RenderedTarget, batch_option, option_notes, runtime, setting
from .docker import PORT, STOP_MARGIN, DockerTarget

# Seconds the preStop hook sleeps, so Services and load balancers stop sending before the server drains.
PRESTOP_SECONDS = 5
STARTUP_PERIOD = 10
# Seconds past setup_timeout a rollout or a cold request may wait: a GPU node to join and the image to be pulled.
NODE_MARGIN = 300
# Seconds past `timeout` the HTTP add-on's interceptor waits for response headers (the queue ahead of a predict).
QUEUE_MARGIN = 60
DEFAULT_MAX_REPLICAS = 3
CACHE_SIZE = "50Gi"
SHM_SIZE = "8Gi"  # /dev/shm for GPU frameworks (torch's DataLoader and NCCL); a container's default is 64 MiB
CPU_PER_GPU, MEMORY_PER_GPU_GI = 4, 16
CPU_ONLY = ("1", "2Gi")
METRIC = "gpuserve_requests_in_flight"


@dataclass(frozen=True)
class Probe:
    period: int
    timeout: int
    failures: int


@dataclass(frozen=True)
class Scaling:
    """keda: the HTTP add-on's HTTPScaledObject, from zero; hpa: a HorizontalPodAutoscaler on in-flight requests."""

    kind: str  # "keda" or "hpa"
    file: str
    min_replicas: int
    max_replicas: int
    idle_timeout: int
    target: int  # requests in flight per pod: the slots of one container
    condition_wait: int  # keda: how long a request waits for the first pod
    response_header: int  # keda: how long the interceptor waits for response headers


@dataclass(frozen=True)
class KubeContext:
    header: str
    name: str
    port: int
    command: tuple[str, ...]
    secrets: tuple[str, ...]
    secret_name: str
    gpu: str
    gpu_count: int
    gpu_resource: str
    gpu_label: str
    min_driver: int  # the NVIDIA driver the image's CUDA needs; 0 for CPU models
    cpu: str
    memory: str
    shm_size: str  # "" for CPU models
    placement: Placement
    startup: Probe
    readiness: Probe
    liveness: Probe
    prestop: int
    grace: int
    termination_grace: int
    progress_deadline: int
    cache_dir: str
    cache_claim: str
    cache_size: str
    cache_access: str
    metric: str
    scaling: Scaling
    resources: tuple[str, ...]


def scaling(app: LoadedApp) -> Scaling:
    spec = app.spec
    top = spec.max_containers or max(spec.keep_warm, DEFAULT_MAX_REPLICAS)
    keda = spec.keep_warm == 0
    return Scaling(
        kind="keda" if keda else "hpa",
        file="httpscaledobject.yaml" if keda else "hpa.yaml",
        min_replicas=spec.keep_warm,
        max_replicas=top,
        idle_timeout=spec.idle_timeout,
        target=spec.slots,
        condition_wait=spec.setup_timeout + NODE_MARGIN,
        response_header=spec.timeout + QUEUE_MARGIN,
    )


def startup_probe(setup_timeout: int) -> Probe:
    """failures x period covers setup_timeout: the kubelet restarts a container only past it."""
    return Probe(period=STARTUP_PERIOD, timeout=5, failures=math.ceil(setup_timeout / STARTUP_PERIOD))


class KubernetesTarget:
    name = "kubernetes"

    def options(self, app: LoadedApp) -> dict[str, Carried]:
        spec = app.spec
        ctx = self.context(app)
        scale = ctx.scaling
        docker = DockerTarget().options(app)
        unset = f"unset in the spec; {scale.max_replicas} is written" if spec.max_containers is None else ""
        if scale.kind == "keda":
            where = "k8s/httpscaledobject.yaml"
            warm = setting(f"{where} replicas.min (KEDA's HTTP add-on scales from zero)", scale.min_replicas)
            top = setting(f"{where} replicas.max", scale.max_replicas, note=unset)
            idle = setting(f"{where} scaledownPeriod", f"{scale.idle_timeout} s")
            timeout = f"the server answers 504 past it; the add-on's interceptor waits {scale.response_header} s"
        else:
            where = "k8s/hpa.yaml"
            warm = setting(f"{where} minReplicas (HorizontalPodAutoscaler on {METRIC})", scale.min_replicas)
            top = setting(f"{where} maxReplicas", scale.max_replicas, note=unset)
            idle = setting(f"{where} behavior.scaleDown.stabilizationWindowSeconds", f"{scale.idle_timeout} s")
            timeout = "the server answers 504 past it"
        gpu = (
            setting(
                f"`{GPU_RESOURCE}: {ctx.gpu_count}` limit; node affinity {GPU_LABEL} (fallbacks preferred in "
                f"order) and {DRIVER_LABEL} >= {ctx.min_driver} (the image's CUDA)",
                ctx.placement.gpu_summary,
            )
            if spec.gpu
            else setting("no GPU resource; the Docker target's CPU image", base_image(spec).image)
        )
        return {
            "name": setting("metadata.name of every object in k8s/; the image name kustomize replaces", spec.name),
            "class_name": runtime("k8s/deployment.yaml command `python -m gpuserve.runtime` loads it", app.entry),
            "gpu": gpu,
            **image_options(app, base_image(spec), "Dockerfile"),
            "keep_warm": warm,
            "max_containers": top,
            "idle_timeout": idle,
            "timeout": runtime(timeout, f"{spec.timeout} s"),
            "setup_timeout": setting(
                "startupProbe failureThreshold x periodSeconds (liveness waits for it)",
                f"{ctx.startup.failures} x {ctx.startup.period} s",
            ),
            "weights": setting(
                f"PersistentVolumeClaim {ctx.cache_claim} ({ctx.cache_access}) at GPUSERVE_CACHE_DIR={CACHE_DIR}; "
                "bake=True ones in the image",
                weight_ids(app),
            ),
            "grace": setting(
                f"terminationGracePeriodSeconds: preStop {ctx.prestop} s + grace + {STOP_MARGIN} s to close; "
                "the server drains on SIGTERM",
                f"{ctx.termination_grace} s",
            ),
            "spot": setting("node affinity and tolerations", spot_summary(spec)),
            "spot_notices": docker["spot_notices"],
            "concurrency": runtime(
                f"the server runs this many predicts at once and queues the rest; the autoscaler aims at "
                f"{scale.target} in flight per pod",
                spec.concurrency,
            ),
            "batch": batch_option(spec, "the server's batcher", "its admission gate"),
            "secrets": setting(
                f"env valueFrom.secretKeyRef, Secret {ctx.secret_name} (`gpuserve deploy --secrets-from-env` makes it)",
                ", ".join(spec.secrets) or "none",
            ),
            "limits": runtime(
                "the server answers past them; uvicorn holds headers, keep-alive and connections to them",
                limits_summary(spec),
            ),
        }

    def context(self, app: LoadedApp) -> KubeContext:
        spec = app.spec
        count = spec.gpu.count if spec.gpu else 0
        scale = scaling(app)
        base = base_image(spec)
        cpu, memory = (str(CPU_PER_GPU * count), f"{MEMORY_PER_GPU_GI * count}Gi") if count else CPU_ONLY
        return KubeContext(
            header=header(app, self.name),
            name=spec.name,
            port=PORT,
            command=("python", "-m", "gpuserve.runtime", app.entry, "--host", "0.0.0.0", "--port", str(PORT)),
            secrets=spec.secrets,
            secret_name=f"{spec.name}-secrets",
            gpu=str(spec.gpu) if spec.gpu else "",
            gpu_count=count,
            gpu_resource=GPU_RESOURCE,
            gpu_label=GPU_LABEL,
            min_driver=int(base.cuda.min_driver) if base.cuda else 0,
            cpu=cpu,
            memory=memory,
            shm_size=SHM_SIZE if count else "",
            placement=placement(spec, base.cuda.min_driver if base.cuda else ""),
            startup=startup_probe(spec.setup_timeout),
            readiness=Probe(period=5, timeout=4, failures=2),
            liveness=Probe(period=10, timeout=5, failures=3),
            prestop=PRESTOP_SECONDS,
            grace=spec.grace,
            termination_grace=PRESTOP_SECONDS + spec.grace + STOP_MARGIN,
            progress_deadline=spec.setup_timeout + NODE_MARGIN,
            cache_dir=CACHE_DIR,
            cache_claim=f"{spec.name}-cache",
            cache_size=CACHE_SIZE,
            # Replicas share one cache (a file lock makes them download once); one replica needs no RWX class.
            cache_access="ReadWriteOnce" if scale.max_replicas == 1 else "ReadWriteMany",
            metric=METRIC,
            scaling=scale,
            resources=("deployment.yaml", "service.yaml", "pdb.yaml", "pvc.yaml", scale.file),
        )

    def render(self, app: LoadedApp) -> RenderedTarget:
        image = DockerTarget().render(app)  # the image is the Docker target's, byte for byte
        ctx = self.context(app)
        files = {name: text for name, text in image.files.items() if name != "README.md"}
        files["README.md"] = render("kubernetes/README.md.j2", ctx)
        files["k8s/kustomization.yaml"] = render("kubernetes/kustomization.yaml.j2", ctx)
        for resource in ctx.resources:
            files[f"k8s/{resource}"] = render(f"kubernetes/{resource}.j2", ctx)
        base = base_image(app.spec)
        notes = option_notes(self.options(app), app.spec) + ([base.note] if base.note else [])
        return RenderedTarget(files=files, copies=image.copies, notes=tuple(notes))
