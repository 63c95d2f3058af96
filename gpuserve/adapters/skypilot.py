"""skypilot: the Docker target's image as a SkyServe service (service.yaml) and a SkyPilot batch task (task.yaml).

SkyPilot finds the GPUs on whichever cloud or cluster has them, in the fallback order given; SkyServe puts a load
balancer and an autoscaler in front of replicas that each run the image with the same command as its CMD.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..loader import LoadedApp
from ..render import render
from ..spec import ModelSpec
from ._common import CACHE_DIR, base_image, header, image_options, limits_summary, weight_ids
from ._gpus import PlatformGpus
from .base import Carried, RenderedTarget, batch_option, option_notes, runtime, setting
from .docker import PORT, DockerTarget

# SkyPilot 0.14.1's own spellings (sky.catalog.get_common_gpus()); the validation test checks ours against it.
SKYPILOT_GPUS = PlatformGpus(
    platform="SkyPilot",
    target="skypilot",
    names={
        "T4": ("T4",),
        "L4": ("L4",),
        "A10": ("A10G", "A10"),  # AWS's A10G and Azure/Lambda's A10: the same 24 GB Ampere part
        "A100-40GB": ("A100",),
        "A100-80GB": ("A100-80GB",),
        "L40S": ("L40S",),
        "RTX-PRO-6000": ("RTXPRO6000",),
        "H100": ("H100",),
        "H200": ("H200",),
        "B200": ("B200",),
    },
    offered=("A10", "A10G", "A100", "A100-80GB", "B200", "H100", "H200", "L4", "L40S", "RTXPRO6000", "T4", "V100"),
)
APP_DIR = "/app"  # the image's WORKDIR
CPU_ONLY = "2+"  # vCPUs for a CPU model's replica: any instance with at least two
DEFAULT_MAX_REPLICAS = 3
# target_qps_per_replica by Little's law: a replica completes `slots` requests per predict time. Without a measured
# predict time, one second is assumed and said in README.md; set it from `gpuserve test` or your own benchmark.
ASSUMED_PREDICT_SECONDS = 1.0
# Seconds past `timeout` the load balancer waits for an answer: the queue ahead of a predict in the replica.
QUEUE_MARGIN = 60
# SkyServe stops routing to a replica it scales down and waits this long before it terminates it (0.14.1, fixed).
SKYSERVE_DRAIN_SECONDS = 120
IMAGE_PLACEHOLDER = "REGISTRY/{name}:TAG"


@dataclass(frozen=True)
class Alternative:
    """One entry of task.yaml's `ordered:` resources: what to try, in order."""

    accelerators: str  # "H100" or "H100:8"; "" for a CPU model
    use_spot: bool


@dataclass(frozen=True)
class SkyContext:
    header: str
    name: str
    image_id: str
    port: int
    accelerators: tuple[str, ...]  # in fallback order; empty for a CPU model
    cpus: str  # "" for GPU models
    use_spot: bool
    ondemand_fallback: bool  # spot="prefer": SkyServe launches on-demand replicas while spot is short
    alternatives: tuple[Alternative, ...]  # task.yaml: each accelerator on spot, then each on demand
    readiness_path: str
    initial_delay: int
    min_replicas: int
    max_replicas: int
    target_qps: float
    downscale_delay: int
    stream_timeout: int
    secrets: tuple[str, ...]
    run: str  # the service's command: the image's CMD, from its WORKDIR
    entry: str
    app_dir: str
    batch_run: str
    grace: int
    drain: int
    cache_dir: str


def gpu_names(spec: ModelSpec) -> tuple[tuple[str, ...], list[str]]:
    """SkyPilot accelerator strings in fallback order ("H100:8" for several), and notes on what was dropped."""
    if spec.gpu is None:
        return (), []
    kept, notes = SKYPILOT_GPUS.resolve(spec.gpu)
    suffix = f":{spec.gpu.count}" if spec.gpu.count > 1 else ""
    return tuple(f"{name}{suffix}" for _, names in kept for name in names), notes


def server_command(app: LoadedApp) -> str:
    """The Docker image's CMD as a shell line run from its WORKDIR; exec, so SIGTERM reaches the server."""
    command = ("python", "-m", "gpuserve.runtime", app.entry, "--host", "0.0.0.0", "--port", str(PORT))
    return f"cd {APP_DIR} && exec {shlex.join(command)}"


class SkypilotTarget:
    name = "skypilot"

    def context(self, app: LoadedApp) -> SkyContext:
        spec = app.spec
        accelerators, _ = gpu_names(spec)
        spot = spec.spot != "off"
        if spec.spot == "prefer":
            alternatives = [Alternative(a, use_spot) for use_spot in (True, False) for a in accelerators or ("",)]
        else:
            alternatives = [Alternative(a, spot) for a in accelerators or ("",)]
        return SkyContext(
            header=header(app, self.name),
            name=spec.name,
            image_id="docker:" + IMAGE_PLACEHOLDER.format(name=spec.name),
            port=PORT,
            accelerators=accelerators,
            cpus="" if accelerators else CPU_ONLY,
            use_spot=spot,
            ondemand_fallback=spec.spot == "prefer",
            alternatives=tuple(alternatives),
            readiness_path="/health",
            initial_delay=spec.setup_timeout,
            min_replicas=spec.keep_warm,
            max_replicas=spec.max_containers or max(spec.keep_warm, DEFAULT_MAX_REPLICAS),
            target_qps=spec.slots / ASSUMED_PREDICT_SECONDS,
            downscale_delay=spec.idle_timeout,
            stream_timeout=spec.timeout + QUEUE_MARGIN,
            secrets=spec.secrets,
            run=server_command(app),
            entry=app.entry,
            app_dir=APP_DIR,
            batch_run='exec python batch.py "$INPUTS" "$OUTPUTS"',
            grace=spec.grace,
            drain=SKYSERVE_DRAIN_SECONDS,
            cache_dir=CACHE_DIR,
        )

    def options(self, app: LoadedApp) -> dict[str, Carried]:
        spec = app.spec
        ctx = self.context(app)
        docker = DockerTarget().options(app)
        unset = f"unset in the spec; {ctx.max_replicas} is written" if spec.max_containers is None else ""
        policy = "service.yaml service.replica_policy"
        gpu = (
            setting(
                "service.yaml resources.accelerators, tried in order; task.yaml the same", ", ".join(ctx.accelerators)
            )
            if spec.gpu
            else setting(f"resources.cpus {ctx.cpus}; the Docker target's CPU image", base_image(spec).image)
        )
        spot = {
            "off": "use_spot: false (on-demand)",
            "only": "use_spot: true (spot only)",
            "prefer": "use_spot: true with replica_policy.dynamic_ondemand_fallback (service); task.yaml tries "
            "each GPU on spot, then each on demand (`ordered:`)",
        }[spec.spot]
        slow = f"; a predict past {ctx.drain} s is cut when a replica is scaled down" if spec.grace > ctx.drain else ""
        return {
            "name": setting("service.yaml and task.yaml `name`; `sky serve up -n`", spec.name),
            "class_name": runtime(f"run: `python -m gpuserve.runtime` in {APP_DIR} loads it", app.entry),
            "gpu": gpu,
            **image_options(app, base_image(spec), "Dockerfile"),
            "keep_warm": setting(f"{policy}.min_replicas (0 scales to zero)", ctx.min_replicas),
            "max_containers": setting(f"{policy}.max_replicas", ctx.max_replicas, note=unset),
            "idle_timeout": setting(f"{policy}.downscale_delay_seconds", f"{ctx.downscale_delay} s"),
            "timeout": setting(
                "the server answers 504 past it; service.yaml load_balancer.stream_timeout_seconds",
                f"{spec.timeout} s + {QUEUE_MARGIN} s",
            ),
            "setup_timeout": setting("service.yaml readiness_probe.initial_delay_seconds", f"{ctx.initial_delay} s"),
            "weights": setting(
                f"fetched before setup() into GPUSERVE_CACHE_DIR={CACHE_DIR} on each replica's disk; "
                "bake=True ones in the image",
                weight_ids(app),
            ),
            "grace": runtime(
                f"the server drains on SIGTERM; SkyServe stops routing to a replica it scales down and waits "
                f"{ctx.drain} s before it terminates it",
                f"{spec.grace} s",
                note=slow.removeprefix("; "),
            ),
            "spot": setting("resources.use_spot", spot),
            "spot_notices": docker["spot_notices"],
            "concurrency": runtime(
                f"the server runs this many predicts at once; target_qps_per_replica {ctx.target_qps:g} assumes "
                f"{ASSUMED_PREDICT_SECONDS:g} s per predict",
                spec.concurrency,
            ),
            "batch": batch_option(spec, "the server's batcher", "its admission gate"),
            "secrets": setting(
                "`secrets:` by name, values from `sky serve up --secret NAME` (this environment)",
                ", ".join(spec.secrets) or "none",
            ),
            "limits": runtime(
                "the server answers past them; uvicorn holds headers, keep-alive and connections to them",
                limits_summary(spec),
            ),
        }

    def render(self, app: LoadedApp) -> RenderedTarget:
        image = DockerTarget().render(app)  # the image is the Docker target's, byte for byte
        ctx = self.context(app)
        _, dropped = gpu_names(app.spec)
        files = {name: text for name, text in image.files.items() if name != "README.md"}
        files["README.md"] = render("skypilot/README.md.j2", ctx)
        files["service.yaml"] = render("skypilot/service.yaml.j2", ctx)
        files["task.yaml"] = render("skypilot/task.yaml.j2", ctx)
        files["batch.py"] = render("skypilot/batch.py.j2", ctx)
        base = base_image(app.spec)
        notes = option_notes(self.options(app), app.spec) + dropped + ([base.note] if base.note else [])
        if ctx.grace > ctx.drain:
            notes.append(
                f"grace: SkyServe waits {ctx.drain} s, not {ctx.grace} s, before it terminates a replica it scales "
                "down; longer predicts are cut"
            )
        return RenderedTarget(files=files, copies=image.copies, notes=tuple(notes))
