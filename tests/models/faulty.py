"""A model that raises when asked to, and answers otherwise: errors must not stop the server."""

import gpuserve


@gpuserve.model(name="faulty")
class Faulty:
    def setup(self) -> None:
        self.calls = 0

    def predict(self, fail: bool = False, message: str = "boom") -> dict[str, int]:
        self.calls += 1
        if fail:
            raise ValueError(message)
        return {"calls": self.calls}
