# mypy: ignore-errors
"""A generator RunPod handler: each word is a chunk; the input is passed on whole."""

import runpod


def words(values):
    return str(values.get("text", "")).split()


def handler(job):
    for index, word in enumerate(words(job["input"])):
        if word == "stop":
            yield {"error": f"stopped at word {index}"}
            return
        yield {"index": index, "word": word}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler, "return_aggregate_stream": True})
