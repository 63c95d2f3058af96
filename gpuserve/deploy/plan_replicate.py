"""Replicate: `cog push` a new version of the model, then create or update its deployment through the HTTP API.

Replicate's own order: the model page must exist before `cog push` (it is made at replicate.com/create), the
push makes a version, and a deployment runs one version on one hardware type (`POST /v1/deployments` with the
rendered deployment.json; `PATCH /v1/deployments/{owner}/{name}` moves an existing one to the new version).
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import DeployError
from .context import REPLICATE_API, REPLICATE_API_ENV, DeployContext, render_step
from .plan import Bindings, Call, Choose, Command, Later, Plan, Secret
from .preflight import Check, docker, given, problems, tool, variable

TOKEN = "REPLICATE_API_TOKEN"
COG_FIX = (
    "install the cog CLI (https://github.com/replicate/cog#install, e.g. `brew install cog`) and put `cog` on PATH"
)


def owner_and_name(model: str | None) -> tuple[str, str] | None:
    """OWNER/NAME (an r8.im/ prefix is allowed), or None when it is not one."""
    if not model:
        return None
    parts = model.removeprefix("r8.im/").split("/")
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


def read_version(answer: Any) -> Bindings:
    latest = answer.get("latest_version") or {}
    if not latest.get("id"):
        raise DeployError(
            "Replicate shows no version of the model after `cog push`. Fix: check the push's output above, "
            "and that --model names the model it pushed to"
        )
    return {"version": str(latest["id"])}


def plan(ctx: DeployContext) -> Plan:
    options, env = ctx.options, ctx.env
    named = owner_and_name(options.model)
    model_check = given(
        "--model",
        options.model,
        "Replicate needs the model's owner and name",
        f"pass --model OWNER/{ctx.name} (your Replicate user or organisation)",
    )
    if options.model and named is None:
        model_check = Check(
            "--model", False, f"{options.model!r} is not OWNER/NAME", f"pass it as OWNER/NAME, e.g. acme/{ctx.name}"
        )
    checks = [
        tool("cog", env, "`cog push` builds and uploads the model", COG_FIX),
        *docker(env, "`cog push` builds the image with Docker"),
        variable(
            TOKEN,
            env,
            "cog and Replicate's API need it",
            f"copy an API token from https://replicate.com/account/api-tokens, then export {TOKEN}=...",
        ),
        model_check,
    ]
    if options.secrets_from_env:
        checks.append(
            Check(
                "--secrets-from-env",
                False,
                "Replicate has no secret store for a model's environment",
                "leave the option out; read secrets another way (see docs/targets/replicate.md)",
            )
        )
    missing, found = problems(checks)
    owner, model_name = named or ("<OWNER>", ctx.name)
    token = Secret(TOKEN, env.get(TOKEN, ""))
    api = ctx.api(REPLICATE_API_ENV, REPLICATE_API)
    model_url = f"{api}/v1/models/{owner}/{model_name}"
    deployment = json.loads(ctx.rendered.files["deployment.json"])
    settings = {k: deployment[k] for k in ("hardware", "min_instances", "max_instances")}
    version = Later("version", "the id of the version cog push made")
    deployment_name = deployment["name"]
    steps = (
        render_step(ctx, "the cog project"),
        Call(
            "Check that the model page exists (cog push needs it)",
            "GET",
            model_url,
            token,
            refusals={
                404: f"the model {owner}/{model_name} does not exist on Replicate, and `cog push` cannot make it. "
                f"Fix: create it at https://replicate.com/create (owner {owner}, name {model_name}), then deploy again"
            },
        ),
        Command(
            "Log cog in to Replicate with the token",
            ("cog", "login", "--token-stdin"),
            fix=f"check that {TOKEN} is a valid token (https://replicate.com/account/api-tokens)",
            stdin=token,
        ),
        Command(
            "Build and push the model; Replicate makes a new version",
            ("cog", "push", f"r8.im/{owner}/{model_name}"),
            fix="read cog's output above; `cog build` must work in that directory, with Docker running",
            cwd=options.build_dir,
        ),
        Call("Read the new version's id", "GET", model_url, token, read=read_version),
        Call(
            f"Find the deployment {owner}/{deployment_name}",
            "GET",
            f"{api}/v1/deployments/{owner}/{deployment_name}",
            token,
            read=lambda _answer: {"deployment": f"{owner}/{deployment_name}"},
            absent=404,
        ),
        Choose(
            "Create the deployment, or move the one found to the new version",
            "deployment",
            create=Call(
                "when none was found",
                "POST",
                f"{api}/v1/deployments",
                token,
                body={"name": deployment_name, "model": f"{owner}/{model_name}", "version": version, **settings},
            ),
            update=Call(
                "when one was found",
                "PATCH",
                f"{api}/v1/deployments/{owner}/{deployment_name}",
                token,
                body={"version": version, **settings},
            ),
        ),
    )
    return Plan(
        headline=f"Deploy {ctx.name} ({options.app}) to Replicate as {owner}/{model_name}",
        steps=steps,
        missing=missing,
        checked=found,
        notes=("<OWNER> stands for --model, which was not given",) if named is None else (),
        done=f"Replicate deployment {owner}/{deployment_name} runs version {{version}}: POST "
        f"https://api.replicate.com/v1/deployments/{owner}/{deployment_name}/predictions with " + '{"input": {...}}',
    )
