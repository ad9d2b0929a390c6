"""Joining a running Ray cluster: its token found the way Ray's own clients find it, cheap checks first.

Since Ray 2.59 a cluster started with ``ray start --head`` on a machine that holds a token (``~/.ray/auth_token``,
written by any local ``ray.init()`` or ``ray get-auth-token --generate``) requires that token on every RPC. Ray
turns token mode on by itself for ``ray start --head`` and ``ray.init(address="auto")``, but not for a driver
given an explicit address, which then retries for 20 s, flooding stderr with native warnings, and ends in a
ConnectionError. Here the driver does what ``ray start`` does: with ``RAY_AUTH_MODE`` unset it uses token mode
when the cluster asks for a token and one is found, in Ray's order: ``RAY_AUTH_TOKEN``, the file named by
``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token`` (``--ray-token-file`` comes first and sets
``RAY_AUTH_TOKEN_PATH``). A set ``RAY_AUTH_MODE`` is respected.

Before ``ray.init`` (and so before a sweep writes any run), each check ends in one line naming the fix:
a TCP connect to the GCS port (unreachable address); Ray's own client, ``ray status``, in a subprocess with a
timeout, whose stderr is parsed (token missing or rejected, Ray version mismatch) so native logs never reach
the terminal; a raylet of that cluster on this machine (a driver must run on a node of the cluster). Then
``ray.init`` runs with the native stderr captured, and its errors (a Python version mismatch) become one line.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToptuneError

MODE_VAR, TOKEN_VAR, TOKEN_PATH_VAR = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"
TCP_TIMEOUT_S = 3.0
PROBE_TIMEOUT_S = 20.0
GET_TOKEN = "run 'ray get-auth-token' on the head machine"


class ClusterError(ToptuneError):
    """The Ray cluster at an address cannot be joined; the message names the fix."""


def default_token_path() -> Path:
    """Where ``ray get-auth-token --generate`` and a local ``ray.init()`` keep the token (Ray's default)."""
    return Path.home() / ".ray" / "auth_token"


@dataclass
class Token:
    source: str  # where it came from, for messages: "--ray-token-file PATH", "RAY_AUTH_TOKEN", a path
    env: dict  # what the driver's environment needs so that Ray reads this token (None: unset the variable)


def _readable_token(path: Path, named: str) -> None:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ClusterError(f"{named}: cannot read the token file ({exc.strerror or exc}): copy the head's token "
                           f"there ({GET_TOKEN})") from None
    if not text:
        raise ClusterError(f"{named}: the token file is empty: copy the head's token there ({GET_TOKEN})")


def find_token(token_file: str | os.PathLike | None = None) -> Token | None:
    """The token this driver would present, in Ray's order of precedence, after ``--ray-token-file``."""
    if token_file is not None:
        path = Path(token_file).expanduser()
        _readable_token(path, f"--ray-token-file {token_file}")
        return Token(f"--ray-token-file {token_file}", {TOKEN_PATH_VAR: str(path.resolve()), TOKEN_VAR: None})
    if os.environ.get(TOKEN_VAR, "").strip():
        return Token(TOKEN_VAR, {})
    if os.environ.get(TOKEN_PATH_VAR):
        # Ray aborts the whole process on an unreadable RAY_AUTH_TOKEN_PATH: say so before it does.
        _readable_token(Path(os.environ[TOKEN_PATH_VAR]).expanduser(), f"{TOKEN_PATH_VAR}={os.environ[TOKEN_PATH_VAR]}")
        return Token(f"{TOKEN_PATH_VAR}={os.environ[TOKEN_PATH_VAR]}", {})
    path = default_token_path()
    if path.is_file() and path.read_text().strip():
        return Token(str(path), {})
    return None


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) of a GCS address."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ClusterError(f"Ray address '{address}' is not HOST:PORT (the head's GCS port, 6379 unless "
                           "'ray start --head --port' set another)")
    return host.strip("[]"), int(port)


def check_reachable(address: str) -> None:
    """A TCP connect to the GCS port: an address nothing listens on fails here in milliseconds."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=TCP_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc)).lower()
        raise ClusterError(f"cannot reach a Ray cluster at {address} ({reason}): check --address / RAY_ADDRESS, "
                           f"and that 'ray start --head --port={port}' runs on {host}") from None


@dataclass
class Probe:
    kind: str  # "ok", "auth", "version", "timeout", "other"
    detail: str = ""


def classify(returncode: int | None, stderr: str) -> Probe:
    """What a ``ray status`` (or ``ray.init``) run said, from its exit status and stderr."""
    if returncode == 0:
        return Probe("ok")
    version = re.search(r"Ray version mismatch: (.*)", stderr)
    if version:
        return Probe("version", version.group(1).strip())
    if re.search(r"AuthenticationError|InvalidAuthToken|Unauthenticated", stderr):
        return Probe("auth")
    if returncode is None:
        return Probe("timeout")
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith((" ", "Traceback"))]
    # a native log line starts with "[date time level pid tid] file.cc:line: "; keep its message
    last = re.sub(r"^\[[^\]]*\]\s*(\S+:\d+:\s*)?", "", lines[-1]) if lines else f"exit status {returncode}"
    return Probe("other", last)


def probe(address: str, env_updates: dict, timeout_s: float = PROBE_TIMEOUT_S) -> Probe:
    """Ask the cluster for its status with Ray's own client, in a subprocess with this driver's Ray and the
    given auth settings; its native retries and warnings stay in the captured stderr."""
    env = _with(os.environ, env_updates)
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "status", "--address", address]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return classify(None, err)
    return classify(done.returncode, done.stderr)


def _with(environ, updates: dict) -> dict:
    env = dict(environ)
    for key, value in updates.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def version_error(address: str, detail: str) -> ClusterError:
    import ray

    wanted = re.search(r"cluster has Ray version (\S+)", detail)
    pin = f"pip install ray=={wanted.group(1)}" if wanted else "the cluster's Ray version"
    return ClusterError(f"Ray version mismatch with the cluster at {address}: {detail}: the driver and every node "
                        f"need the same Ray; install it here ({pin}) or restart the cluster with Ray "
                        f"{ray.__version__}")


def _refused(address: str, result: Probe, token: Token | None) -> ClusterError:
    if result.kind == "version":
        return version_error(address, result.detail)
    if result.kind == "timeout":
        return ClusterError(f"no Ray cluster answered at {address} within {PROBE_TIMEOUT_S:.0f} s (something listens "
                            "on that port, but not a Ray GCS): check --address / RAY_ADDRESS")
    if result.kind == "auth":
        if token is None:
            return ClusterError(f"the Ray cluster at {address} requires an auth token and none was found here "
                                f"(RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, {default_token_path()}): {GET_TOKEN} and "
                                "pass the token with --ray-token-file PATH or RAY_AUTH_TOKEN")
        return ClusterError(f"the Ray cluster at {address} rejected the auth token from {token.source}: {GET_TOKEN} "
                            "and pass that token with --ray-token-file PATH or RAY_AUTH_TOKEN")
    return ClusterError(f"Ray could not query the cluster at {address}: {result.detail}")


def auth_settings(address: str, token_file=None) -> dict:
    """The ``RAY_AUTH_*`` settings (None: unset) under which this driver can join the cluster; raises one line
    when it cannot. With ``RAY_AUTH_MODE`` unset, the cluster decides: token mode only if it asks for a token
    (a token-mode driver cannot serve a cluster without tokens)."""
    mode = "token" if token_file is not None else (os.environ.get(MODE_VAR) or "").lower() or None
    token = find_token(token_file) if mode != "disabled" else None
    if mode is None:
        first = probe(address, {MODE_VAR: "disabled"})
        if first.kind == "ok":
            return {MODE_VAR: "disabled"}
        if first.kind != "auth":
            raise _refused(address, first, token)
        if token is None:
            raise _refused(address, first, None)
    elif mode == "disabled":
        result = probe(address, {})
        if result.kind == "auth":
            raise ClusterError(f"the Ray cluster at {address} requires an auth token but {MODE_VAR}=disabled here: "
                               f"unset {MODE_VAR} (or set it to token) and give the head's token ({GET_TOKEN})")
        if result.kind != "ok":
            raise _refused(address, result, None)
        return {}
    elif token is None:
        raise _refused(address, Probe("auth"), None)
    settings = {MODE_VAR: "token", **token.env}
    result = probe(address, settings)
    if result.kind != "ok":
        raise _refused(address, result, token)
    return settings


def check_local_node(address: str) -> None:
    """A driver attaches to a raylet of the cluster on its own machine (Ray finds it in the process table and
    otherwise waits 60 s); say at once when there is none."""
    import psutil

    _, port = split_address(address)
    flag = re.compile(rf"--gcs[-_]address=\S*:{port}\b")
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
        except (psutil.Error, TypeError):
            continue
        if "raylet" in (proc.info["name"] or "") and flag.search(cmdline):
            return
    raise ClusterError(f"no Ray node of the cluster at {address} runs on this machine, and a sweep's driver must run "
                       f"on one: run toptune on the head, or first join this machine with 'ray start "
                       f"--address={address}' (with the head's token, see 'ray get-auth-token')")


def apply(settings: dict) -> None:
    """Put the auth settings in this process's environment and make Ray read them again: Ray reads
    ``RAY_AUTH_MODE`` and the token once and caches them (what Ray's own test helpers reset, too)."""
    if not settings:
        return
    os.environ.update({k: v for k, v in settings.items() if v is not None})
    for key in [k for k, v in settings.items() if v is None]:
        os.environ.pop(key, None)
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@contextmanager
def captured_native_stderr():
    """Native (C++) logs write to file descriptor 2 directly; send them to a file for the block, yield a
    function that reads what was written."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: (sink.flush(), sink.seek(0), sink.read().decode(errors="replace"))[-1]
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def init_error(address: str, exc: BaseException, native: str) -> ClusterError:
    """One line for what ``ray.init`` raised after the checks passed."""
    text = f"{exc}\n{native}"
    if "Version mismatch" in text:
        versions = re.findall(r"Ray: (\S+)\s+Python: (\S+)", text)
        if len(versions) == 2:
            (ray_c, py_c), (ray_d, py_d) = versions
            return ClusterError(f"version mismatch with the Ray cluster at {address}: cluster Ray {ray_c}, Python "
                                f"{py_c}; this driver Ray {ray_d}, Python {py_d}: run the driver with the cluster's "
                                "Ray and Python versions (RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor relaxes the "
                                "Python patch check)")
    if "No node info found" in text:
        return ClusterError(f"no Ray node of the cluster at {address} runs on this machine: run toptune on the head, "
                            f"or first join this machine with 'ray start --address={address}'")
    result = classify(1, text)
    if result.kind in ("auth", "version"):
        return _refused(address, result, find_token())
    first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return ClusterError(f"could not join the Ray cluster at {address}: {type(exc).__name__}: {first}")


def join(address: str, token_file=None, **init_kwargs) -> None:
    """Check, then ``ray.init(address=...)``; every failure is one ``ClusterError`` line."""
    import ray

    check_reachable(address)
    settings = auth_settings(address, token_file)
    check_local_node(address)
    apply(settings)
    with captured_native_stderr() as native:
        try:
            ray.init(address=address, **init_kwargs)
        except Exception as exc:
            raise init_error(address, exc, native()) from None
