"""Loading an agent class named in a config file: ``'package.module:Class'`` or ``'path/to/file.py:Class'``.

Agent hosts serve the class, and validators replay its skills on recorded calls: both load it the same way.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from staking.errors import ConfigError

from .agent import Agent

__all__ = ["load_agent_class"]


def load_agent_class(path: str) -> type[Agent]:
    """Imports ``'package.module:Class'`` or ``'path/to/file.py:Class'`` and checks it is an Agent subclass.

    Raises:
        ConfigError: the module or class is missing, or it is not an :class:`~agents.Agent`.
    """
    module_name, _, class_name = path.rpartition(":")
    if not module_name or not class_name:
        raise ConfigError(f"agent {path!r}: expected 'module:Class' or 'file.py:Class'")
    try:
        if module_name.endswith(".py"):
            module = _import_file(Path(module_name))
        else:
            module = importlib.import_module(module_name)
    except (ImportError, OSError) as exc:
        raise ConfigError(f"agent {path!r}: cannot import {module_name}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, Agent):
        raise ConfigError(f"agent {path!r}: {class_name} is not an Agent subclass")
    return cls


def _import_file(path: Path) -> ModuleType:
    """Imports a Python file as a module named after it (registered, so pickling and dataclasses work)."""
    # Like a script run with python: the file's own directory is importable, so it can import its neighbours.
    directory = str(path.resolve().parent)
    if directory not in sys.path:
        sys.path.append(directory)
    name = f"staked_agent_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
