"""A set of specs that covers each GPU, CPU-only, multi-GPU, fallback lists, secrets, env values and apt packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gpuserve.gpus import GPU_TYPES
from gpuserve.loader import LoadedApp, load_app
from tests.apps import ALL

TORCH = "torch==2.13.0"

VARIANTS: dict[str, dict[str, Any]] = {
    "cpu": {},
    **{f"gpu-{name.lower()}": {"gpu": name, "image": ("pip", TORCH)} for name in GPU_TYPES},
    "h100-x2": {"gpu": "H100:2", "image": ("pip", TORCH)},
    "a100-80gb-x2": {"gpu": "A100-80GB:2"},
    "l40s-x2-no-torch": {"gpu": "L40S:2"},
    "fallback-a10-l4-l40s": {"gpu": ["A10", "L4", "L40S"], "image": ("pip", TORCH)},
    "fallback-b200-h200": {"gpu": ["B200", "H200"], "image": ("pip", TORCH)},
    "fallback-h100-a100": {"gpu": ["H100", "A100-80GB"], "image": ("pip", "torch>=2")},
    "torch-unknown": {"gpu": "L40S", "image": ("pip", "torch==2.99.0")},
    "secrets": {"gpu": "L4", "secrets": ["HF_TOKEN", "API_KEY"], "keep_warm": 1, "max_containers": 2},
    "env-and-apt": {"image": ("env-apt", None), "concurrency": 4, "timeout": 30, "setup_timeout": 600},
    "weights": {"gpu": "L40S", "weights": "all", "grace": 90, "spot_notices": "aws"},
}
WEIGHTS = (
    'weights=[gpuserve.HuggingFace("org/tiny-model", revision="main", allow_patterns=["*.json", "*.safetensors"], '
    'bake=True), gpuserve.URL("https://example.org/w/model.bin", sha256="' + "ab" * 32 + '"), '
    'gpuserve.Local("./weights")]'
)


def _image(kind: str, value: str | None) -> str:
    if kind == "pip":
        return f"gpuserve.Image().pip_install({value!r})"
    env = 'MESSAGE="it\'s $HOME, `x` & \\\\ {{ y }}", TOKENIZERS_PARALLELISM="false"'
    return f'gpuserve.Image(python="3.12").apt_install("ffmpeg", "libsndfile1=1.2.0-1").env({env})'


def write_variant(directory: Path, key: str, options: dict[str, Any]) -> Path:
    """A one-class app file whose decorator has these options."""
    parts = [f"{k}={v!r}" for k, v in options.items() if k not in ("image", "weights")]
    if "weights" in options:
        parts.append(WEIGHTS)
        (directory / "weights").mkdir(exist_ok=True)
        (directory / "weights" / "config.json").write_text("{}")
    if "image" in options:
        parts.append(f"image={_image(*options['image'])}")
    module = "variant_" + key.replace("-", "_")
    source = directory / f"{module}.py"
    source.write_text(
        "import gpuserve\n\n\n"
        f"@gpuserve.model({', '.join(parts)})\n"
        "class Variant:\n"
        "    def predict(self, text: str = 'hi', times: int = 1) -> str:\n"
        "        return text * times\n"
    )
    return source


def matrix_apps(directory: Path) -> list[tuple[str, LoadedApp]]:
    """The variants above and every example and test model, loaded."""
    apps = [(key, load_app(str(write_variant(directory, key, options)))) for key, options in VARIANTS.items()]
    return apps + [(case.key, load_app(case.ref)) for case in ALL]
