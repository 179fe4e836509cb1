"""Packages whose public names load on first use (PEP 562), so importing them stays light.

Slicer imports every module's Lib when it starts, and ``import lungus.infer`` should not
pull in torch until something is actually used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``.

    ``exports`` maps each public name to the module defining it: a full module path, or a
    submodule name relative to ``package``. A name is imported once, then cached in the
    package's namespace.
    """

    def module_of(name: str) -> str:
        module = exports[name]
        return module if module.startswith(package + ".") or module == package else f"{package}.{module}"

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_of(name)), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__, sorted(exports)
