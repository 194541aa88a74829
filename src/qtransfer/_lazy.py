"""Lazy package exports: ``from qtransfer.X import name`` loads only the module that defines ``name``.

PennyLane's ``qnn/__init__.py`` idea: importing a package must not import torch, torchvision or
matplotlib until something that needs them is used.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import Any, Callable


def lazy_getattr(package: str, exports: dict[str, str], modules: tuple[str, ...] = ()) -> Callable[[str], Any]:
    """A module ``__getattr__``: ``exports[name]`` names the submodule of ``package`` that defines
    ``name``; ``modules`` are submodules exposed as attributes. Each is imported on first use."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(import_module(f"{package}.{exports[name]}"), name)
        if name in modules:
            return import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


class _ExportsFirst(types.ModuleType):
    """A package whose exported names win over its submodules of the same name: importing the submodule
    ``qtransfer.compare`` would otherwise replace the function ``qtransfer.compare`` with the module
    (the import system sets the child as an attribute of its parent), and the second call of
    ``qtransfer.compare(...)`` in a session would call a module. The submodule stays importable
    (``from qtransfer.compare import run_compare``; ``sys.modules``)."""

    _lazy_exports: frozenset = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._lazy_exports and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


def exports_first(package: str, exports: dict[str, str]) -> None:
    """Make ``package`` (already in ``sys.modules``) keep ``exports`` over submodules of the same name."""
    module = sys.modules[package]
    module.__class__ = _ExportsFirst
    module._lazy_exports = frozenset(exports)
