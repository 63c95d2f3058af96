"""Fetch the declared weights before setup() runs: once per cache, never twice at once, never a bad file.

Where each source is looked for, first hit wins:
  1. Any kind: <root>/<slug> under a root in GPUSERVE_WEIGHTS_DIRS (colon-separated), baked into the image or
     mounted by the platform. Read-only, no network.
  2. Hugging Face: the read-only hub caches in GPUSERVE_HF_CACHES, then <cache>/huggingface/hub, both offline (a
     complete cache means no network at all); only then huggingface_hub.snapshot_download into <cache>.
  3. URL: <cache>/urls/<slug>/<filename>, else a locked, resumable download checked against sha256.
  4. Local: the path inside the code directory.
huggingface_hub and filelock are imported only when needed, so declaring no weights costs nothing.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import http.client
import io
import logging
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import GpuserveError
from ..weights import URL, HuggingFace, Local, WeightsError, WeightSource, declare, register
from .cache import CACHE_ENV

log = logging.getLogger("gpuserve")

WEIGHTS_DIRS_ENV = "GPUSERVE_WEIGHTS_DIRS"
HF_CACHES_ENV = "GPUSERVE_HF_CACHES"
_CHUNK = 1 << 20
_ATTEMPTS = 5
_READ_TIMEOUT = 60.0
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Fetched:
    """Where one source was found or fetched to, and what that cost: the start-up report's fetch phase."""

    id: str
    path: Path
    bytes: int
    seconds: float
    downloaded: bool


class _Interrupted(Exception):
    """A transfer stopped early; the .part file is kept and the next attempt resumes it."""


def cache_dir_from_env() -> Path:
    """GPUSERVE_CACHE_DIR, or ~/.cache/gpuserve where no target set one."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gpuserve")


def fetch_all(sources: Sequence[WeightSource], *, cache_dir: Path, code_dir: Path) -> list[Fetched]:
    """Find or fetch every source, in order, and register each path for gpuserve.weights_path."""
    declare(sources)
    done = []
    for source in sources:
        started = time.monotonic()
        path, downloaded = _fetch_one(source, cache_dir=cache_dir, code_dir=code_dir)
        register(source, path)
        item = Fetched(
            id=source.id,
            path=path,
            bytes=_size(path),
            seconds=round(time.monotonic() - started, 3),
            downloaded=downloaded,
        )
        how = "downloaded" if downloaded else "found"
        log.info("weights %s: %s at %s (%d bytes, %.2fs)", item.id, how, path, item.bytes, item.seconds)
        done.append(item)
    return done


def _fetch_one(source: WeightSource, *, cache_dir: Path, code_dir: Path) -> tuple[Path, bool]:
    ready = _in_weights_dirs(source)
    if ready is not None:
        return ready, False
    if isinstance(source, HuggingFace):
        return _hugging_face(source, cache_dir / "huggingface" / "hub")
    if isinstance(source, URL):
        return _download(source, cache_dir / "urls" / source.slug)
    return _local(source, code_dir), False


def _roots(env: str) -> list[Path]:
    return [Path(p) for p in os.environ.get(env, "").split(os.pathsep) if p]


def _in_weights_dirs(source: WeightSource) -> Path | None:
    for root in _roots(WEIGHTS_DIRS_ENV):
        folder = root / source.slug
        if isinstance(source, URL):
            if (folder / source.filename).is_file():
                return folder / source.filename
        elif folder.exists():
            return folder
    return None


def _local(source: Local, code_dir: Path) -> Path:
    path = code_dir / source.path
    if not path.exists():
        raise WeightsError(
            f"gpuserve.Local({source.path!r}): {path} does not exist. Local weights are read from the model's code "
            f"directory ({code_dir}). Fix: put them there, or use gpuserve.URL / gpuserve.HuggingFace."
        )
    return path


# Hugging Face ----------------------------------------------------------------------------------------------------
def _hugging_face(source: HuggingFace, own_cache: Path) -> tuple[Path, bool]:
    caches = [*_roots(HF_CACHES_ENV), own_cache]
    for hub in caches:
        found = _cached_snapshot(source, hub)
        if found is not None:
            return found, False
    return _hub_download(source, cache_dir=own_cache, searched=caches), True


def _repo_folder(source: HuggingFace) -> str:
    return "models--" + source.repo_id.replace("/", "--")


def _cached_snapshot(source: HuggingFace, hub: Path) -> Path | None:
    """The snapshot in a hub cache, read offline; None when it is absent, incomplete or misses allow_patterns."""
    if not (hub / _repo_folder(source)).is_dir():
        return None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        found = Path(
            snapshot_download(
                source.repo_id,
                revision=source.revision,
                allow_patterns=list(source.allow_patterns) if source.allow_patterns else None,
                cache_dir=hub,
                local_files_only=True,
            )
        )
    except (LocalEntryNotFoundError, OSError):
        return None
    files = [p.relative_to(found).as_posix() for p in found.rglob("*") if p.is_file()]
    patterns = source.allow_patterns or ("*",)
    if not any(fnmatch.fnmatch(f, p + "*" if p.endswith("/") else p) for f in files for p in patterns):
        return None
    return found


def _hf_offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return constants.is_offline_mode() or flag.upper() in {"1", "ON", "YES", "TRUE"}


def _hub_download(
    source: HuggingFace, *, cache_dir: Path | None = None, local_dir: Path | None = None, searched: Sequence[Path] = ()
) -> Path:
    """snapshot_download online (HF_TOKEN read from the environment at run time); its errors said as ours."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    what = f"gpuserve.HuggingFace({source.repo_id!r}, revision={source.revision!r})"
    if _hf_offline():
        places = f" and it is in none of the hub caches searched ({', '.join(map(str, searched))})" if searched else ""
        raise WeightsError(
            f"{what}: HF_HUB_OFFLINE is set, so it cannot be downloaded{places}. "
            "Fix: unset HF_HUB_OFFLINE, bake it into the image with bake=True, or fill one of those caches."
        )
    log.info("weights %s: downloading from the Hugging Face Hub", source.repo_id)
    try:
        return Path(
            snapshot_download(
                source.repo_id,
                revision=source.revision,
                allow_patterns=list(source.allow_patterns) if source.allow_patterns else None,
                cache_dir=cache_dir,
                local_dir=local_dir,
                **({} if sys.stderr.isatty() else {"tqdm_class": _logged_progress(source.repo_id)}),
            )
        )
    except RevisionNotFoundError:
        raise WeightsError(
            f"{what}: the repo has no such revision. Fix: pass a branch, tag or commit it has."
        ) from None
    except RepositoryNotFoundError as exc:
        raise WeightsError(
            f"{what}: the Hub refused it ({type(exc).__name__}): it does not exist, or it is private or gated. "
            'Fix: check the id; for private or gated repos declare secrets=["HF_TOKEN"] and set it on the platform.'
        ) from None
    except (HfHubHTTPError, OSError) as exc:
        raise WeightsError(f"{what}: the download failed ({type(exc).__name__}: {exc}). Retry the start.") from exc


def _logged_progress(label: str) -> Any:
    """huggingface_hub's progress bar class, turned into a log line per 10% of the files where no terminal is."""
    from huggingface_hub.utils.tqdm import tqdm as hub_tqdm

    class LoggedProgress(hub_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **(kwargs | {"disable": True}))  # type: ignore[no-untyped-call]
            self.logged = Progress(f"{label} files", total=kwargs.get("total"), stream=io.StringIO())

        def update(self, n: float | None = 1) -> bool | None:
            self.logged.advance(int(n or 0))
            return super().update(n)  # type: ignore[no-any-return]

    return LoggedProgress


# URL -------------------------------------------------------------------------------------------------------------
def _download(source: URL, folder: Path) -> tuple[Path, bool]:
    """folder/<filename>, downloaded at most once however many processes start together."""
    from filelock import FileLock, Timeout

    target = folder / source.filename
    if target.is_file():
        return target, False
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(target) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("weights %s: another process is downloading it; waiting for it", source.url)
        lock.acquire()
    try:
        if target.is_file():
            return target, False
        part = target.with_name(target.name + ".part")
        digest = _transfer(source, part)
        if source.sha256 is not None and digest != source.sha256:
            part.unlink(missing_ok=True)
            raise WeightsError(
                f"gpuserve.URL({source.url!r}): the file's sha256 is {digest}, not the expected {source.sha256}. "
                "The file was removed and is not used. Fix: check that the URL serves the file you pinned, "
                "or pin the new file's digest in sha256=."
            )
        os.replace(part, target)
        return target, True
    finally:
        lock.release()


def _transfer(source: URL, part: Path) -> str:
    """Download into part, resuming what is there, retrying what can be retried. Returns the sha256."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return _attempt(source, part)
        except urllib.error.HTTPError as exc:
            if exc.code not in _RETRY_STATUS:
                raise WeightsError(
                    f"gpuserve.URL({source.url!r}): the server answered {exc.code} {exc.reason}. "
                    "Fix: check the URL, and that the file is public or the URL carries its own access grant."
                ) from None
            problem = f"{exc.code} {exc.reason}"
        except (_Interrupted, OSError, http.client.HTTPException) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if attempt < _ATTEMPTS:
            log.warning("weights %s: attempt %d failed (%s); resuming", source.url, attempt, problem)
            time.sleep(0.5 * 2 ** (attempt - 1))
    raise WeightsError(
        f"gpuserve.URL({source.url!r}): the download failed {_ATTEMPTS} times, last with {problem}. What arrived is "
        f"kept in {part} and the next start resumes it. Fix: check that the host is reachable and retry."
    )


def _attempt(source: URL, part: Path) -> str:
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "gpuserve", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(source.url, headers=headers), timeout=_READ_TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have and exc.headers.get("Content-Range", "") == f"bytes */{have}":
            return _sha256_of(part)  # the part is already whole: only the rename was missed
        if exc.code == 416:
            part.unlink(missing_ok=True)
            raise _Interrupted("the partial file does not fit the server's file; starting over") from None
        raise
    with response:
        resumed = have > 0 and response.status == 206
        if resumed and not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            part.unlink(missing_ok=True)
            raise _Interrupted("the server resumed from another byte than asked; starting over")
        start = have if resumed else 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        hasher = hashlib.sha256()
        if resumed:
            _hash_into(hasher, part)
        progress = Progress(source.url, total=total, done=start)
        with part.open("ab" if resumed else "wb") as out:
            while chunk := response.read1(_CHUNK):
                out.write(chunk)
                hasher.update(chunk)
                progress.advance(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        progress.finish()
    if total is not None and part.stat().st_size != total:
        raise _Interrupted(f"the connection closed at byte {part.stat().st_size} of {total}")
    return hasher.hexdigest()


def _hash_into(hasher: Any, path: Path) -> None:
    with path.open("rb") as file:
        while block := file.read(_CHUNK):
            hasher.update(block)


def _sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    _hash_into(hasher, path)
    return hasher.hexdigest()


class Progress:
    """A line redrawn in place on a terminal; one log line per 10% when the output goes to a log."""

    def __init__(self, label: str, *, total: int | None, done: int = 0, stream: IO[str] | None = None) -> None:
        self.label = label
        self.total = total
        self.done = done
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self._tenths = self._tenth()
        self._drawn = 0.0

    def _tenth(self) -> int:
        return self.done * 10 // self.total if self.total else 0

    def advance(self, count: int) -> None:
        self.done += count
        if self.tty:
            if time.monotonic() - self._drawn > 0.2:
                self._draw()
            return
        tenths = self._tenth()
        for tenth in range(self._tenths + 1, tenths + 1):  # each 10% gets its line, even when one read crosses two
            log.info("weights %s: %d%% (%s of %s)", self.label, tenth * 10, _human(self.done), _human(self.total))
        self._tenths = max(self._tenths, tenths)

    def finish(self) -> None:
        if self.tty:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        self._drawn = time.monotonic()
        share = f"{self.done * 100 // self.total:3d}% " if self.total else ""
        self.stream.write(f"\r{self.label} {share}{_human(self.done)} of {_human(self.total)}")
        self.stream.flush()


def _human(count: int | None) -> str:
    if count is None:
        return "?"
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# Baking ----------------------------------------------------------------------------------------------------------
def bake(source: HuggingFace | URL, into: Path) -> Path:
    """Fetch one source into into/<slug>, where GPUSERVE_WEIGHTS_DIRS=into finds it at run time."""
    folder = into / source.slug
    if isinstance(source, URL):
        path, _ = _download(source, folder)
        Path(str(path) + ".lock").unlink(missing_ok=True)
        return path
    _hub_download(source, local_dir=folder)
    shutil.rmtree(folder / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping, not weights
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gpuserve.runtime.weights",
        description="Fetch the bake=True weights of APP into DIR/<slug>, for image builds.",
    )
    parser.add_argument("app", help='"file.py:Class" or "module:Class"')
    parser.add_argument("--into", type=Path, required=True, metavar="DIR", help="where the weights go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from ..loader import load_app

    try:
        for source in load_app(args.app).spec.weights:
            if isinstance(source, (HuggingFace, URL)) and source.bake:
                print(f"baked {source.id} into {bake(source, args.into)}", flush=True)
    except GpuserveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
