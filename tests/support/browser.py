"""Driving the dashboard in Debian's headless Chromium with Playwright (no browser download).

Used by the end-to-end test and by ``docs/screenshots/capture.py``. The server is started through the
real ``toptune dashboard`` command on a free localhost port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the dashboard exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the dashboard did not answer at {url} within {timeout:.0f} s")


@contextmanager
def dashboard(store: Path, log: Path, timeout: float = 60) -> Iterator[str]:
    """``toptune dashboard --store STORE`` on a free port; yields its URL and stops it afterwards."""
    port = free_port()
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "toptune.cli", "dashboard", "--store", str(store),
                                   "--port", str(port), "--address", HOST],
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://{HOST}:{port}"
    try:
        _wait_healthy(url, server, timeout)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # its own session: the server and nothing else
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@contextmanager
def chromium(width: int = 1400, height: int = 1000):
    """A Playwright page in the system's Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)  # a loaded two-core machine renders slowly
            yield page
        finally:
            browser.close()


def settle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the script run that the last action started has finished rendering."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)
    page.wait_for_timeout(300)  # charts draw after the run ends
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


def open_page(page, url: str, name: str, query: str = "") -> None:
    """Open a page by its name in the dashboard's PAGES (the first one lives at the root)."""
    page.goto(f"{url}/{'' if name == 'runs' else name}{query}")
    page.wait_for_selector('[data-testid="stApp"]')
    settle(page)


def screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main section, so the viewport grows to fit it first."""
    size = page.viewport_size
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height))})
    settle(page)
    page.wait_for_timeout(500)  # charts resize to the new viewport
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def exceptions(page) -> list[str]:
    return page.locator('[data-testid="stException"]').all_inner_texts()
