"""Fake installed distributions, written as pip would write them, for plugin tests."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_distribution(site: Path, name: str, entry_points: dict[str, dict[str, str]],
                       modules: dict[str, str] | None = None, version: str = "1.0") -> Path:
    """Write an installed distribution (dist-info + modules) into ``site``, as pip would."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{ep} = {target}" for ep, target in eps.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for filename, source in (modules or {}).items():
        (site / filename).write_text(textwrap.dedent(source))
    return site
