"""Where a Kubernetes pod may run: node labels for GPU types and spot capacity, as data the templates print.

Node labels differ by cluster. The defaults are the ones that work on most clusters; docs/targets/kubernetes.md
shows the kustomize patch for the others (GKE's `cloud.google.com/gke-accelerator`, EKS managed node groups'
`eks.amazonaws.com/capacityType`, AKS's `kubernetes.azure.com/scalesetpriority`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..gpus import GpuRequest
from ..spec import ModelSpec

# NVIDIA GPU feature discovery (part of the GPU operator) labels each node with the product name nvidia-smi
# prints, spaces as dashes. One gpuserve GPU is several products (SXM and PCIe boards, AWS's A10G).
GPU_LABEL = "nvidia.com/gpu.product"
GPU_PRODUCTS: dict[str, tuple[str, ...]] = {
    "T4": ("Tesla-T4",),
    "L4": ("NVIDIA-L4",),
    "A10": ("NVIDIA-A10", "NVIDIA-A10G"),
    "A100-40GB": ("NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-PCIE-40GB"),
    "A100-80GB": ("NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe"),
    "L40S": ("NVIDIA-L40S",),
    "RTX-PRO-6000": ("NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition",),
    "H100": ("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe", "NVIDIA-H100-NVL"),
    "H200": ("NVIDIA-H200", "NVIDIA-H200-NVL"),
    "B200": ("NVIDIA-B200",),
}
# GPU feature discovery's label for the node's driver: a CUDA 13 image on an older driver runs on the CPU, silently.
DRIVER_LABEL = "nvidia.com/cuda.driver.major"
# The resource the NVIDIA device plugin advertises; GKE, AKS and the GPU operator taint GPU nodes with it.
GPU_RESOURCE = "nvidia.com/gpu"
# Karpenter labels every node it starts with its capacity type (EKS, AKS node auto-provisioning, others).
SPOT_LABEL = "karpenter.sh/capacity-type"
SPOT_VALUE = "spot"
# Taints the clouds put on spot nodes: GKE (Autopilot, and Standard pools that ask for it) and AKS spot pools.
SPOT_TAINTS: tuple[tuple[str, str], ...] = (
    ("cloud.google.com/gke-spot", "true"),
    ("kubernetes.azure.com/scalesetpriority", "spot"),
)
# Preferred-affinity weights (1-100): the fallback list in order, 100 down by 10; spot below any GPU step.
FIRST_WEIGHT = 100
WEIGHT_STEP = 10
SPOT_WEIGHT = 5


@dataclass(frozen=True)
class Expression:
    key: str
    operator: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Preference:
    weight: int
    expression: Expression


@dataclass(frozen=True)
class Toleration:
    key: str
    operator: str  # Equal (with value) or Exists
    value: str
    effect: str


@dataclass(frozen=True)
class Placement:
    """The pod's node affinity and tolerations, and what the option table says about them."""

    required: tuple[Expression, ...]  # one nodeSelectorTerm: every expression must hold
    preferred: tuple[Preference, ...]
    tolerations: tuple[Toleration, ...]
    gpu_products: tuple[str, ...]  # the label values allowed, in fallback order

    @property
    def gpu_summary(self) -> str:
        return ", ".join(self.gpu_products)


def products(gpu: GpuRequest) -> list[tuple[str, tuple[str, ...]]]:
    """Each GPU type of the request with its product labels, in fallback order."""
    return [(name, GPU_PRODUCTS[name]) for name in gpu.types]


def placement(spec: ModelSpec, min_driver: str = "") -> Placement:
    """GPU type (required: any of the list; preferred: in its order), the driver the image's CUDA needs, and
    capacity type (spot) as node affinity."""
    required: list[Expression] = []
    preferred: list[Preference] = []
    tolerations: list[Toleration] = []
    allowed: list[str] = []
    if spec.gpu is not None:
        found = products(spec.gpu)
        allowed = [product for _, names in found for product in names]
        required.append(Expression(GPU_LABEL, "In", tuple(allowed)))
        if min_driver:
            required.append(Expression(DRIVER_LABEL, "Gt", (str(int(min_driver) - 1),)))
        if len(found) > 1:
            preferred += [
                Preference(FIRST_WEIGHT - WEIGHT_STEP * index, Expression(GPU_LABEL, "In", names))
                for index, (_, names) in enumerate(found)
            ]
        tolerations.append(Toleration(GPU_RESOURCE, "Exists", "", "NoSchedule"))
    spot = Expression(SPOT_LABEL, "In", (SPOT_VALUE,))
    if spec.spot == "off":
        required.append(Expression(SPOT_LABEL, "NotIn", (SPOT_VALUE,)))  # also holds on nodes without the label
    elif spec.spot == "only":
        required.append(spot)
    else:
        preferred.append(Preference(SPOT_WEIGHT, spot))
    if spec.spot != "off":
        tolerations += [Toleration(key, "Equal", value, "NoSchedule") for key, value in SPOT_TAINTS]
    return Placement(tuple(required), tuple(preferred), tuple(tolerations), tuple(allowed))


def spot_summary(spec: ModelSpec) -> str:
    """The spot option as the option table says it."""
    taints = ", ".join(f"{key}={value}" for key, value in SPOT_TAINTS)
    if spec.spot == "off":
        return f"required {SPOT_LABEL} NotIn [{SPOT_VALUE}]; spot taints not tolerated"
    kind = "required" if spec.spot == "only" else f"preferred (weight {SPOT_WEIGHT})"
    return f"{kind} {SPOT_LABEL} In [{SPOT_VALUE}]; tolerates {taints}"
