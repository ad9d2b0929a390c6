"""Progress reporting, decoupled from where it is shown.

The engine reports stages and steps to a ``Progress``; the CLI shows tqdm bars, tests pass nothing,
and other callers (the dashboard's job runner) can write a small file that a page polls.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


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

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator["Progress"]:
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

    def begin(self, stage, total):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=stage, unit="img" if total else "it", leave=True,
                         disable=self._disable, dynamic_ncols=True)

    def advance(self, n=1):
        if self._bar is not None:
            self._bar.update(n)

    def end(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def note(self, text):
        from tqdm.auto import tqdm

        if not self._disable:
            tqdm.write(text)
