"""Weights fetched for real: a Range-capable HTTP server on 127.0.0.1 for URLs, hub-cache directories for Hugging Face,
separate processes where concurrency or a crash is the point."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuserve.runtime.weights import HF_CACHES_ENV, WEIGHTS_DIRS_ENV, fetch_all
from gpuserve.spec import ModelSpec
from gpuserve.weights import URL, HuggingFace, Local, WeightsError, weights_path
from tests.apps import ROOT
from tests.proc import started, stop, wait_until
from tests.weights_server import Behaviour, serving

BODY = os.urandom(2 * 1024 * 1024)
DIGEST = hashlib.sha256(BODY).hexdigest()
COMMIT = "0123456789abcdef0123456789abcdef01234567"

FETCHER = """
import logging, sys, time
from pathlib import Path
from gpuserve.weights import URL
from gpuserve.runtime.weights import fetch_all
logging.basicConfig(level=logging.INFO, format="%(message)s")
go = Path(sys.argv[3] + ".go")
print("ready", flush=True)
while not go.exists():
    time.sleep(0.01)
for item in fetch_all([URL(sys.argv[1], sha256=sys.argv[2])], cache_dir=Path(sys.argv[3]), code_dir=Path(".")):
    print("downloaded" if item.downloaded else "reused", flush=True)
"""


@pytest.fixture(autouse=True)
def _no_roots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEIGHTS_DIRS_ENV, raising=False)
    monkeypatch.delenv(HF_CACHES_ENV, raising=False)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test: a complete cache must need no network at all."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network used: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def url_file(cache: Path, source: URL) -> Path:
    return cache / "urls" / source.slug / source.filename


# URL ----------------------------------------------------------------------------------------------------------------
def test_dropped_download_resumes_from_the_part_file(tmp_path: Path) -> None:
    behaviour = Behaviour(BODY, drop_after=len(BODY) // 2)
    with serving(behaviour) as base:
        source = URL(f"{base}/model.bin", sha256=DIGEST)
        (got,) = fetch_all([source], cache_dir=tmp_path, code_dir=tmp_path)
    assert got.downloaded and got.path == url_file(tmp_path, source) and got.path.read_bytes() == BODY
    first, second = behaviour.served
    assert first.range is None and first.sent == len(BODY) // 2
    assert second.range == f"bytes={len(BODY) // 2}-" and second.sent == len(BODY) - len(BODY) // 2
    assert not got.path.with_name("model.bin.part").exists()


def test_crashed_process_leaves_a_part_file_the_next_start_resumes(tmp_path: Path) -> None:
    behaviour = Behaviour(BODY, stall_after=len(BODY) // 2)
    cache = tmp_path / "cache"
    with serving(behaviour) as base:
        source = URL(f"{base}/model.bin", sha256=DIGEST)
        part = url_file(cache, source).with_name("model.bin.part")
        command = [sys.executable, "-c", FETCHER, source.url, DIGEST, str(cache)]
        (tmp_path / "cache.go").touch()
        with started(command, ROOT) as proc:
            wait_until(lambda: part.exists() and part.stat().st_size >= len(BODY) // 2 - 8192, 20, "half a part", proc)
            stop(proc, signal.SIGKILL)
        kept = part.stat().st_size
        (got,) = fetch_all([source], cache_dir=cache, code_dir=tmp_path)
    assert got.path.read_bytes() == BODY
    assert [s.range for s in behaviour.served] == [None, f"bytes={kept}-"]
    assert behaviour.served[1].sent == len(BODY) - kept


def test_corrupt_file_fails_its_checksum_and_is_removed(tmp_path: Path) -> None:
    wrong = hashlib.sha256(b"another file").hexdigest()
    with serving(Behaviour(BODY)) as base:
        source = URL(f"{base}/model.bin", sha256=wrong)
        with pytest.raises(WeightsError) as caught:
            fetch_all([source], cache_dir=tmp_path, code_dir=tmp_path)
    message = str(caught.value)
    assert source.url in message and wrong in message and DIGEST in message and "removed" in message
    assert [p.name for p in url_file(tmp_path, source).parent.iterdir()] == ["model.bin.lock"]
    with pytest.raises(WeightsError, match="not fetched yet"):
        weights_path(source)


def test_two_processes_starting_together_download_once(tmp_path: Path) -> None:
    behaviour = Behaviour(BODY, delay=0.02)  # about a second per transfer, so the two overlap
    cache = tmp_path / "cache"
    with serving(behaviour) as base:
        command = [sys.executable, "-c", FETCHER, f"{base}/model.bin", DIGEST, str(cache)]
        with started(command, ROOT) as one, started(command, ROOT) as two:
            for proc in (one, two):
                assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
            (tmp_path / "cache.go").touch()
            outputs = [proc.communicate(timeout=30)[0].decode() for proc in (one, two)]
            codes = [one.returncode, two.returncode]
    assert codes == [0, 0], outputs
    assert sorted(out.strip().splitlines()[-1] for out in outputs) == ["downloaded", "reused"]
    assert any("another process is downloading it" in out for out in outputs)
    assert len(behaviour.served) == 1 and behaviour.full_gets == 1


def test_complete_cache_makes_no_request(tmp_path: Path) -> None:
    behaviour = Behaviour(BODY)
    with serving(behaviour) as base:
        source = URL(f"{base}/model.bin", sha256=DIGEST)
        fetch_all([source], cache_dir=tmp_path, code_dir=tmp_path)
        (again,) = fetch_all([source], cache_dir=tmp_path, code_dir=tmp_path)
    assert len(behaviour.served) == 1 and not again.downloaded
    (offline,) = fetch_all([source], cache_dir=tmp_path, code_dir=tmp_path)  # the server is gone now
    assert offline.path.read_bytes() == BODY and weights_path(source.url) == offline.path


def test_log_has_one_progress_line_per_tenth(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with serving(Behaviour(BODY, chunk=16 * 1024)) as base, caplog.at_level(logging.INFO, logger="gpuserve"):
        fetch_all([URL(f"{base}/model.bin")], cache_dir=tmp_path, code_dir=tmp_path)
    shares = [m.split(": ")[1].split("%")[0] for m in caplog.messages if "%" in m]
    assert shares == [str(n) for n in range(10, 101, 10)]


def test_missing_file_is_refused_with_its_status(tmp_path: Path) -> None:
    with serving(Behaviour(BODY)) as base, pytest.raises(WeightsError, match="answered 404"):
        fetch_all([URL(f"{base}/missing.bin")], cache_dir=tmp_path, code_dir=tmp_path)


# Hugging Face ---------------------------------------------------------------------------------------------------------
def lay_out_hub(hub: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """A hub cache as huggingface_hub writes it: refs/main -> a commit, snapshot files linked to blobs."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / COMMIT / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return repo / "snapshots" / COMMIT


TINY = {"config.json": b'{"n_layer": 1}', "model.safetensors": b"\0" * 64}


@pytest.fixture
def read_only_hub(tmp_path: Path) -> Iterator[Path]:
    hub = tmp_path / "runpod-volume" / "huggingface-cache" / "hub"
    lay_out_hub(hub, "org/name", TINY)
    folders = [hub, *(p for p in hub.rglob("*") if p.is_dir() and not p.is_symlink())]
    for folder in folders:
        folder.chmod(0o555)
    yield hub
    for folder in folders:
        folder.chmod(0o755)


@pytest.mark.usefixtures("no_network")
def test_hub_cache_from_the_platform_serves_offline(
    tmp_path: Path, read_only_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(HF_CACHES_ENV, f"{tmp_path / 'absent'}:{read_only_hub}")
    cache = tmp_path / "cache"
    (got,) = fetch_all([HuggingFace("org/name", allow_patterns=["*.json"])], cache_dir=cache, code_dir=tmp_path)
    assert got.path == read_only_hub / "models--org--name" / "snapshots" / COMMIT and not got.downloaded
    assert (got.path / "config.json").read_bytes() == TINY["config.json"] and weights_path("org/name") == got.path
    assert got.bytes == sum(len(d) for d in TINY.values()) and not cache.exists()


@pytest.mark.usefixtures("no_network")
def test_own_hub_cache_serves_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = lay_out_hub(tmp_path / "cache" / "huggingface" / "hub", "org/name", TINY)
    pinned = HuggingFace("org/name", revision=COMMIT)
    (got,) = fetch_all([pinned], cache_dir=tmp_path / "cache", code_dir=tmp_path)
    assert got.path == snapshot and not got.downloaded


@pytest.mark.usefixtures("no_network")
def test_hub_miss_while_offline_names_the_caches_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lay_out_hub(tmp_path / "cache" / "huggingface" / "hub", "org/name", TINY)
    no_match = HuggingFace("org/name", allow_patterns=["*.gguf"])
    with pytest.raises(WeightsError) as caught:
        fetch_all([no_match], cache_dir=tmp_path / "cache", code_dir=tmp_path)
    assert "'org/name'" in str(caught.value) and str(tmp_path / "cache" / "huggingface" / "hub") in str(caught.value)
    assert "HF_HUB_OFFLINE" in str(caught.value)


# Baked, mounted and local -------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("no_network")
def test_weights_dirs_are_used_before_any_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub_source = HuggingFace("org/name", bake=True)
    url_source = URL("https://example.com/w/model.bin", bake=True)
    baked = tmp_path / "baked"
    (baked / hub_source.slug).mkdir(parents=True)
    (baked / hub_source.slug / "config.json").write_bytes(TINY["config.json"])
    (baked / url_source.slug).mkdir()
    (baked / url_source.slug / "model.bin").write_bytes(BODY)
    monkeypatch.setenv(WEIGHTS_DIRS_ENV, f"{tmp_path / 'empty'}:{baked}")
    found = fetch_all([hub_source, url_source], cache_dir=tmp_path / "cache", code_dir=tmp_path)
    assert [f.path for f in found] == [baked / hub_source.slug, baked / url_source.slug / "model.bin"]
    assert not any(f.downloaded for f in found) and not (tmp_path / "cache").exists()


def test_local_weights_come_from_the_code_dir(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    (got,) = fetch_all([Local("./weights")], cache_dir=tmp_path / "cache", code_dir=tmp_path)
    assert got.path == tmp_path / "weights" and weights_path("./weights") == got.path
    with pytest.raises(WeightsError, match="'missing'.*does not exist"):
        fetch_all([Local("missing")], cache_dir=tmp_path / "cache", code_dir=tmp_path)


BAKED_APP = """
import gpuserve
from gpuserve.weights import URL

@gpuserve.model(weights=[URL({url!r}, sha256={digest!r}, bake=True), URL({other!r})])
class Baked:
    def setup(self) -> None:
        pass

    def predict(self, text: str) -> str:
        return text
"""


@pytest.mark.skipif("weights" not in ModelSpec.model_fields, reason="the spec has no weights field yet")
def test_bake_command_fetches_only_baked_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    behaviour = Behaviour(BODY)
    with serving(behaviour) as base:
        baked, other = URL(f"{base}/model.bin", sha256=DIGEST), URL(f"{base}/other.bin")
        app = tmp_path / "baked_app.py"
        app.write_text(BAKED_APP.format(url=baked.url, digest=DIGEST, other=other.url))
        into = tmp_path / "image-weights"
        command = [sys.executable, "-m", "gpuserve.runtime.weights", f"{app}:Baked", "--into", str(into)]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in into.iterdir()] == [baked.slug]
    assert sorted(p.name for p in (into / baked.slug).iterdir()) == ["model.bin"]
    assert len(behaviour.served) == 1
    monkeypatch.setenv(WEIGHTS_DIRS_ENV, str(into))
    (got,) = fetch_all([baked], cache_dir=tmp_path / "cache", code_dir=tmp_path)
    assert got.path == into / baked.slug / "model.bin" and not got.downloaded
