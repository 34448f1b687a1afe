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


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global or holds an object that the restricted unpickler does not admit."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to load global {module}.{name}: only built-in containers, strings and numbers are allowed"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing to load a persistent object reference")


def _check_plain(value: Any, depth: int = 0) -> None:
    # Defence in depth: whatever got through must be plain data all the way down.
    if depth > 100:
        raise UnsafePickleError("data nested more than 100 levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, depth + 1)
            _check_plain(item, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _check_plain(item, depth + 1)
    elif not isinstance(value, _PLAIN_TYPES):
        raise UnsafePickleError(f"unexpected object of type {type(value).__name__}")


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` admitting only dicts, lists, tuples, sets, strings, bytes, numbers, booleans and None.

    Raises:
        UnsafePickleError: the pickle references any other global (a class or function) or object.
        pickle.UnpicklingError: the data is not a valid pickle.
    """
    value = _RestrictedUnpickler(io.BytesIO(data)).load()
    _check_plain(value)
    return value


def restricted_load(path: str | os.PathLike[str]) -> Any:
    """:func:`restricted_loads` on a file; errors name the file.

    Raises:
        UnsafePickleError: the file holds anything but plain data.
        ValueError: the file is not a valid or is a truncated pickle.
    """
    name = os.fspath(path)
    with open(name, "rb") as handle:
        data = handle.read()
    try:
        return restricted_loads(data)
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{name}: {err}") from err
    except (pickle.UnpicklingError, EOFError, ValueError, IndexError, TypeError) as err:
        raise ValueError(f"{name}: not a valid pickle ({type(err).__name__}: {err})") from err
