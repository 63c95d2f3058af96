"""Layers import one way: the runtime that runs in containers never imports Jinja, the adapters or the CLI."""

from __future__ import annotations

import subprocess
import sys

from tests.apps import ROOT

BLOCKER = """
import sys
BLOCKED = ('gpuserve.adapters', 'gpuserve.cli', 'gpuserve.build', 'gpuserve.render')
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'jinja2' or name.startswith(BLOCKED):
            raise ImportError('blocked in the runtime: ' + name)
sys.meta_path.insert(0, Block())
"""


def test_runtime_serves_with_jinja_and_cli_blocked() -> None:
    code = (
        BLOCKER
        + f"""
from gpuserve.loader import load_app
from gpuserve.runtime import ModelHost
from gpuserve.runtime.server import create_app
from gpuserve.runtime.serve import serve
host = ModelHost(load_app({str(ROOT / "examples/hello/app.py")!r}).cls)
create_app(host)
print(host.predict({{'name': 'x'}}))
"""
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'greeting': 'Hello, x.'}"


def test_blocker_really_blocks() -> None:
    result = subprocess.run([sys.executable, "-c", BLOCKER + "import jinja2"], capture_output=True, text=True)
    assert result.returncode != 0 and "blocked in the runtime: jinja2" in result.stderr
