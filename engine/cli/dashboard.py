"""``toptune dashboard``: the Streamlit app, served headless (the engine never imports the dashboard)."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import sys
from pathlib import Path

import typer

from ..errors import ParamError
from ..params import DATA_ROOT_ENV
from ..store import Store
from . import options as opt
from .common import Commands, err, out

commands = Commands()
register = commands.register
# The dashboard app (toptune.dashboard.app) reads these; the engine never imports it.
TOKEN_ENV, READ_ONLY_ENV = "TOPTUNE_DASHBOARD_TOKEN", "TOPTUNE_DASHBOARD_READ_ONLY"
MIN_TOKEN = 16


def app_script() -> Path:
    """The dashboard's ``app.py``, found without importing the dashboard package."""
    spec = importlib.util.find_spec("toptune.dashboard")
    return Path(spec.origin).with_name("app.py")


def command(store: Path, port: int = 8501, address: str = "localhost") -> list[str]:
    """Headless on one address and port; no file watcher (nothing is edited while it serves)."""
    return [sys.executable, "-m", "streamlit", "run", str(app_script()), "--server.headless=true",
            f"--server.port={port}", f"--server.address={address}", "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false", "--client.toolbarMode=minimal", "--", "--store", str(store)]


def serve(store: Path, port: int = 8501, address: str = "localhost", settings: dict | None = None) -> None:
    """Become the Streamlit server (exec, no child): Ctrl-C and kill then reach the server itself.

    ``settings`` (token, read-only, data root) travel as environment variables, never on a command line that
    ``ps`` shows; the job workers the dashboard starts inherit them.
    """
    store = Path(store).resolve()
    argv = command(store, port, address)
    os.execve(argv[0], argv, {**os.environ, "TOPTUNE_STORE": str(store), **(settings or {})})


def is_loopback(address: str) -> bool:
    """Whether only this machine can reach ``address`` (localhost, 127.x.x.x, ::1)."""
    if address.strip().lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure(address: str, token: str | None, read_only: bool, data_root: Path | None) -> dict:
    """The dashboard's settings as environment variables; checks them, and warns about an exposed address."""
    settings = {}
    if token is not None:
        if len(token) < MIN_TOKEN or token != token.strip():
            raise ParamError(f"--token must be at least {MIN_TOKEN} characters without surrounding spaces "
                             "(e.g. python -c 'import secrets; print(secrets.token_urlsafe())')")
        settings[TOKEN_ENV] = token
    if read_only:
        settings[READ_ONLY_ENV] = "1"
    if data_root is not None:
        if not data_root.is_dir():
            raise ParamError(f"--data-root {data_root} is not a folder")
        settings[DATA_ROOT_ENV] = str(data_root.resolve())
    if not is_loopback(address):
        guard = ("every page asks for the token, but traffic is plain HTTP: serve it behind a TLS reverse proxy "
                 "(README)" if token else "anyone who reaches it can see and launch runs: set --token, --read-only, "
                 "or serve it behind a reverse proxy (README)")
        err.print(f"warning: {address} is not a loopback address, so other machines can reach this dashboard; "
                  f"{guard}", style="yellow", soft_wrap=True)
    return settings


@commands.command()
def dashboard(
    store: Path | None = opt.Store,
    port: int = typer.Option(8501, min=1, max=65535, help="port to serve on"),
    address: str = typer.Option("localhost", help="address to listen on (0.0.0.0: every interface; warns)"),
    token: str | None = typer.Option(None, envvar=TOKEN_ENV, help="an access token every page asks for (once per "
                                     "browser session, or ?token=… in the URL); prefer the environment variable"),
    read_only: bool = typer.Option(False, "--read-only", help="no Launch page: results can be looked at and "
                                   "queried, nothing can be run"),
    data_root: Path | None = typer.Option(None, "--data-root", help="the only folder whose data folders and "
                                          "weights files jobs launched here may read"),
):
    """Open the web dashboard: runs, comparisons, launching runs, SQL, plugins."""
    path = Store(store).path  # constructing a Store opens nothing
    settings = exposure(address, token, read_only, data_root)
    out.print(f"dashboard on http://{address}:{port} · store {path.resolve()} · Ctrl-C stops it", soft_wrap=True)
    sys.stdout.flush()
    serve(path, port, address, settings)


