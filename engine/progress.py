"""Progress reporting, decoupled from where it is shown.

The engine reports stages and steps to a ``Progress``; the CLI shows tqdm bars, tests pass nothing,
and other callers (the dashboard's job runner) can write a small file that a page polls.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager


class Progress:
    """Silent base: subclasses override ``begin``, ``advance`` and ``end``."""

    def begin(self, stage: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def end(self) -> None:
        pass

    def note(self, text: str) -> None:
        """A one-line message between stages (e.g. 'features loaded from cache')."""

    def postfix(self, text: str) -> None:
        """A short status shown beside the current stage's bar (e.g. 'finished 4 · failed 1')."""

    def set_total(self, total: int | None) -> None:
        """The current stage's size, once known (e.g. a solver's iteration cap, learnt inside ``fit``)."""

    def overall(self, done: int, total: int) -> None:
        """Where a job of several runs stands (a comparison, a study): ``done`` of its ``total`` runs ended."""

    unit: str | None = None  # what the current stage counts ('img', 'cell', 'it'), set by ``stage``

    @contextmanager
    def stage(self, name: str, total: int | None = None, unit: str | None = None) -> Iterator[Progress]:
        self.unit = unit or ("img" if total else "it")
        self.begin(name, total)
        try:
            yield self
        finally:
            self.end()


class TqdmProgress(Progress):
    """A tqdm bar per stage, on stderr."""

    def __init__(self, disable: bool | None = None):
        self._bar = None
        self._disable = disable

    # A stage of unknown size shows a clock until it counts something ("fit ridge: 0it" said nothing true).
    CLOCK = "{desc}: {elapsed}"

    def begin(self, stage, total):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=stage, unit=self.unit or ("img" if total else "it"), leave=True,
                         disable=self._disable, dynamic_ncols=True, bar_format=None if total else self.CLOCK)

    def _format(self):
        # A disabled bar (tqdm disables itself off a terminal when ``disable`` is None) has no bar_format.
        return getattr(self._bar, "bar_format", None)

    def advance(self, n=1):
        if self._bar is not None:
            if self._format() is not None:
                self._bar.bar_format = None  # counting now: the usual bar
            self._bar.update(n)

    def postfix(self, text):
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def set_total(self, total):
        if self._bar is not None:
            self._bar.total = total
            if self._format() is not None:
                self._bar.bar_format = None
            self._bar.refresh()

    def end(self):
        if self._bar is not None:
            if self._format() == self.CLOCK:  # a step of unknown size, counted by nobody
                self._bar.bar_format = "{desc}: done in {elapsed}"
                self._bar.refresh()
            self._bar.close()
            self._bar = None

    def note(self, text):
        from tqdm.auto import tqdm

        if not self._disable:
            tqdm.write(text)


_SILENT = Progress()
_current: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("toptune_progress", default=None)


def current() -> Progress:
    """The progress of the stage now running, for code that is handed no ``Progress`` (a classifier's
    ``fit``: plugins keep scikit-learn's signature). Silent outside ``reporting``."""
    return _current.get() or _SILENT


@contextmanager
def reporting(progress: Progress) -> Iterator[Progress]:
    """Make ``progress`` what ``current()`` returns inside the block."""
    token = _current.set(progress)
    try:
        yield progress
    finally:
        _current.reset(token)
