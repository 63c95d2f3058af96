"""A batched model: each request sends one Item and gets one Result, which says how large its group was.

`fail` makes that item's result a gpuserve.ItemError: only its request fails. `seconds` makes predict sleep,
so a burst of requests finds a group running and the next one forming.
"""

import time

from pydantic import BaseModel, Field

import gpuserve


class Item(BaseModel):
    text: str = Field(min_length=1, max_length=64, description="Text to upper-case")
    fail: bool = Field(False, description="Answer this item with a gpuserve.ItemError")
    seconds: float = Field(0.0, ge=0, le=2, description="Seconds predict sleeps for this item's group")


class Result(BaseModel):
    text: str
    batch: int = Field(description="Items in the predict call that answered this request")


@gpuserve.model(name="batched-upper", batch=gpuserve.Batch(max_size=4, wait_ms=100))
class BatchedUpper:
    def predict(self, items: list[Item]) -> list[Result | gpuserve.ItemError]:
        time.sleep(max(item.seconds for item in items))
        return [
            gpuserve.ItemError(f"cannot take {item.text!r}")
            if item.fail
            else Result(text=item.text.upper(), batch=len(items))
            for item in items
        ]
