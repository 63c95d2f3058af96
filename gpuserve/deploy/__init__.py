"""`gpuserve deploy`: from a model to a live endpoint with each platform's own tools and API.

A deploy is a `Plan`: one planner per target turns the rendered directory and the options into steps (render,
commands, API calls), after preflight has checked the tools, credentials and options each needs. `--dry-run`
prints the plan (secrets masked) and changes nothing; the `Executor` runs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from ..adapters import get_target
from ..loader import LoadedApp
from . import plan_docker, plan_kubernetes, plan_modal, plan_replicate, plan_runpod, plan_skypilot
from .context import DeployContext, DeployOptions, content_tag
from .plan import Plan, render_plan
from .preflight import PreflightError

PLANNERS: dict[str, Callable[[DeployContext], Plan]] = {
    "modal": plan_modal.plan,
    "runpod": plan_runpod.plan,
    "cog": plan_replicate.plan,
    "docker": plan_docker.plan,
    "kubernetes": plan_kubernetes.plan,
    "skypilot": plan_skypilot.plan,
}
# `--target replicate` is the cog target deployed to Replicate.
ALIASES = {"replicate": "cog"}


def plan_deploy(
    app: LoadedApp, options: DeployOptions, env: Mapping[str, str] | None = None, home: Path | None = None
) -> Plan:
    """The plan for deploying app: every step with its arguments, and what preflight found missing."""
    rendered = get_target(options.target).render(app)  # a BuildError: the target cannot express the spec
    context = DeployContext(
        app=app,
        options=options,
        rendered=rendered,
        tag=options.tag or content_tag(rendered),
        env=dict(os.environ if env is None else env),
        home=home or Path.home(),
    )
    return PLANNERS[options.target](context)


__all__ = ["ALIASES", "PLANNERS", "DeployOptions", "Plan", "PreflightError", "plan_deploy", "render_plan"]
