"""The answer every target is held to: the model run in this process by ModelHost, as `gpuserve run` runs it."""

from __future__ import annotations

import os
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from ..loader import LoadedApp
from ..runtime.host import InvalidInput, ModelHost, PredictFailed
from .compare import Outcome

UPLOAD_VARIABLES = ("GPUSERVE_OUTPUT_URL", "GPUSERVE_OUTPUT_S3")


class Reference:
    """One in-process host for the whole run: setup once, each input validated, called and encoded."""

    def __init__(self, loaded: LoadedApp) -> None:
        self.host = ModelHost(loaded.cls)
        self.streaming = self.host.signature.streaming

    def setup(self) -> None:
        """The image's environment applies here too, under this process's own (as `docker run -e` wins).

        File outputs are compared as `data:` URIs: the variables that would upload them elsewhere (under a new name
        per answer) are removed, here and so from every target's environment, which is made from this one.
        """
        for key in UPLOAD_VARIABLES:
            os.environ.pop(key, None)
        for key, value in self.host.spec.image.env_vars:
            os.environ.setdefault(key, value)
        self.host.setup()

    def shutdown(self) -> None:
        self.host.shutdown()

    def drift(self) -> list[str]:
        """Where this process's packages are not the versions the image pins (each target installs the pins).

        The in-process answer is the reference only as far as the versions agree: a newer transformers, say, may
        cut the same streamed text into other chunks.
        """
        found = []
        for line in self.host.spec.image.pip:
            try:
                wanted = Requirement(line)
            except InvalidRequirement:
                continue
            if not wanted.specifier:
                continue
            try:
                here = version(wanted.name)
            except PackageNotFoundError:
                found.append(f"{wanted.name} is not installed here; the image pins {wanted.specifier}")
                continue
            if not wanted.specifier.contains(here, prereleases=True):
                found.append(f"{wanted.name} {here} here; the image pins {wanted.specifier}")
        return found

    def call(self, value: Any) -> Outcome:
        started = time.perf_counter()
        try:
            output = list(self.host.stream(value)) if self.streaming else self.host.predict(value)
        except InvalidInput as exc:
            return Outcome("invalid", message=str(exc), seconds=time.perf_counter() - started)
        except PredictFailed as exc:
            return Outcome("failed", message=str(exc), seconds=time.perf_counter() - started)
        return Outcome("output", output, seconds=time.perf_counter() - started)
