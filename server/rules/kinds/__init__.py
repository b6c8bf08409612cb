"""The rule kinds: one module each, exposing `KIND` (a KindDef). Found by listing this
package, so adding a kind is adding its module (and its spec in core/rules_spec.py)."""

from __future__ import annotations

import importlib
import pkgutil

from core.rules_spec import AnyRule
from server.rules.kind import Binder, BoundRule, KindDef


def _discover() -> tuple[Binder, ...]:
    found: list[Binder] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if not isinstance(kind, KindDef):
            raise TypeError(f"rule kind module {module.__name__} has no KIND = KindDef(...)")
        found.append(kind)
    return tuple(found)


KINDS = _discover()


def bind(spec: AnyRule) -> BoundRule:
    """The rule spec bound to the one kind that evaluates it."""
    for kind in KINDS:
        bound = kind.bind(spec)
        if bound is not None:
            return bound
    raise TypeError(f"no module in server/rules/kinds/ evaluates rule kind {spec.kind!r}")
