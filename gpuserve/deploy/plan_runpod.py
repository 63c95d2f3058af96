"""RunPod: build and push the worker image, then create or update the endpoint through the REST API v2.

The calls follow RunPod's OpenAPI document (tests/data/platforms/runpod/openapi-v2.json): `GET /v2/serverless`
lists the endpoints, `POST /v2/serverless` takes CreateEndpointRequest (the rendered endpoint.json, its image
filled in), `PATCH /v2/serverless/{id}` takes UpdateEndpointRequest (the same body without `type`, which an
endpoint keeps for life). A changed image makes RunPod roll out a new release as workers cycle.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import DeployError
from .context import RUNPOD_API, RUNPOD_API_ENV, DeployContext, image_steps, render_step
from .plan import Bindings, Call, Choose, Plan, Reader, Secret
from .preflight import Check, docker, given, problems, variable

KEY = "RUNPOD_API_KEY"


def endpoint_bodies(ctx: DeployContext, image: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the create body, the update body) from the rendered endpoint.json, with the pushed image."""
    create: dict[str, Any] = json.loads(ctx.rendered.files["endpoint.json"])
    create["image"] = image
    if ctx.options.registry_auth:
        create["registry"] = ctx.options.registry_auth
    update = {key: value for key, value in create.items() if key != "type"}
    return create, update


def find_endpoint(name: str) -> Reader:
    """Read the id of the endpoint called `name` from `GET /v2/serverless`; two of that name stop the deploy."""

    def read(answer: Any) -> Bindings:
        found = [e for e in answer.get("endpoints", []) if e.get("name") == name]
        if len(found) > 1:
            ids = ", ".join(str(e.get("id")) for e in found)
            raise DeployError(
                f"RunPod has {len(found)} endpoints named {name!r} (ids {ids}); gpuserve deploy updates one by name. "
                "Fix: delete or rename the extra ones in the RunPod console, then deploy again"
            )
        return {"endpoint_id": str(found[0]["id"])} if found else {}

    return read


def read_endpoint(answer: Any) -> Bindings:
    """The endpoint's id and its /runsync URL, from the created or updated endpoint."""
    urls = answer.get("requestUrls") or {}
    return {"endpoint_id": str(answer.get("id", "")), "endpoint_url": str(urls.get("runSync", ""))}


def plan(ctx: DeployContext) -> Plan:
    options, env = ctx.options, ctx.env
    image = ctx.image()
    checks: list[Check] = [
        *docker(env, "it builds and pushes the worker image"),
        variable(
            KEY,
            env,
            "RunPod's API needs it",
            f"create a key at https://www.runpod.io/console/user/settings, then export {KEY}=...",
        ),
        given(
            "--registry",
            options.registry or options.image,
            "RunPod pulls the worker image from a registry you push to",
            "pass --registry REGISTRY/NAMESPACE (e.g. docker.io/acme or ghcr.io/acme), or --image REF",
        ),
    ]
    if options.secrets_from_env:
        checks.append(
            Check(
                "--secrets-from-env",
                False,
                "RunPod's API has no call that stores secrets",
                f"create {', '.join(ctx.app.spec.secrets) or 'them'} in the RunPod console (Settings, Secrets) "
                "and leave the option out",
            )
        )
    missing, found = problems(checks)
    token = Secret(KEY, env.get(KEY, ""))
    api = ctx.api(RUNPOD_API_ENV, RUNPOD_API)
    create, update = endpoint_bodies(ctx, image)
    directory = options.build_dir
    steps = (
        render_step(ctx, "the RunPod worker"),
        *image_steps(
            image, directory, "", "Build the worker image (linux/amd64, what RunPod's hosts run)", "linux/amd64"
        ),
        Call(
            f"Find the endpoint named {ctx.name!r}",
            "GET",
            f"{api}/v2/serverless",
            token,
            read=find_endpoint(ctx.name),
        ),
        Choose(
            "Create the endpoint, or update the one found",
            "endpoint_id",
            create=Call(
                "when none was found",
                "POST",
                f"{api}/v2/serverless",
                token,
                body=create,
                read=read_endpoint,
            ),
            update=Call(
                "when one was found (a new image rolls out as workers cycle)",
                "PATCH",
                f"{api}/v2/serverless/{{endpoint_id}}",
                token,
                body=update,
                read=read_endpoint,
            ),
        ),
    )
    notes: tuple[str, ...] = ()
    if ctx.app.spec.secrets:
        names = ", ".join(ctx.app.spec.secrets)
        notes = (
            f"the endpoint reads {names} as RunPod secrets ({{{{ RUNPOD_SECRET_NAME }}}}): create each in the RunPod "
            "console (Settings, Secrets) under the same name before the first job",
        )
    if image.startswith("<REGISTRY>"):
        notes += ("<REGISTRY> stands for --registry, which was not given",)
    return Plan(
        headline=f"Deploy {ctx.name} ({options.app}) to RunPod serverless",
        steps=steps,
        missing=missing,
        checked=found,
        notes=notes,
        done='RunPod endpoint {endpoint_id}: POST {endpoint_url} with {"input": {...}}',
    )
