"""OpenTelemetry traces, only where an OTLP endpoint is configured and the `otel` extra is installed.

OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns them on; the SDK reads the rest of
its standard OTEL_* settings itself. Without an endpoint nothing is imported and requests pay nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("gpuserve")
ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def tracer_from_env(model: str, env: Mapping[str, str] | None = None) -> Any:
    """A tracer exporting over OTLP/HTTP, or None where no endpoint is set (or the packages are missing)."""
    env = os.environ if env is None else env
    if not any(env.get(name) for name in ENDPOINTS):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "gpuserve: an OTLP endpoint is set but OpenTelemetry is not installed: pip install 'gpuserve[otel]'"
        )
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or model}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider.get_tracer("gpuserve")


def start_span(tracer: Any, *, method: str, path: str, headers: dict[bytes, bytes]) -> Any:
    """A server span for one request, continuing the caller's trace (W3C traceparent) where it sent one."""
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind

    carrier = {
        k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items() if k in (b"traceparent", b"tracestate")
    }
    return tracer.start_span(
        f"{method} {path}",
        context=extract(carrier),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path},
    )


def end_span(span: Any, *, status: int, request_id: str, queue_seconds: float | None) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("http.response.status_code", status)
    span.set_attribute("gpuserve.request_id", request_id)
    if queue_seconds is not None:
        span.set_attribute("gpuserve.queue_seconds", queue_seconds)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
