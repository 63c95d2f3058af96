"""modal: modal_app.py imported by the real modal SDK, offline: `predict.local()` and the `@modal.asgi_app()`.

Both run in one process on one instance, as in a Modal container: the first local call runs the `@modal.enter()`
hooks (the model's setup), the web app is served by uvicorn, and `.local()` calls arrive through a small loopback
server (modal_driver.py). Neither needs a Modal token or the network.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...adapters._common import PINS
from ..client import Client
from ..compare import Outcome
from ..processes import free_port, started, wait_ready
from ..venvs import requirement_lines
from .base import Context, Endpoint, timed
from .contract import health, predict_call

DRIVER = Path(__file__).with_name("modal_driver.py")


class ModalRunner:
    target = "modal"

    def endpoints(self, streaming: bool) -> list[str]:
        return ["modal .local()", "modal web"]

    def requirements(self, directory: Path) -> list[str]:
        return [*requirement_lines(directory / "requirements.txt"), f"modal=={PINS['modal']}"]

    @contextmanager
    def serve(self, context: Context) -> Iterator[list[Endpoint]]:
        # A copy beside the logs: run from the package, its folder would come first on sys.path.
        driver = shutil.copyfile(DRIVER, context.work / "modal_driver.py")
        web_port, local_port = free_port(), free_port()
        command = [context.python, str(driver), context.class_name, str(web_port), str(local_port)]
        log = context.work / "modal.log"
        web, local = Client(web_port, context.call_timeout), Client(local_port, context.call_timeout)
        try:
            with started(command, context.directory, context.env, log) as proc:
                what = "modal: the web endpoint's GET /health and the .local() server"
                wait_ready(lambda: health(web) and local.get("/").status == 200, proc, log, context.start_timeout, what)

                def call_local(value: Any) -> Outcome:
                    started_at = time.perf_counter()
                    answer = local.post("/", value).json()
                    return timed(started_at, answer["kind"], answer.get("value"), answer.get("message", ""))

                call_web = predict_call(web, context.streaming)
                yield [Endpoint("modal .local()", call_local), Endpoint("modal web", call_web)]
        finally:
            web.close()
            local.close()
