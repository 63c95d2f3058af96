from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from gpuserve.errors import GpuserveError, SpecError
from gpuserve.runtime.weights import Progress
from gpuserve.weights import URL, HuggingFace, Local, WeightSource, declare, duplicate_ids, register, weights_path

SLUG = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*$")
DIGEST = "ab" * 32


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    declare([])
    yield
    declare([])


def test_sources_take_their_first_argument_positionally() -> None:
    assert HuggingFace("org/name", revision="main").repo_id == "org/name"
    assert URL("https://example.com/m.bin", sha256=DIGEST).url == "https://example.com/m.bin"
    assert Local("./weights").path == "weights"


def test_ids_are_repo_id_url_and_normalised_path() -> None:
    assert HuggingFace("gpt2").id == "gpt2"
    assert URL("https://example.com/a/m.bin").id == "https://example.com/a/m.bin"
    assert Local("./weights/sub/").id == "weights/sub"


@pytest.mark.parametrize(
    "source",
    [
        HuggingFace("Org_1/Name.v2"),
        URL("https://Example.com/a%20b/model.bin?sig=x&t=1"),
        Local("./Weights Dir/"),
        URL("https://example.com/" + "x" * 300),
    ],
)
def test_slug_is_safe_for_paths_and_cog_names(source: WeightSource) -> None:
    assert SLUG.match(source.slug) and len(source.slug) <= 51


def test_slug_is_stable_per_id_and_differs_between_ids() -> None:
    assert HuggingFace("org/name").slug == HuggingFace("org/name", revision="v1").slug
    assert HuggingFace("org/name").slug != HuggingFace("org.name").slug


def test_url_filename_is_the_last_segment_made_safe() -> None:
    assert URL("https://example.com/a/model%20v1.bin?sig=1").filename == "model_v1.bin"
    assert URL("https://example.com/").filename == "weights"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/m.bin", "http://[::1]/m.bin", "http://localhost/m.bin"])
def test_plain_http_is_allowed_on_loopback(url: str) -> None:
    assert URL(url).url == url


def test_sha256_is_stored_lowercase() -> None:
    assert URL("https://example.com/m.bin", sha256=DIGEST.upper()).sha256 == DIGEST


@pytest.mark.parametrize(
    ("make", "field", "fragment"),
    [
        (lambda: HuggingFace("org/na me"), "repo_id", "is not a Hugging Face repo id"),
        (lambda: HuggingFace("a/b/c"), "repo_id", "is not a Hugging Face repo id"),
        (lambda: HuggingFace("org--x/name"), "repo_id", "is not a Hugging Face repo id"),
        (lambda: HuggingFace("org/name", revision=""), "revision", "non-empty"),
        (lambda: HuggingFace("org/name", allow_patterns="*.json"), "allow_patterns", "not one string"),
        (lambda: HuggingFace("org/name", allow_patterns=[]), "allow_patterns", "nothing would be fetched"),
        (lambda: HuggingFace("org/name", revison="main"), "revison", "is not an option of gpuserve.HuggingFace"),
        (lambda: URL("http://example.com/m.bin"), "url", "only allowed for loopback hosts"),
        (lambda: URL("ftp://example.com/m.bin"), "url", "is not an http(s) URL"),
        (lambda: URL("https://user:pw@example.com/m.bin"), "url", "holds credentials"),
        (lambda: URL("https://example.com/m bin"), "url", "whitespace"),
        (lambda: URL("https://example.com/m.bin", sha256="abc"), "sha256", "is not a sha256 digest"),
        (lambda: Local("/abs/weights"), "path", "is not a relative path"),
        (lambda: Local("weights/../../up"), "path", "inside the code directory"),
        (lambda: Local("."), "path", "inside the code directory"),
    ],
)
def test_bad_source_is_refused_naming_field_value_allowed_and_fix(
    make: Callable[[], object], field: str, fragment: str
) -> None:
    with pytest.raises(SpecError) as caught:
        make()
    (problem,) = caught.value.problems
    assert problem.field == field and fragment in problem.message
    assert problem.allowed and problem.hint and "Allowed:" in str(caught.value) and "Fix:" in str(caught.value)


def test_sources_round_trip_as_a_tagged_union() -> None:
    sources = (HuggingFace("org/name", allow_patterns=["*.json"], bake=True), URL("https://e.com/m"), Local("w"))
    adapter = TypeAdapter(tuple[WeightSource, ...])
    assert adapter.validate_json(adapter.dump_json(sources)) == sources


def test_duplicate_ids_names_each_repeated_id_once() -> None:
    sources: list[WeightSource] = [HuggingFace("a/b"), HuggingFace("a/b", revision="v1"), Local("w"), Local("./w")]
    assert duplicate_ids([*sources, Local("w/"), URL("https://e.com/m")]) == ["a/b", "w"]


def test_weights_path_by_source_or_id_once_registered(tmp_path: Path) -> None:
    hub, local = HuggingFace("org/name"), Local("./weights")
    declare([hub, local])
    register(hub, tmp_path / "hub")
    register(local, tmp_path / "weights")
    assert weights_path(hub) == weights_path("org/name") == tmp_path / "hub"
    assert weights_path("./weights") == weights_path("weights") == weights_path(local) == tmp_path / "weights"


def test_weights_path_of_unknown_id_lists_declared_ids() -> None:
    declare([HuggingFace("org/name"), URL("https://e.com/m.bin")])
    with pytest.raises(GpuserveError) as caught:
        weights_path("org/other")
    message = str(caught.value)
    assert "'org/other'" in message and "'org/name', 'https://e.com/m.bin'" in message
    assert "fetched before setup() runs" in message


def test_weights_path_before_fetching_says_when_weights_arrive() -> None:
    declare([HuggingFace("org/name")])
    with pytest.raises(GpuserveError, match=r"declared but not fetched yet\. Weights are fetched before setup\(\)"):
        weights_path(HuggingFace("org/name"))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_one_line_on_a_terminal() -> None:
    screen = Terminal()
    progress = Progress("m.bin", total=2000, stream=screen)
    progress.advance(1000)
    progress.finish()
    assert screen.getvalue().startswith("\rm.bin  50% 1.0 KB of 2.0 KB") and screen.getvalue().count("\n") == 1


def test_importing_weights_loads_neither_the_hub_nor_a_lock_library() -> None:
    code = (
        "import sys, gpuserve.weights, gpuserve.runtime.weights; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'huggingface_hub', 'filelock', 'httpx', 'jinja2'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_hub_download_progress_logs_each_tenth_of_the_files(caplog: pytest.LogCaptureFixture) -> None:
    from gpuserve.runtime.weights import _logged_progress

    caplog.set_level(logging.INFO, logger="gpuserve")
    bar = _logged_progress("org/tiny")(total=20, desc="Fetching 20 files")
    for _ in range(20):
        bar.update(1)
    bar.close()
    lines = [r.getMessage() for r in caplog.records if "org/tiny files" in r.getMessage()]
    assert [line.split(": ")[1].split("%")[0] for line in lines] == [str(p) for p in range(10, 101, 10)]
