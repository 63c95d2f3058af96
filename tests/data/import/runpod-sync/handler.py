# mypy: ignore-errors
"""A RunPod worker written the way RunPod's docs write one: the model loads at import, the handler reads keys."""

import os

import runpod

PREFIX = os.environ.get("PREFIX", "> ")
MODEL = {"scale": 2, "loads": 1}  # stands for weights loaded once per worker, at import


def handler(job):
    job_input = job["input"]
    prompt = job_input["prompt"]
    count = job_input.get("count", 2)
    if not prompt:
        return {"error": "prompt must not be empty"}
    if prompt == "boom":
        raise ValueError("prompt must not be boom")
    MODEL["loads"] += 0
    return {"text": PREFIX + " ".join([prompt] * count), "scale": MODEL["scale"]}


runpod.serverless.start({"handler": handler})
