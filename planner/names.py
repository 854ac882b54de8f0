"""Name resolution shared by the hardware and model databases.

Names match case-insensitively after folding separators: ``Llama 3.1 70B``,
``llama-3.1-70b`` and ``llama_3.1_70B`` are the same key. Unknown names fail with the
closest known names (difflib ratio), so a typo tells the user what they meant.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import TypeVar

from planner.errors import PlannerError, UnknownNameError, echo

T = TypeVar("T")

_SEP = re.compile(r"[\s_\-]+")
MAX_NAME = 256  # characters; no id, alias or Hugging Face repo id is longer


def fold(name: str) -> str:
    """Canonical lookup key: lower case, whitespace/underscores/hyphens folded to '-'."""
    return _SEP.sub("-", name.strip().lower()).strip("-")


def build_index(entries: Iterable[tuple[str, Iterable[str], T]], kind: str) -> dict[str, T]:
    """Map every folded id and alias to its entry; two entries claiming one name is an error."""
    index: dict[str, T] = {}
    owner: dict[str, str] = {}
    for ident, aliases, value in entries:
        for name in (ident, *aliases):
            key = fold(name)
            if key in owner and owner[key] != ident:
                raise PlannerError(f"{kind} name {echo(name)} is claimed by both {owner[key]} and {ident}")
            index[key] = value
            owner[key] = ident
    return index


def resolve(name: str, index: Mapping[str, T], kind: str, ids: Iterable[str]) -> T:
    """Look ``name`` up in ``index``; raise UnknownNameError listing close matches."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownNameError(f"{kind}: expected a {kind} name (got {echo(name)})")
    if len(name) > MAX_NAME:
        raise UnknownNameError(f"unknown {kind} {echo(name)}: expected a name of at most {MAX_NAME} characters")
    key = fold(name)
    if key in index:
        return index[key]
    # A Hugging Face repo id resolves by its last path part too ("org/Model-Name").
    tail = fold(name.split("/")[-1])
    if tail in index:
        return index[tail]
    choices = sorted(set(ids))
    close = difflib.get_close_matches(key, [fold(c) for c in choices] + list(index), n=4, cutoff=0.5)
    by_fold = {fold(c): c for c in choices}
    suggestions: list[str] = []
    for c in close:
        label = by_fold.get(c, c)
        if label not in suggestions:
            suggestions.append(label)
    hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else f"; known: {', '.join(choices)}"
    raise UnknownNameError(f"unknown {kind} {echo(name)}{hint}")
