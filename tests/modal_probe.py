"""Run inside a virtualenv with modal installed, in a built modal directory: print what Modal registered.

The options are read from the real modal objects: every keyword modal's _Function._from_local was
created with (wrapped before the app is imported), plus the class service function's own info().
"""

from __future__ import annotations

import inspect
import json
import sys

from modal import _functions

captured: list[dict[str, object]] = []
original = _functions._Function._from_local


def recording(*args: object, **kwargs: object) -> object:
    bound = inspect.signature(original).bind(*args, **kwargs)
    captured.append(dict(bound.arguments))
    return original(*args, **kwargs)


_functions._Function._from_local = staticmethod(recording)

sys.path.insert(0, ".")
import modal_app  # noqa: E402

cls = getattr(modal_app, sys.argv[1])
service = cls._get_class_service_function()
options = next(c for c in captured if c.get("app") is not None)
report = {
    "app_name": modal_app.app.name,
    "gpu": options.get("gpu"),
    "min_containers": options.get("min_containers"),
    "max_containers": options.get("max_containers"),
    "scaledown_window": options.get("scaledown_window"),
    "timeout": options.get("timeout"),
    "startup_timeout": options.get("startup_timeout"),
    "max_concurrent_inputs": options.get("max_concurrent_inputs"),
    "secrets": len(list(options.get("secrets") or [])),  # type: ignore[call-overload]
    "volumes": sorted(str(k) for k in dict(options.get("volumes") or {})),  # type: ignore[call-overload]
}
info = service.info()
report["info"] = {
    "gpus": [list(g) for g in info.gpus],
    "timeout": info.timeout,
    "max_inputs": info.concurrency_info.max_inputs if info.concurrency_info else None,
    "secrets": [str(s) for s in info.secrets],
    "method_names": list(info.method_names),
    "volumes": sorted(info.volumes),
}
print(json.dumps(report))
