"""What a contender's builder hands the harness: a step callable, or :class:`Unavailable` when it cannot run."""

from __future__ import annotations

from collections.abc import Callable

#: Augments the workload's whole batch once and returns the result (the harness does not inspect it).
Step = Callable[[], object]


class Unavailable(RuntimeError):
    """This contender cannot run here (library missing, device unsupported, backend broken)."""
