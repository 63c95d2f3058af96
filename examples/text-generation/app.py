"""Text generation with any causal language model from the Hugging Face hub (or a local folder).

MODEL_ID picks the model (default "gpt2"); HF_TOKEN, when set, reaches gated models.
Weights are cached under GPUSERVE_CACHE_DIR, which every target points at a persistent disk.
"""

import os

from pydantic import BaseModel, Field

import gpuserve

image = (
    gpuserve.Image(python="3.11")
    .pip_install("torch==2.13.0", "transformers==5.23.0", "tokenizers==0.23.3", "safetensors==0.8.0")
    .env(MODEL_ID="gpt2", TOKENIZERS_PARALLELISM="false")
)


GREEDY_BELOW = 0.01


class Input(BaseModel):
    prompt: str = Field(description="Text to continue", min_length=1, max_length=4000, examples=["Once upon a time"])
    max_new_tokens: int = Field(32, ge=1, le=512, description="How many tokens to add")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="below 0.01 decodes greedily (deterministic)")
    seed: int = Field(0, ge=0, description="Random seed used when temperature > 0")


class Output(BaseModel):
    text: str = Field(description="The generated continuation, without the prompt")
    tokens: int = Field(description="How many tokens were generated")


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
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(model_id, token=token)
        self.model = AutoModelForCausalLM.from_pretrained(model_id, token=token, dtype=dtype).to(self.device).eval()

    def predict(self, inp: Input) -> Output:
        import torch

        encoded = self.tokenizer(inp.prompt, return_tensors="pt").to(self.device)
        sampling = inp.temperature >= GREEDY_BELOW  # a tinier one divides the logits into infinities
        if sampling:
            torch.manual_seed(inp.seed)
        with torch.inference_mode():
            generated = self.model.generate(
                **encoded,
                max_new_tokens=inp.max_new_tokens,
                do_sample=sampling,
                temperature=inp.temperature if sampling else None,
                top_p=None,
                top_k=None,
                pad_token_id=self.tokenizer.eos_token_id,
            )
        new_tokens = generated[0, encoded["input_ids"].shape[1] :]
        return Output(text=self.tokenizer.decode(new_tokens, skip_special_tokens=True), tokens=int(new_tokens.shape[0]))

    def shutdown(self) -> None:
        self.model = None
