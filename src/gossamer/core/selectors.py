"""Kubernetes label selectors: `app=web,version!=v1,tier in (a,b),!canary,env`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Op = Literal["=", "!=", "in", "notin", "exists", "!exists"]

_SET_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: Op
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # != and notin also match objects without the key, as on Kubernetes.
        return not present or labels[self.key] not in self.values


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Selector:
        """Equality on every pair: a Service's `selector` map."""
        return cls(tuple(Requirement(k, "=", frozenset([v])) for k, v in sorted(labels.items())))

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse kubectl's `-l` syntax; raises ValueError naming the bad term."""
        reqs: list[Requirement] = []
        for term in _split_terms(text):
            if not term.strip():
                continue
            if m := _SET_RE.match(term):
                values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
                reqs.append(
                    Requirement(m.group(1), "in" if m.group(2) == "in" else "notin", values)
                )
            elif m := _EQ_RE.match(term):
                op: Op = "!=" if m.group(2) == "!=" else "="
                reqs.append(Requirement(m.group(1), op, frozenset([m.group(3)])))
            elif m := _EXISTS_RE.match(term):
                reqs.append(Requirement(m.group(2), "!exists" if m.group(1) else "exists"))
            else:
                raise ValueError(f"invalid label selector term {term.strip()!r}")
        return cls(tuple(reqs))


def _split_terms(text: str) -> list[str]:
    # Commas separate terms except inside the parentheses of `in (a,b)`.
    terms, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return terms
