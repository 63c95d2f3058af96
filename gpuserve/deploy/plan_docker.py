"""Docker: build the image from the rendered directory, and push it when asked."""

from __future__ import annotations

from .context import DeployContext, has_namespace, render_step
from .plan import Command, Plan, Step
from .preflight import Check, docker, problems


def plan(ctx: DeployContext) -> Plan:
    options = ctx.options
    image = ctx.image(placeholder=None)
    checks: list[Check] = docker(ctx.env, "it builds the image")
    if options.push and not has_namespace(image):
        checks.append(
            Check(
                "--push",
                False,
                f"{image} names no registry or namespace, so `docker push` would go to Docker Hub's official "
                "library, which refuses it",
                "pass --registry REGISTRY/NAMESPACE (e.g. ghcr.io/acme, or docker.io/acme) or an --image with one",
            )
        )
    steps: list[Step] = [
        render_step(ctx, "the Docker image's directory"),
        Command(
            "Build the image",
            ("docker", "build", "-t", image, options.build_dir),
            fix="read docker's output above; `docker build` must work in that directory on its own",
        ),
    ]
    if options.push:
        steps.append(
            Command(
                "Push it to the registry",
                ("docker", "push", image),
                fix=f"log in to the registry (`docker login {image.split('/', 1)[0]}`) and check you may push there",
            )
        )
    missing, found = problems(checks)
    where = "pushed" if options.push else "built locally (add --push to push it)"
    return Plan(
        headline=f"Build {ctx.name} ({options.app}) as a Docker image",
        steps=tuple(steps),
        missing=missing,
        checked=found,
        done=f"Image {image} {where}; run it as {options.build_dir}/README.md shows",
    )
