"""Safe YAML/JSON reading with one-line errors naming the file."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from planner.errors import InputError, PlannerError, shorten

MAX_BYTES = 8 * 2**20  # a scenario, hardware, profile or config file larger than this is not one


def read_text(path: Path, what: str) -> str:
    """Return the text of ``path`` (at most MAX_BYTES) or raise a one-line error naming it."""
    name = shorten(path, 200)
    try:
        if str(path) == "-":  # standard input (``planner example chat | planner plan -``)
            import sys

            name = "<stdin>"
            data = sys.stdin.buffer.read(MAX_BYTES + 1)
        else:
            with Path(path).open("rb") as fh:
                data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise PlannerError(f"{what} {name}: file not found") from None
    except IsADirectoryError:
        raise PlannerError(f"{what} {name}: is a folder, expected a file") from None
    except OSError as exc:
        raise PlannerError(f"{what} {name}: cannot read ({exc.__class__.__name__}: {exc.strerror or exc})") from None
    except ValueError:  # a NUL byte in the path
        raise PlannerError(f"{what} {name}: not a valid file name") from None
    if len(data) > MAX_BYTES:
        raise PlannerError(f"{what} {name}: larger than {MAX_BYTES // 2**20} MiB; expected a small text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlannerError(f"{what} {name}: cannot read (not UTF-8 text: {exc.reason} at byte {exc.start})") \
            from None


MAX_DEPTH = 64  # nesting levels a scenario, hardware, profile or model file may use
MAX_NODES = 100_000  # YAML nodes after expanding aliases (a billion-laughs file expands to ~10^9)


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-9``/``2E6`` as numbers (YAML 1.2 floats; PyYAML's 1.1 rules want a
    dot and a signed exponent), reads only true/false as booleans (YAML 1.2: ``off``, ``on``, ``yes``
    and ``no`` stay strings, so ``disaggregation: off`` means "off"), rejects a key given twice in one
    mapping, and refuses documents nested deeper than MAX_DEPTH or larger than MAX_NODES nodes once
    aliases are expanded (billion laughs)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Compose one node, refusing nesting deeper than MAX_DEPTH before Python's stack runs out."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Any:
        """The document's root node, checked for its size with every alias expanded."""
        node = super().get_single_node()
        if node is not None:
            _check_expanded_size(node)
        return node


class _TooDeep(yaml.YAMLError):
    """Nesting past MAX_DEPTH."""

    def __init__(self, mark: Any) -> None:
        super().__init__(f"nested deeper than {MAX_DEPTH} levels")
        self.problem = f"nested deeper than {MAX_DEPTH} levels"
        self.problem_mark = mark


class _TooLarge(yaml.YAMLError):
    """Alias expansion past MAX_NODES (or an alias that contains itself)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = None


def _check_expanded_size(root: yaml.Node) -> None:
    """Count the nodes of ``root`` as if every alias were copied out; refuse past MAX_NODES.

    Shared (aliased) nodes are sized once and memoised, so the count costs one pass over the
    distinct nodes however large the expansion; a node reached again while it is being sized
    is a recursive alias and is refused too.
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            open_.discard(key)
            size = 1 + sum(sizes[id(c)] for c in children)
            if size > MAX_NODES:
                raise _TooLarge(f"more than {MAX_NODES:,} values once aliases are expanded "
                                "(nested aliases such as a billion-laughs file are refused)")
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in open_:
            raise _TooLarge("an alias refers to a value that contains it (recursive alias)")
        open_.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in open_:
                raise _TooLarge("an alias refers to a value that contains it (recursive alias)")
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    """Direct child nodes of a sequence or mapping (keys and values); none for a scalar."""
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+][0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)
for _first, _resolvers in _Loader.yaml_implicit_resolvers.items():
    _Loader.yaml_implicit_resolvers[_first] = [r for r in _resolvers if r[0] != "tag:yaml.org,2002:bool"]
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


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
    """Parse YAML safely (no object construction); a syntax error, a duplicate key, nesting deeper than
    MAX_DEPTH or a billion-laughs alias expansion names the file (and the line where known)."""
    text = read_text(path, what)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise PlannerError(f"{what} {path}:{where} malformed YAML ({problem})") from None
    except RecursionError:
        raise PlannerError(f"{what} {path}: malformed YAML (nested too deeply)") from None


def load_json(path: Path, what: str = "file") -> Any:
    """Parse JSON; a syntax error names the file, line and column; nesting past MAX_DEPTH is refused."""
    text = read_text(path, what)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlannerError(
            f"{what} {path}: malformed JSON at line {exc.lineno} column {exc.colno} ({exc.msg})"
        ) from None
    except RecursionError:
        raise PlannerError(f"{what} {path}: malformed JSON (nested deeper than {MAX_DEPTH} levels)") from None
    check_depth(data, f"{what} {path}", "JSON")
    return data


def load_toml(path: Path, what: str = "file") -> Any:
    """Parse TOML (Python 3.11+); a syntax error or nesting past MAX_DEPTH names the file."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise PlannerError(f"{what} {path}: TOML files need Python 3.11+; use YAML") from None
    text = read_text(path, what).removeprefix("\ufeff")  # a byte-order mark, as editors on Windows write
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlannerError(f"{what} {path}: malformed TOML ({exc})") from None
    except RecursionError:
        raise PlannerError(f"{what} {path}: malformed TOML (nested deeper than {MAX_DEPTH} levels)") from None
    check_depth(data, f"{what} {path}", "TOML")
    return data


def check_depth(data: Any, where: str, kind: str = "document") -> None:
    """Refuse lists/mappings nested deeper than MAX_DEPTH (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise PlannerError(f"{where}: malformed {kind} (nested deeper than {MAX_DEPTH} levels)")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


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


def integer(value: Any, field: str, where: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Check that ``value`` is an integer >= ``minimum`` (and <= ``maximum`` when given)."""
    expected = f"an integer >= {minimum}" if maximum is None else f"an integer in {minimum}..{maximum:,}"
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InputError(field, expected, value, where=where)
    if value < minimum or (maximum is not None and value > maximum):
        raise InputError(field, expected, value, where=where)
    return int(value)


def bounded(value: Any, field: str, where: str, lo: float, hi: float, unit: str = "") -> float:
    """Check that ``value`` is a finite number in the physical range [lo, hi] and return it as float."""
    expected = f"a number in [{lo:g}, {hi:g}]" + (f" {unit}" if unit else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(field, expected, value, where=where)
    val = float(value)
    if not (math.isfinite(val) and lo <= val <= hi):
        raise InputError(field, expected, value, where=where)
    return val


def text(value: Any, field: str, where: str, *, max_len: int = 256) -> str:
    """Check that ``value`` is a non-empty string of at most ``max_len`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(field, "a non-empty string", value, where=where)
    if len(value) > max_len:
        raise InputError(field, f"a string of at most {max_len} characters", value, where=where)
    return value.strip()
