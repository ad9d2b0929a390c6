"""Studies: plans of runs linked by one id, run through the ordinary recording path and summarised.

One row of ``STUDIES`` per kind. The CLI's commands, the job worker, the Launch page and the jobs panel
all read the table, so a new study is one module defining a ``Study``, one line here, one command and
one page.
"""

from __future__ import annotations

from ..errors import ParamError
from .clustering import STUDY as CLUSTER
from .common import Cell, Study
from .compare import STUDY as COMPARE
from .robustness import STUDY as ROBUSTNESS
from .selection import STUDY as SELECTION

STUDIES: dict[str, Study] = {s.name: s for s in (COMPARE, ROBUSTNESS, SELECTION, CLUSTER)}

__all__ = ["STUDIES", "Cell", "Study", "get_study", "register_study"]


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise ParamError(f"unknown study '{name}' (available: {', '.join(STUDIES)})")
    return STUDIES[name]


def register_study(study: Study) -> Study:
    """Add a kind of study in this process (its command and page register themselves)."""
    STUDIES[study.name] = study
    return study
