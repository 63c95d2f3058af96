"""The smallest gpuserve model: CPU only, no dependency beyond gpuserve."""

from typing import Annotated, Literal

from pydantic import Field

import gpuserve


@gpuserve.model(name="hello", keep_warm=0, max_containers=2, concurrency=4, timeout=30)
class Hello:
    def setup(self) -> None:
        self.greetings = {"en": "Hello", "fr": "Bonjour", "es": "Hola"}

    def predict(
        self,
        name: Annotated[str, Field(description="Who to greet", min_length=1, max_length=64)],
        language: Literal["en", "fr", "es"] = "en",
        excited: bool = False,
    ) -> dict[str, str]:
        mark = "!" if excited else "."
        return {"greeting": f"{self.greetings[language]}, {name}{mark}"}
