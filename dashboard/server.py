"""Starting the dashboard: the ``streamlit run`` command line behind ``toptune dashboard``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")


def command(store: Path, port: int = 8501, address: str = "localhost") -> list[str]:
    """Headless on one address and port; no file watcher (nothing is edited while it serves)."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless=true",
            f"--server.port={port}", f"--server.address={address}", "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false", "--client.toolbarMode=minimal", "--", "--store", str(store)]


def serve(store: Path, port: int = 8501, address: str = "localhost") -> None:
    """Become the Streamlit server (exec, no child): Ctrl-C and kill then reach the server itself."""
    store = Path(store).resolve()
    argv = command(store, port, address)
    os.execve(argv[0], argv, {**os.environ, "TOPTUNE_STORE": str(store)})
