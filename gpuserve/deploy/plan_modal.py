"""Modal: `modal deploy` in the rendered directory; the modal CLI builds the image and creates the app itself.

With --secrets-from-env, the spec's secrets are stored in Modal first (`modal secret create --force`), from
this environment, through a 0600 file that is removed afterwards, so their values never reach a command line.
"""

from __future__ import annotations

from .context import DeployContext, render_step
from .plan import Command, Plan, Secret, SecretFile, Step
from .preflight import Check, modal_token, problems, tool, variable

MODAL_FIX = "pip install modal (the version in the rendered requirements.txt), then check that `modal` is on PATH"


def plan(ctx: DeployContext) -> Plan:
    options, env, spec = ctx.options, ctx.env, ctx.app.spec
    checks: list[Check] = [
        tool("modal", env, "it deploys the app", MODAL_FIX),
        modal_token(env, ctx.home),
    ]
    steps: list[Step] = [render_step(ctx, "the Modal app")]
    if options.secrets_from_env:
        for name in spec.secrets:
            stored = SecretFile((Secret(name, env.get(name, "")),))
            checks.append(
                variable(
                    name,
                    env,
                    "--secrets-from-env stores it in Modal from this environment",
                    f"export {name}=..., or create the secret yourself (`modal secret create {name} {name}=...`) "
                    "and leave out --secrets-from-env",
                )
            )
            steps.append(
                Command(
                    f"Store the secret {name} in Modal, from this environment",
                    ("modal", "secret", "create", "--force", name, "--from-json", stored),
                    fix="check the Modal token's workspace, and that it may create secrets",
                )
            )
    steps.append(
        Command(
            "Deploy the app (Modal builds the image, then replaces the running version)",
            ("modal", "deploy", "modal_app.py", "--tag", ctx.tag),
            fix="read modal's output above; `python -c 'import modal_app'` must work in that directory",
            cwd=options.build_dir,
        )
    )
    notes: tuple[str, ...] = ()
    if spec.secrets and not options.secrets_from_env:
        names = ", ".join(spec.secrets)
        notes = (
            f"the app reads the Modal secrets {names}: create each once (`modal secret create NAME NAME=...`), "
            "or pass --secrets-from-env to store them from this environment",
        )
    missing, found = problems(checks)
    return Plan(
        headline=f"Deploy {ctx.name} ({options.app}) to Modal",
        steps=tuple(steps),
        missing=missing,
        checked=found,
        notes=notes,
        done=f"Modal app {ctx.name} deployed (tag {ctx.tag}); its web endpoint's URL is in modal's output above",
    )
