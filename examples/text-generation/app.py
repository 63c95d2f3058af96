"""Text generation with any causal language model from the Hugging Face hub (or a local folder), streamed.

MODEL_ID picks the model (default "gpt2"); HF_TOKEN, when set, reaches gated models.
Weights are cached under GPUSERVE_CACHE_DIR, which every target points at a persistent disk.
Text arrives as it is generated: generate() runs in a thread and transformers' TextIteratorStreamer hands each
piece to predict as soon as it decodes (mostly a token each), which yields it; a stream closed early stops generating.
On a GPU, accelerate places the model (device_map="auto": across the GPUs there are, spilling to CPU memory).
"""

import os
import threading
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, Field

import gpuserve

image = (
    gpuserve.Image(python="3.11")
    .pip_install(
        "torch==2.13.0",
        "transformers==5.24.0",
        "tokenizers==0.23.3",
        "safetensors==0.8.0",
        "accelerate==1.15.0",
    )
    .env(MODEL_ID="gpt2", TOKENIZERS_PARALLELISM="false")
)


GREEDY_BELOW = 0.01


class Input(BaseModel):
    prompt: str = Field(description="Text to continue", min_length=1, max_length=4000, examples=["Once upon a time"])
    max_new_tokens: int = Field(32, ge=1, le=512, description="How many tokens to add")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="below 0.01 decodes greedily (deterministic)")
    seed: int = Field(0, ge=0, description="Random seed used when temperature > 0")


@gpuserve.model(
    name="text-generation",
    gpu=["A10G", "L4", "L40S"],  # fallback order; each target keeps the ones it offers
    image=image,
    keep_warm=0,
    max_containers=2,
    idle_timeout=300,
    timeout=120,
    concurrency=1,
    secrets=["HF_TOKEN"],
)
class TextGeneration:
    def setup(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_id = os.environ.get("MODEL_ID", "gpt2")
        token = os.environ.get("HF_TOKEN") or None
        self.tokenizer = AutoTokenizer.from_pretrained(model_id, token=token)
        if torch.cuda.is_available():
            self.model = AutoModelForCausalLM.from_pretrained(
                model_id, token=token, dtype=torch.float16, device_map="auto"
            ).eval()
        else:
            self.model = AutoModelForCausalLM.from_pretrained(model_id, token=token, dtype=torch.float32).eval()

    def predict(self, inp: Input) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        encoded = self.tokenizer(inp.prompt, return_tensors="pt").to(self.model.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        sampling = inp.temperature >= GREEDY_BELOW  # a tinier one divides the logits into infinities
        stopped = threading.Event()
        failed: list[BaseException] = []

        def cancelled(input_ids: Any, _scores: Any, **_: Any) -> Any:
            return torch.full((input_ids.shape[0],), stopped.is_set(), dtype=torch.bool, device=input_ids.device)

        def generate() -> None:
            try:
                if sampling:
                    torch.manual_seed(inp.seed)
                with torch.inference_mode():
                    self.model.generate(
                        **encoded,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([cancelled]),
                        max_new_tokens=inp.max_new_tokens,
                        do_sample=sampling,
                        temperature=inp.temperature if sampling else None,
                        top_p=None,
                        top_k=None,
                        pad_token_id=self.tokenizer.eos_token_id,
                    )
            except BaseException as exc:  # handed to predict's caller below, not lost in this thread
                failed.append(exc)
                streamer.end()

        thread = threading.Thread(target=generate, name="generate", daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            stopped.set()  # closed early: stop at the next token rather than finish the whole answer
            thread.join()
        if failed:
            raise failed[0]

    def shutdown(self) -> None:
        self.model = None
