"""Validation errors that name the resource, the field path and the reason.

`TrafficSplit bookstore/bookstore-split: spec.backends[1].weight: must be >= 0, got -5`
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


@dataclass
class ResourceError(ValueError):
    """One document (or request) that cannot be accepted, with every problem found in it."""

    ref: str
    problems: list[Problem] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def lines(self) -> list[str]:
        prefix = f"{self.source}: " if self.source else ""
        return [f"{prefix}{self.ref}: {p}" for p in self.problems]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource": self.ref,
            "source": self.source,
            "problems": [{"path": p.path, "reason": p.reason} for p in self.problems],
        }


class ApplyError(ValueError):
    """Several documents failed; nothing was applied."""

    def __init__(self, errors: Sequence[ResourceError]) -> None:
        self.errors = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(line for e in self.errors for line in e.lines())

    def to_dict(self) -> dict[str, Any]:
        return {"errors": [e.to_dict() for e in self.errors]}


def format_loc(loc: Iterable[int | str], prefix: str = "") -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _is_union_member(part):
            # pydantic puts union member names in the path; the user never wrote them.
            continue
        elif out:
            out += f".{part}"
        else:
            out = part
    return out


# Union members pydantic names in error paths: `int`, `dict[str,str]`, `list[...]`. (A bare
# `set` is left alone: HTTPHeaderFilter has a field of that name.)
_TYPE_LABEL = re.compile(
    r"^(str|int|float|bool|dict|list)$|^(dict|list|tuple|set|frozenset)\[.*\]$"
)


def _is_union_member(part: str) -> bool:
    return part.startswith(("function-", "tagged-union", "union[")) or bool(_TYPE_LABEL.match(part))


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return str(value)


_TYPE_NAMES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}.get(
        type(value), type(value).__name__
    )


def reason_for(err: dict[str, Any]) -> str:
    """Turn one pydantic error into a short sentence a manifest author understands."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in _TYPE_NAMES:
        if isinstance(value, dict | list) or value is None:
            return f"expected {_TYPE_NAMES[kind]}, got {_show(value)}"
        return f"expected {_TYPE_NAMES[kind]}, got {_type_name(value)} {_show(value)}"
    if kind == "greater_than_equal":
        return f"must be >= {_num(ctx.get('ge'))}, got {_show(value)}"
    if kind == "greater_than":
        return f"must be > {_num(ctx.get('gt'))}, got {_show(value)}"
    if kind == "less_than_equal":
        return f"must be <= {_num(ctx.get('le'))}, got {_show(value)}"
    if kind == "less_than":
        return f"must be < {_num(ctx.get('lt'))}, got {_show(value)}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {_show(value)}"
    if kind in ("too_short", "too_long"):
        limit = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        return f"must have {word} {limit} item(s)"
    if kind == "string_too_short":
        return f"must be at least {ctx.get('min_length')} character(s) long"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}, got {_show(value)}"
    if kind == "value_error":
        message = str(ctx.get("error", err.get("msg", "")))
        return message
    if kind == "union_tag_invalid":
        return f"must be one of {ctx.get('expected_tags')}, got {_show(ctx.get('tag'))}"
    if kind == "union_tag_not_found":
        return f"needs the field {ctx.get('discriminator')!s}"
    return str(err.get("msg", kind))


def problems_from_validation(exc: ValidationError, prefix: str = "") -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        item = (format_loc(err["loc"], prefix), reason_for(dict(err)))
        if item not in seen:
            seen.add(item)
            out.append(Problem(*item))
    return out
