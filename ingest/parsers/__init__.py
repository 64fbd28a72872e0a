"""One parser per source format, registered by name in one small registry.

Every module in this package registers its parser with `@register("name")`;
the manifest names the parser a text is read with. Modules are discovered,
so adding a format means adding a module, nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ingest.units import Unit

# A parser reads the files of one text (in manifest order) and yields its units.
# `options` are the manifest's per-text parser options (may be empty).
Parser = Callable[[list[Path], dict[str, Any]], Iterable[Unit]]

_REGISTRY: dict[str, Parser] = {}
_discovered = False


def register(name: str) -> Callable[[Parser], Parser]:
    """Register a parser under the name the manifest uses."""

    def wrap(fn: Parser) -> Parser:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise RuntimeError(f"parser {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return wrap


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


def get_parser(name: str) -> Parser:
    """The parser registered as `name`; KeyError lists the known ones."""
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown parser {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def parser_names() -> list[str]:
    """Every registered parser name."""
    _discover()
    return sorted(_REGISTRY)
