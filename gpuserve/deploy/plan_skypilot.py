"""SkyPilot: build and push the image, then `sky serve up` the service with that image and the secrets by name.

`sky` acts on its API server (local or remote) and the clouds `sky check` enables. Each secret goes as `--secret NAME`,
which sky reads from this environment: no value reaches a command line, a file or the plan.
"""

from __future__ import annotations

from .context import DeployContext, image_steps, namespace_checks, render_step
from .plan import Command, Plan, Step
from .preflight import Check, docker, given, problems, tool, variable

SKY_FIX = "install SkyPilot (`pip install 'skypilot[aws,gcp,kubernetes]'`, the clouds you use) and run `sky check`"
# A private registry: SkyPilot logs in on each replica with these (https://docs.skypilot.co, "Docker containers").
REGISTRY_LOGIN = ("SKYPILOT_DOCKER_USERNAME", "SKYPILOT_DOCKER_PASSWORD", "SKYPILOT_DOCKER_SERVER")


def plan(ctx: DeployContext) -> Plan:
    options, env, spec = ctx.options, ctx.env, ctx.app.spec
    image = ctx.image()
    checks: list[Check] = [
        *docker(env, "it builds and pushes the image"),
        tool("sky", env, "it launches the service", SKY_FIX),
        given(
            "--registry",
            options.registry or options.image,
            "every replica pulls the image from a registry you push to",
            "pass --registry REGISTRY/NAMESPACE (e.g. ghcr.io/acme), or --image REF",
        ),
        *(
            variable(
                name,
                env,
                f"`sky serve up --secret {name}` sends its value from this environment",
                f"export {name}=... before deploying",
            )
            for name in spec.secrets
        ),
    ]
    checks += namespace_checks(image, options)
    directory = options.build_dir
    secrets = tuple(arg for name in spec.secrets for arg in ("--secret", name))
    steps: list[Step] = [
        render_step(ctx, "the image's directory, service.yaml and task.yaml"),
        *image_steps(image, directory, " the replicas pull from"),
        Command(
            "Launch the service: a load balancer, and replicas of the image",
            (
                "sky",
                "serve",
                "up",
                "-n",
                ctx.name,
                f"{directory}/service.yaml",
                "--image-id",
                f"docker:{image}",
                *secrets,
                "--yes",
            ),
            fix="read sky's output: `sky check` lists the clouds it may use; `sky serve logs "
            f"{ctx.name} 1` shows a replica that does not become ready",
        ),
    ]
    notes: tuple[str, ...] = (
        "a private registry needs SkyPilot's login on each replica: pass "
        + ", ".join(f"--secret {name}" for name in REGISTRY_LOGIN)
        + " to `sky serve up` yourself",
    )
    if image.startswith("<REGISTRY>"):
        notes += ("<REGISTRY> stands for --registry, which was not given",)
    missing, found = problems(checks)
    return Plan(
        headline=f"Deploy {ctx.name} ({options.app}) as a SkyServe service on the clouds `sky check` enables",
        steps=tuple(steps),
        missing=missing,
        checked=found,
        notes=notes,
        done=f"service {ctx.name} is up; `sky serve status {ctx.name} --endpoint` prints its address",
    )
