"""A worker's Dockerfile -> what gpuserve.Image can say: the base's Python and CUDA, pip and apt installs, ENV.

Only the final stage is read, one instruction at a time (continuation lines joined, comments dropped); RUN
lines are split into commands at `&&`, `;` and `|`. pip and apt-get installs are carried, with the files
`pip install -r` names; housekeeping (apt-get update, cache clean-up) is what gpuserve's images do anyway;
every other command and instruction is reported, since gpuserve writes its own Dockerfile.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .project import read_requirements
from .report import Report

_PY_IMAGE = re.compile(r"^(?:docker\.io/)?(?:library/)?python:(\d+\.\d+)")
_PY_TAG = re.compile(r"py(?:thon)?-?(3)\.?(1[0-9]|[0-9])(?![0-9])")
_TORCH_TAG = re.compile(r"pytorch:(\d+\.\d+\.\d+)")
_PIP_QUIET = {"--no-cache-dir", "-U", "--upgrade", "-q", "--quiet", "--break-system-packages", "--user", "--system"}
_PIP_QUIET_PREFIX = ("--root-user-action", "--progress-bar", "--no-input", "--disable-pip-version-check")
_PIP_WITH_VALUE = {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-c", "--constraint"}
_TOOLS = {"pip", "setuptools", "wheel", "uv"}
_HOUSEKEEPING = {("apt-get", "update"), ("apt", "update"), ("apt-get", "clean"), ("apt-get", "autoremove")}
_CACHES = ("/var/lib/apt/lists", "/var/cache/apt", "/root/.cache", "/tmp/")


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    value: str


@dataclass
class DockerImage:
    """What the final stage installs, each entry with where it was (for the report)."""

    base: str = ""
    python: str | None = None
    cuda: bool = False
    torch: str | None = None
    pip: list[tuple[str, str]] = field(default_factory=list)
    apt: list[tuple[str, str]] = field(default_factory=list)
    env: list[tuple[str, str, str]] = field(default_factory=list)


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions: continuation lines joined, comments and blank lines dropped."""
    escape = "`" if re.match(r"\s*#\s*escape\s*=\s*`", text) else "\\"
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith(escape):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        joined = " ".join(part.strip() for part in pending if part.strip())
        keyword, _, value = joined.partition(" ")
        found.append(Instruction(start, keyword.upper(), value.strip()))
        pending = []
    return found


def read_dockerfile(path: Path, handler: Path, report: Report) -> DockerImage:
    """The final stage of the Dockerfile at path, for the worker whose handler file is `handler`."""
    steps = instructions(path.read_text(encoding="utf-8"))
    finals = [i for i, step in enumerate(steps) if step.keyword == "FROM"]
    first = finals[-1] if finals else 0
    for step in steps[:first]:
        report.skip(f"{path.name}:{step.line}", f"{step.keyword} {step.value}", "an earlier build stage is not carried")
    image = DockerImage()
    copies: dict[str, str] = {}  # destination in the image -> source in the context
    workdir = PurePosixPath("/")
    housekeeping: list[str] = []
    for step in steps[first:]:
        where = f"{path.name}:{step.line}"
        if step.keyword == "FROM":
            _base(step.value, image, where, report)
        elif step.keyword == "RUN":
            _run(step.value, where, image, path.parent, copies, workdir, housekeeping, report)
        elif step.keyword == "ENV":
            _env(step.value, where, image, report)
        elif step.keyword in ("COPY", "ADD"):
            _copy(step, where, copies, workdir, handler, report)
        elif step.keyword == "WORKDIR":
            workdir = workdir / step.value
            report.decide(where, f"WORKDIR {step.value}", "gpuserve's images choose their own working directory")
        elif step.keyword in ("CMD", "ENTRYPOINT"):
            report.decide(where, f"{step.keyword} {step.value}", "each gpuserve target starts the model its own way")
        else:
            report.skip(where, f"{step.keyword} {step.value}", f"{step.keyword} is not carried into gpuserve's images")
    if housekeeping:
        report.decide(path.name, "; ".join(housekeeping), "housekeeping that gpuserve's images do themselves")
    return image


def _base(value: str, image: DockerImage, where: str, report: Report) -> None:
    words = [w for w in value.split() if not w.startswith("--")]
    image.base = words[0] if words else ""
    lower = image.base.lower()
    match = _PY_IMAGE.match(lower) or _PY_TAG.search(lower.split(":", 1)[-1])
    if match:
        image.python = ".".join(match.groups())
    image.cuda = "cuda" in lower or "pytorch" in lower or lower.startswith("nvidia/")
    torch = _TORCH_TAG.search(lower)
    if torch:
        image.torch = torch.group(1)
    report.decide(where, f"FROM {image.base}", "gpuserve chooses the base image from the GPU, Python and torch pin")


def _run(
    value: str,
    where: str,
    image: DockerImage,
    context: Path,
    copies: dict[str, str],
    workdir: PurePosixPath,
    housekeeping: list[str],
    report: Report,
) -> None:
    if value.startswith("<<"):
        report.skip(where, f"RUN {value}", "a heredoc RUN is not read: move what it does into setup()")
        return
    if value.startswith("["):
        try:
            argvs = [[str(word) for word in json.loads(value)]]
        except (json.JSONDecodeError, TypeError):
            argvs = [value.split()]
        commands = [(shlex.join(argv), argv) for argv in argvs]
    else:
        commands = [(text, _words(text)) for text in _split(value)]
    for text, argv in commands:
        while argv and ("=" in argv[0] and not argv[0].startswith("-") or argv[0] == "sudo"):
            argv = argv[1:]  # DEBIAN_FRONTEND=noninteractive apt-get ..., sudo pip ...
        if not argv:
            continue
        pip = _pip_args(argv)
        if pip is not None:
            _pip(pip, text, where, image, context, copies, workdir, housekeeping, report)
        elif argv[0] in ("apt-get", "apt") and "install" in argv:
            names = [w for w in argv[argv.index("install") + 1 :] if not w.startswith("-")]
            image.apt += [(where, name) for name in names]
        elif tuple(argv[:2]) in _HOUSEKEEPING or (
            argv[0] == "rm" and all(a.startswith(("-", *_CACHES)) for a in argv[1:])
        ):
            housekeeping.append(text)
        else:
            report.skip(where, text, "a build command gpuserve's images do not run: do it in setup(), or use weights=")


def _split(value: str) -> list[str]:
    """A shell line split into its commands at &&, ||, ;, | and & outside quotes, each as written."""
    commands: list[str] = []
    current: list[str] = []
    quote = ""
    index = 0
    while index < len(value):
        char = value[index]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"' and index + 1 < len(value):
                current.append(char)
                index += 1
                char = value[index]
        elif char in "'\"":
            quote = char
        elif char in ";&|":
            while index + 1 < len(value) and value[index + 1] in "&|":
                index += 1
            commands.append("".join(current).strip())
            current = []
            index += 1
            continue
        current.append(char)
        index += 1
    commands.append("".join(current).strip())
    return [c for c in commands if c]


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _pip_args(argv: list[str]) -> list[str] | None:
    """The arguments after `install` of a pip install (pip, pip3, python -m pip, uv pip), else None."""
    if argv[0] in ("pip", "pip3") and argv[1:2] == ["install"]:
        return argv[2:]
    if argv[0].startswith("python") and argv[1:4] == ["-m", "pip", "install"]:
        return argv[4:]
    if argv[0] == "uv" and argv[1:3] == ["pip", "install"]:
        return argv[3:]
    return None


def _pip(
    args: list[str],
    text: str,
    where: str,
    image: DockerImage,
    context: Path,
    copies: dict[str, str],
    workdir: PurePosixPath,
    housekeeping: list[str],
    report: Report,
) -> None:
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word in ("-r", "--requirement") and index < len(args):
            image.pip += read_requirements(_in_context(args[index], context, copies, workdir), report)
            index += 1
        elif word in _PIP_WITH_VALUE and index < len(args):
            report.skip(
                where, f"{word} {args[index]}", "pip options are not carried: gpuserve images install from PyPI"
            )
            index += 1
        elif word in _PIP_QUIET or word.startswith(_PIP_QUIET_PREFIX):
            continue
        elif word in ("-e", "--editable") or word.startswith(("-", ".", "/")) or word.endswith((".whl", ".tar.gz")):
            report.skip(where, word, f"in `{text}`: only PyPI requirements are carried")
        elif word.split("=")[0].split("<")[0].split(">")[0].lower() in _TOOLS:
            housekeeping.append(f"{text} ({word}: gpuserve's images bring their own installer)")
        else:
            image.pip.append((where, word))


def _in_context(name: str, context: Path, copies: dict[str, str], workdir: PurePosixPath) -> Path:
    """The file in the build context that an image path (`-r /requirements.txt`) came from."""
    in_image = workdir / name
    for destination, source in copies.items():
        dest = PurePosixPath(destination)
        if dest == in_image:
            return context / source
        if dest == in_image.parent:
            if PurePosixPath(source).name == in_image.name:
                return context / source
            if (context / source / in_image.name).is_file():
                return context / source / in_image.name
    return context / PurePosixPath(name).name


def _env(value: str, where: str, image: DockerImage, report: Report) -> None:
    try:
        words = shlex.split(value)
    except ValueError:
        report.skip(where, f"ENV {value}", "cannot be read")
        return
    if words and "=" not in words[0]:  # the older form: ENV KEY value with spaces
        image.env.append((where, words[0], " ".join(words[1:])))
        return
    for word in words:
        key, _, val = word.partition("=")
        image.env.append((where, key, val))


def _copy(
    step: Instruction, where: str, copies: dict[str, str], workdir: PurePosixPath, handler: Path, report: Report
) -> None:
    words = [w for w in step.value.split() if not w.startswith("--")]
    if step.value.startswith("["):
        try:
            words = [str(w) for w in json.loads(step.value)]
        except (json.JSONDecodeError, TypeError):
            pass
    if len(words) < 2:
        report.skip(where, f"{step.keyword} {step.value}", "cannot be read")
        return
    *sources, destination = words
    for source in sources:
        copies[str(workdir / destination)] = source
    names = {PurePosixPath(s).name for s in sources}
    if handler.name in names or {".", "./", "src", "src/"} & set(sources):
        report.decide(where, f"{step.keyword} {step.value}", f"the app imports {handler.name} from beside itself")
    elif all(PurePosixPath(s).name.startswith("requirements") for s in sources):
        return  # read where pip install -r names it
    else:
        report.skip(
            where,
            f"{step.keyword} {step.value}",
            "files other than the handler's module are not copied into gpuserve's images: read data through "
            "weights=[gpuserve.Local(...)] or fetch it in setup()",
        )
