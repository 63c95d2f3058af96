"""The only Jinja Environment: templates kept as package files, StrictUndefined, quoting filters."""

from __future__ import annotations

import json
import shlex
from functools import cache
from typing import Any

import jinja2


def docker_quote(value: str) -> str:
    """A double-quoted Dockerfile word: backslash, quote and $ escaped, so values cannot break out."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def json_compact(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))


_YAML_LINE_BREAKS = "\x85\u2028\u2029\ufeff"


def yaml_quote(value: str) -> str:
    """A YAML double-quoted scalar: quotes, backslashes, controls and YAML's extra line breaks escaped."""
    out = []
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or 0x7F <= code <= 0x9F or char in _YAML_LINE_BREAKS:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gpuserve", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(
        shell=shlex.quote,
        docker=docker_quote,
        json=json_compact,
        pyrepr=repr,
        yaml=yaml_quote,
    )
    return env


def render(template: str, context: Any) -> str:
    """Render templates/<template> with one typed context object, passed whole as `ctx`."""
    return environment().get_template(template).render(ctx=context)
