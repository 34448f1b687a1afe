"""A restricted unpickler for exam lists: built-in containers, strings and numbers only.

Unpickling runs whatever callables a pickle names, so a pickle from elsewhere can execute code (for example a
payload whose ``__reduce__`` returns ``os.system``). The published NYU exam lists hold only dicts, lists,
tuples, strings and numbers, which the pickle protocol encodes with dedicated opcodes that never look up a
global; every global lookup is therefore refused except a few harmless built-in types.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

__all__ = ["UnsafePickleError", "restricted_load", "restricted_loads"]

# Built-in types whose pickled form needs a global lookup (sets and complex numbers in older protocols).
# Protocols 0-2 spell the module "__builtin__" (Python 2's name).
_ALLOWED_GLOBALS = frozenset(
    (module, name) for module in ("builtins", "__builtin__") for name in ("set", "frozenset", "complex")
)
_PLAIN_TYPES = (str, bytes, int, float, bool, complex, type(None))
# Limits of the plain-data check: objects visited (each shared container once) and nesting depth.
MAX_OBJECTS = 1_000_000
MAX_DEPTH = 100


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """The pickle names a global, holds an object that the restricted unpickler does not admit, or is too big.

    It is also a ``ValueError``, like the package's other errors about bad input files.
    """


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to load global {module}.{name}: only built-in containers, strings and numbers are allowed"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing to load a persistent object reference")


def _check_plain(value: Any, max_objects: int = MAX_OBJECTS, max_depth: int = MAX_DEPTH) -> None:
    """Check that ``value`` is plain data all the way down (defence in depth after the restricted load).

    Each container is visited once (by id): a pickle memoises shared objects, so 40 nested ``[x, x]`` pairs
    hold 41 objects but 2**40 paths to the leaves. The walk is iterative and stops after ``max_objects``.
    """
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(value, 0)]
    visited = 0
    while stack:
        item, depth = stack.pop()
        visited += 1
        if visited > max_objects:
            raise UnsafePickleError(f"data holds more than {max_objects:,} objects")
        if isinstance(item, _PLAIN_TYPES):
            continue
        if not isinstance(item, (dict, list, tuple, set, frozenset)):
            raise UnsafePickleError(f"unexpected object of type {type(item).__name__}")
        if depth > max_depth:
            raise UnsafePickleError(f"data nested more than {max_depth} levels deep")
        if id(item) in seen:
            continue
        seen.add(id(item))
        children = [part for pair in item.items() for part in pair] if isinstance(item, dict) else list(item)
        stack.extend((child, depth + 1) for child in children)


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` admitting only dicts, lists, tuples, sets, strings, bytes, numbers, booleans and None.

    Raises:
        UnsafePickleError: the pickle references any other global (a class or function) or object, holds more
            than ``MAX_OBJECTS`` objects or is nested more than ``MAX_DEPTH`` levels deep.
        pickle.UnpicklingError: the data is not a valid pickle.
    """
    value = _RestrictedUnpickler(io.BytesIO(data)).load()
    _check_plain(value)
    return value


def restricted_load(path: str | os.PathLike[str]) -> Any:
    """:func:`restricted_loads` on a file; errors name the file.

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: (a ``ValueError``) the file holds anything but plain data, or too much of it.
        ValueError: the file is not a valid or is a truncated pickle.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"{name}: no such pickle file")
    with open(name, "rb") as handle:
        data = handle.read()
    try:
        return restricted_loads(data)
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{name}: {err}") from err
    except (pickle.UnpicklingError, EOFError, ValueError, IndexError, TypeError) as err:
        raise ValueError(f"{name}: not a valid pickle ({type(err).__name__}: {err})") from err
