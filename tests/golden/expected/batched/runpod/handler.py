"""RunPod serverless worker for the model 'batched-upper'.

Rendered by gpuserve 0.1.0 from batched:BatchedUpper (target: runpod). Edit the model, then rebuild.
Runs locally too: `python handler.py` (reads test_input.json), `python handler.py --test_input '{...}'`,
or `python handler.py --rp_serve_api` for RunPod's local /runsync, /run and /stream API.
"""

import runpod

from gpuserve.runtime.runpod_worker import RunpodWorker

worker = RunpodWorker.load('batched:BatchedUpper')

if __name__ == "__main__":
    worker.setup()  # once, before the worker takes its first job
    try:
        # RunPod's worker loop handles SIGTERM/SIGINT: jobs in flight finish, then start() returns.
        runpod.serverless.start(worker.config())
    finally:
        worker.shutdown()
