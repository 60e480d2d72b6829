"""Source mutations for the mutation checks: a copy of a module with one text edit.

A mutation check breaks a learning rule the way a plausible bug would and asserts
that the ground-truth test above it rejects the broken rule, so a test that cannot
fail is caught.  The copy is compiled from the installed module's source with
exactly one occurrence of ``old`` replaced; the test then monkeypatches the
mutated function or class into place for its own duration.
"""

from __future__ import annotations

import inspect
import types


def mutated(module: types.ModuleType, old: str, new: str) -> types.ModuleType:
    """A fresh copy of ``module`` with the single occurrence of ``old`` replaced by ``new``."""
    source = inspect.getsource(module)
    count = source.count(old)
    if count != 1:
        raise AssertionError(f"mutation target occurs {count} times in {module.__name__} "
                             f"(expected once): {old!r}; update the mutation check")
    clone = types.ModuleType(module.__name__)
    clone.__file__ = module.__file__
    exec(compile(source.replace(old, new), module.__file__ or module.__name__, "exec"),
         clone.__dict__)
    return clone
