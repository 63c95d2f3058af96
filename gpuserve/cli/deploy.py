from __future__ import annotations

import re

import click

from ..loader import load_app

TARGETS = ("modal", "runpod", "cog", "replicate", "docker", "kubernetes", "skypilot")
# Docker's rule for a tag; Modal's --tag takes it too.
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def _tag(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not TAG.match(value):
        raise click.BadParameter(
            f"{value!r} is not a tag: letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'. "
            "Fix: pass e.g. --tag v3, or leave it out for a hash of the rendered directory"
        )
    return value


@click.command("deploy")
@click.argument("app")
@click.option("--target", "-t", required=True, type=click.Choice(TARGETS), help="Where to deploy (replicate = cog).")
@click.option("--dry-run", is_flag=True, help="Print every step with its arguments (secrets masked); change nothing.")
@click.option(
    "-o", "--build-dir", help="Where the target's directory is rendered (default build/<target>, as gpuserve build)."
)
@click.option(
    "--registry",
    help="runpod, docker, kubernetes, skypilot: REGISTRY/NAMESPACE the image is pushed to, e.g. ghcr.io/acme.",
)
@click.option(
    "--image",
    help="runpod, docker, kubernetes, skypilot: the whole image reference instead (a tag is added when it has none).",
)
@click.option(
    "--tag", callback=_tag, help="Image and Modal deployment tag (default: a hash of the rendered directory)."
)
@click.option("--model", "model", help="cog/replicate: the Replicate model, OWNER/NAME; its page must exist.")
@click.option("--push", is_flag=True, help="docker: push the image after building it.")
@click.option(
    "--secrets-from-env",
    is_flag=True,
    help="modal, kubernetes: store the spec's secrets (as Modal secrets, as a Secret) from this environment.",
)
@click.option("--registry-auth", help="runpod: the id of RunPod's credential for a private registry.")
def command(
    app: str,
    target: str,
    dry_run: bool,
    build_dir: str | None,
    registry: str | None,
    image: str | None,
    tag: str | None,
    model: str | None,
    push: bool,
    secrets_from_env: bool,
    registry_auth: str | None,
) -> None:
    """Deploy APP to a platform with its own tools: render, build, push, then create or update the endpoint.

    Every tool, credential and option the target needs is checked first, and all that are missing are named
    with their fix before anything runs. With --dry-run the plan is printed and nothing changes; missing items
    are listed under the plan and the exit status stays 0.
    """
    from ..deploy import ALIASES, DeployOptions, plan_deploy, render_plan

    loaded = load_app(app)
    kind = ALIASES.get(target, target)
    options = DeployOptions(
        app=app,
        target=kind,
        build_dir=build_dir or f"build/{kind}",
        tag=tag,
        registry=registry,
        image=image,
        model=model,
        push=push,
        secrets_from_env=secrets_from_env,
        registry_auth=registry_auth,
    )
    plan = plan_deploy(loaded, options)
    if dry_run:
        click.echo(render_plan(plan, dry_run=True), nl=False)
        return
    from ..deploy.execute import Executor, require
    from ..deploy.plan import fill_text

    require()
    from rich.console import Console

    bindings = Executor(plan, loaded, Console(stderr=True)).run()
    click.echo(fill_text(plan.done, bindings))
