"""Statuses of steps, suites and checks, and the one rule that combines them: the worst wins."""

from __future__ import annotations

from typing import Iterable

# From best to worst. `info` is an expectation of severity info that did not hold: noted,
# never a failure.
ORDER = ("passed", "skipped", "not run", "info", "warning", "failed", "error", "interrupted")


def worst(statuses: Iterable[str], default: str = "passed") -> str:
    """The worst of the statuses (default when there are none)."""
    found = [s for s in statuses if s in ORDER]
    return max(found, key=ORDER.index) if found else default
