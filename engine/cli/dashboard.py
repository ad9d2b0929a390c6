"""``toptune dashboard``: the Streamlit app, served headless (the engine never imports the dashboard)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import typer

from ..store import Store
from . import options as opt
from .common import Commands, out

commands = Commands()
register = commands.register


def app_script() -> Path:
    """The dashboard's ``app.py``, found without importing the dashboard package."""
    spec = importlib.util.find_spec("toptune.dashboard")
    return Path(spec.origin).with_name("app.py")


def command(store: Path, port: int = 8501, address: str = "localhost") -> list[str]:
    """Headless on one address and port; no file watcher (nothing is edited while it serves)."""
    return [sys.executable, "-m", "streamlit", "run", str(app_script()), "--server.headless=true",
            f"--server.port={port}", f"--server.address={address}", "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false", "--client.toolbarMode=minimal", "--", "--store", str(store)]


def serve(store: Path, port: int = 8501, address: str = "localhost") -> None:
    """Become the Streamlit server (exec, no child): Ctrl-C and kill then reach the server itself."""
    store = Path(store).resolve()
    argv = command(store, port, address)
    os.execve(argv[0], argv, {**os.environ, "TOPTUNE_STORE": str(store)})


@commands.command()
def dashboard(
    store: Path | None = opt.Store,
    port: int = typer.Option(8501, min=1, max=65535, help="port to serve on"),
    address: str = typer.Option("localhost", help="address to listen on (0.0.0.0: every interface)"),
):
    """Open the web dashboard: runs, comparisons, launching runs, SQL, plugins."""
    path = Store(store).path  # constructing a Store opens nothing
    out.print(f"dashboard on http://{address}:{port} · store {path.resolve()} · Ctrl-C stops it", markup=False,
              soft_wrap=True)
    sys.stdout.flush()
    serve(path, port, address)


