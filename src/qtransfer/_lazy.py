"""Lazy package exports: ``from qtransfer.X import name`` loads only the module that defines ``name``.

PennyLane's ``qnn/__init__.py`` idea: importing a package must not import torch, torchvision or
matplotlib until something that needs them is used.
"""

from __future__ import annotations

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
