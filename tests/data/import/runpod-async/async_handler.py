# mypy: ignore-errors
"""An async RunPod handler that checks its input with runpod's own validator."""

import asyncio

import runpod
from runpod.serverless.utils.rp_validator import validate

INPUT_SCHEMA = {
    "text": {"type": str, "required": True},
    "repeat": {"type": int, "required": False, "default": 1, "constraints": lambda n: 1 <= n <= 3},
    "upper": {"type": bool, "required": False, "default": False},
}


async def handler(job):
    checked = validate(job["input"], INPUT_SCHEMA)
    if "errors" in checked:  # joined: runpod's local API cannot answer an error that is a list
        return {"error": " ".join(checked["errors"])}
    values = checked["validated_input"]
    await asyncio.sleep(0)
    text = values["text"].upper() if values["upper"] else values["text"]
    return [text] * values["repeat"]


runpod.serverless.start({"handler": handler, "concurrency_modifier": lambda current: 4})
