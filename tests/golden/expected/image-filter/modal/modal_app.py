"""Modal app for the model 'image-filter'.

Rendered by gpuserve 0.1.0 from app:ImageFilter (target: modal). Edit the model, then rebuild.
Deploy with `modal deploy modal_app.py`; see README.md for secrets and local testing.
"""

from typing import Any

import modal

image = (
    modal.Image.debian_slim(python_version='3.11')
    .pip_install(
        'pydantic==2.14.3',
        'packaging==26.3',
        'fastapi==0.165.0',
        'uvicorn==0.54.0',
        'uvloop==0.23.0',
        'httptools==0.9.0',
        'prometheus_client==0.26.0',
        'python-multipart==0.0.34',
        'httpx==0.28.1',
        'boto3==1.44.8',
        'pillow==13.0.0',
    )
    .env({'GPUSERVE_CACHE_DIR': '/cache'})
    # Code last: Modal adds local sources at container start, after every build step.
    .add_local_python_source('gpuserve', 'app')
)

app = modal.App('image-filter', image=image)

# Model weights (the spec's, and what the Hugging Face or torch caches download) persist here between containers.
cache = modal.Volume.from_name('gpuserve-cache', create_if_missing=True)


@app.cls(
    gpu=None,
    min_containers=0,
    max_containers=2,
    scaledown_window=300,
    timeout=60,
    startup_timeout=1800,
    secrets=[],
    volumes={'/cache': cache},
)
@modal.concurrent(max_inputs=4)
class ImageFilter:
    @modal.enter()
    def setup(self) -> None:
        """Load the model once per container, before the first input."""
        from gpuserve.runtime import ModelHost

        self.host = ModelHost.from_ref('app:ImageFilter')
        self.host.setup()
        if not modal.is_local():
            cache.commit()  # weights fetched into the Volume are there for the next container
        self.host.shutdown_at_exit()  # also on preemption's SIGINT, should the container stop before exit hooks

    @modal.exit()
    def shutdown(self) -> None:
        """Scale-down, redeploys and preemption (SIGINT) all end here: drain for the grace, then shut down."""
        self.host.stop(grace=30)

    @modal.method()
    def predict(
        self,
        *,
        image: str,
        blur: float = 2,
        width: int | None = None,
    ) -> Any:
        """The model's input as keyword arguments, validated against its schema; returns JSON-ready output."""
        inputs = {'image': image, 'blur': blur, 'width': width}
        return self.host.predict(inputs)

    @modal.asgi_app()
    def web(self) -> Any:
        """The gpuserve HTTP contract: POST /predict, GET /health, /openapi.json, /docs."""
        from gpuserve.runtime.server import create_app

        return create_app(self.host)
