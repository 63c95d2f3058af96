"""Resolve an APP reference ("path/file.py:Class", "pkg.module:Class", class optional) to a model class."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from .decorator import is_model, spec_of
from .errors import LoadError
from .signature import PredictSignature
from .spec import ModelSpec


@dataclass(frozen=True)
class LoadedApp:
    """A decorated class with where it came from: what targets need to copy the code along."""

    cls: type
    spec: ModelSpec
    signature: PredictSignature
    module_name: str
    source: Path | None  # the .py file, or the top-level package directory, holding the class

    @property
    def top_level(self) -> str:
        """The name the copied code has at the top of a build directory (a module or a package)."""
        return self.module_name.split(".")[0]

    @property
    def entry(self) -> str:
        """The reference a container uses to load the same class, relative to its code directory."""
        return f"{self.module_name}:{self.cls.__name__}"


def load_app(ref: str) -> LoadedApp:
    """Import the module named by ref and find its model class."""
    module_part, _, class_part = ref.partition(":")
    if not module_part:
        raise LoadError(
            f"APP {ref!r} names no module. Write it as path/to/file.py:ClassName or package.module:ClassName."
        )
    source: Path | None
    if module_part.endswith(".py") or "/" in module_part or Path(module_part).is_file():
        module, source = _import_file(Path(module_part))
    else:
        module = _import_module(module_part)
        source = _package_source(module)
    cls = _find_class(module, class_part, ref)
    spec, signature = spec_of(cls)
    module_name = module.__name__ if module_part == module.__name__ else Path(module.__file__ or module.__name__).stem
    return LoadedApp(cls, spec, signature, module_name, source)


def _import_file(path: Path) -> tuple[ModuleType, Path]:
    path = path.resolve()
    if not path.is_file():
        raise LoadError(f"APP file {str(path)!r} does not exist. Check the path, relative to the current directory.")
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None:
        if Path(getattr(existing, "__file__", "") or "").resolve() == path:
            return existing, path
        # Two files with the same name (examples/*/app.py): keep both importable.
        name = f"_gpuserve_app_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}_{path.stem}"
        if name in sys.modules:
            return sys.modules[name], path
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"APP file {str(path)!r} cannot be imported as Python.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module, path


def _import_module(name: str) -> ModuleType:
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise LoadError(
            f"APP module {name!r} cannot be imported ({exc}). Install it, or run from the directory that holds it."
        ) from None


def _package_source(module: ModuleType) -> Path | None:
    top = sys.modules[module.__name__.split(".")[0]]
    file = getattr(top, "__file__", None)
    if file is None:
        return None
    path = Path(file).resolve()
    return path.parent if path.name == "__init__.py" else path


def _find_class(module: ModuleType, class_name: str, ref: str) -> type:
    if class_name:
        cls: type | None = getattr(module, class_name, None)
        if cls is None:
            raise LoadError(f"APP {ref!r}: {module.__name__} has no class {class_name!r}.")
        if not is_model(cls):
            raise LoadError(
                f"APP {ref!r}: {class_name} is not decorated with @gpuserve.model. Add the decorator above the class."
            )
        return cls
    found: list[type] = [obj for obj in vars(module).values() if is_model(obj) and obj.__module__ == module.__name__]
    if len(found) == 1:
        return found[0]
    if not found:
        raise LoadError(
            f"APP {ref!r}: no @gpuserve.model class in {module.__name__}. Decorate one, or name it as {ref}:ClassName."
        )
    names = ", ".join(sorted(c.__name__ for c in found))
    raise LoadError(f"APP {ref!r}: {module.__name__} holds several models ({names}). Name one: {ref}:ClassName.")
