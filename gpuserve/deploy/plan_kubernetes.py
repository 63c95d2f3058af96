"""Kubernetes: build and push the image, point the kustomize base at it, apply it, wait for the rollout.

kubectl acts on its current context and namespace. With --secrets-from-env, the spec's secrets become the Secret
the Deployment reads by name, applied through kubectl's stdin, so their values never reach a command line or a file.
"""

from __future__ import annotations

import json

from ..adapters.kubernetes import KubernetesTarget
from .context import DeployContext, image_steps, namespace_checks, render_step
from .plan import Command, Plan, Secret, Step
from .preflight import Check, docker, given, problems, tool, variable

KUBECTL_FIX = "install kubectl (https://kubernetes.io/docs/tasks/tools/) and point it at your cluster"
KUSTOMIZE_FIX = "install kustomize (https://kubectl.docs.kubernetes.io/installation/kustomize/)"


def secret_manifest(ctx: DeployContext) -> Secret:
    """The Secret the Deployment's secretKeyRefs name, from this environment; printed masked."""
    spec, name = ctx.app.spec, f"{ctx.name}-secrets"
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": ctx.name}},
        "type": "Opaque",
        "stringData": {key: ctx.env.get(key, "") for key in spec.secrets},
    }
    return Secret(f"Secret {name} ({', '.join(spec.secrets)})", json.dumps(manifest))


def plan(ctx: DeployContext) -> Plan:
    options, env, spec = ctx.options, ctx.env, ctx.app.spec
    image = ctx.image()
    kube = KubernetesTarget().context(ctx.app)
    checks: list[Check] = [
        *docker(env, "it builds and pushes the image"),
        tool("kubectl", env, "it applies the manifests", KUBECTL_FIX),
        tool("kustomize", env, "it sets the image in k8s/kustomization.yaml", KUSTOMIZE_FIX),
        given(
            "--registry",
            options.registry or options.image,
            "the cluster pulls the image from a registry you push to",
            "pass --registry REGISTRY/NAMESPACE (e.g. ghcr.io/acme), or --image REF",
        ),
    ]
    checks += namespace_checks(image, options)
    directory, k8s = options.build_dir, f"{options.build_dir}/k8s"
    steps: list[Step] = [
        render_step(ctx, "the image's directory and the kustomize base"),
        *image_steps(image, directory, " the cluster pulls from"),
    ]
    if options.secrets_from_env:
        for name in spec.secrets:
            checks.append(
                variable(
                    name,
                    env,
                    "--secrets-from-env stores it in the cluster from this environment",
                    f"export {name}=..., or create the Secret yourself and leave out --secrets-from-env",
                )
            )
        if spec.secrets:
            steps.append(
                Command(
                    f"Store the Secret {kube.secret_name} from this environment",
                    ("kubectl", "apply", "-f", "-"),
                    fix="check that your kubectl context may create Secrets in its namespace",
                    stdin=secret_manifest(ctx),
                )
            )
    steps += [
        Command(
            "Point the kustomize base at the image",
            ("kustomize", "edit", "set", "image", f"{ctx.name}={image}"),
            fix="run it yourself in that directory; kustomize must be able to read kustomization.yaml",
            cwd=k8s,
        ),
        Command(
            f"Apply the manifests ({', '.join(kube.resources)})",
            ("kubectl", "apply", "-k", k8s),
            fix="read kubectl's output: an HTTPScaledObject needs KEDA's HTTP add-on installed, an HPA a custom "
            "metrics API (docs/targets/kubernetes.md)",
        ),
        Command(
            "Wait for the rollout (a GPU node, the image pull and setup_timeout)",
            ("kubectl", "rollout", "status", f"deployment/{ctx.name}", f"--timeout={kube.progress_deadline}s"),
            fix=f"`kubectl describe deployment/{ctx.name}` and the pod's events say why: no GPU node, a pull "
            "error, a failed setup()",
        ),
    ]
    notes: tuple[str, ...] = ()
    if spec.secrets and not options.secrets_from_env:
        notes += (
            f"the pods read {', '.join(spec.secrets)} from the Secret {kube.secret_name}: create it once "
            f"(`kubectl create secret generic {kube.secret_name} --from-env-file=FILE`), or pass --secrets-from-env",
        )
    if image.startswith("<REGISTRY>"):
        notes += ("<REGISTRY> stands for --registry, which was not given",)
    missing, found = problems(checks)
    return Plan(
        headline=f"Deploy {ctx.name} ({options.app}) to the Kubernetes cluster of kubectl's current context",
        steps=tuple(steps),
        missing=missing,
        checked=found,
        notes=notes,
        done=f"Deployment {ctx.name} rolled out; its Service is {ctx.name}:{kube.port} "
        f"(`kubectl port-forward svc/{ctx.name} {kube.port}`)",
    )
