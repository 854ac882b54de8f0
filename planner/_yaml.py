"""Safe YAML/JSON reading with one-line errors naming the file."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from planner.errors import InputError, PlannerError


def read_text(path: Path, what: str) -> str:
    """Return the text of ``path`` or raise a one-line error naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlannerError(f"{what} {path}: file not found") from None
    except IsADirectoryError:
        raise PlannerError(f"{what} {path}: is a folder, expected a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlannerError(f"{what} {path}: cannot read ({exc.__class__.__name__}: {exc})") from None


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-9``/``2E6`` as numbers (YAML 1.2 floats; PyYAML's 1.1 rules want a
    dot and a signed exponent) and rejects a key given twice in one mapping."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+][0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def _mapping_no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice (line {line})",
                                                    key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_no_duplicates)


def load_yaml(path: Path, what: str = "file") -> Any:
    """Parse YAML safely (no object construction); a syntax error or a duplicate key names the file and line."""
    text = read_text(path, what)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise PlannerError(f"{what} {path}:{where} malformed YAML ({problem})") from None


def load_json(path: Path, what: str = "file") -> Any:
    """Parse JSON; a syntax error names the file, line and column."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlannerError(
            f"{what} {path}: malformed JSON at line {exc.lineno} column {exc.colno} ({exc.msg})"
        ) from None


def number(value: Any, field: str, where: str, *, positive: bool = True, allow_zero: bool = False) -> float:
    """Check that ``value`` is a finite real number (not a bool, not a string) and return it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(field, "a number", value, where=where)
    val = float(value)
    if not math.isfinite(val):
        raise InputError(field, "a finite number", value, where=where)
    if positive and (val < 0 or (val == 0 and not allow_zero)):
        raise InputError(field, "a number > 0" if not allow_zero else "a number >= 0", value, where=where)
    return val


def integer(value: Any, field: str, where: str, *, minimum: int = 1) -> int:
    """Check that ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InputError(field, f"an integer >= {minimum}", value, where=where)
    if value < minimum:
        raise InputError(field, f"an integer >= {minimum}", value, where=where)
    return int(value)


def text(value: Any, field: str, where: str) -> str:
    """Check that ``value`` is a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(field, "a non-empty string", value, where=where)
    return value.strip()
