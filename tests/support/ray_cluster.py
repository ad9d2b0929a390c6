"""A real multi-node Ray cluster on one machine for tests: a head and a worker node, each its own ``ray start``.

Ray 2.60 cannot be confined to loopback by its options: ``--node-ip-address=127.0.0.1`` is turned into the
machine's outward address and the GCS and raylets listen on every interface. So the cluster lives in a network
namespace of its own, created here (``unshare``; a user namespace too when not root), where loopback is the only
interface; the test's drivers run in it as well. Where no namespace can be made the cluster runs on the host,
its ports guarded by this cluster's own token, and ``confined`` says so.

Every node is a ``ray start --block`` process in a session of its own: stopping a node signals that process
(Ray's ``--block`` mode then stops the node's processes), and killing one kills its process group. Nothing here
runs ``ray stop``, which stops every Ray process on the machine, other users' included.
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000
PR_SET_PDEATHSIG = 1
AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")
LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")

# The namespace's holder: brings loopback up (SIOCGIFFLAGS / SIOCSIFFLAGS), then waits for its stdin to close.
HOLDER = r"""
import fcntl, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
print("up", flush=True)
sys.stdin.read()
"""


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


class NetNamespace:
    """A network namespace with only loopback, held by a child process until ``close``."""

    def __init__(self):
        self.as_user = os.geteuid() != 0
        uid, gid = os.getuid(), os.getgid()

        def create():  # runs in the child, between fork and exec
            libc = _libc()
            _check(libc.unshare(CLONE_NEWNET | (CLONE_NEWUSER if self.as_user else 0)), "unshare")
            if self.as_user:  # be root inside, as this user outside, so that loopback can be brought up
                Path("/proc/self/setgroups").write_text("deny")
                Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
                Path("/proc/self/gid_map").write_text(f"0 {gid} 1")

        self.holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, preexec_fn=create)
        if self.holder.stdout.readline().strip() != b"up":
            err = self.holder.stderr.read().decode(errors="replace").strip().splitlines()
            self.holder.kill()
            raise OSError(f"network namespace: {err[-1] if err else 'holder exited'}")
        self.inode = os.stat(f"/proc/{self.holder.pid}/ns/net").st_ino

    def enter(self):
        """A ``preexec_fn`` that moves the child into the namespace."""
        kinds = (["user"] if self.as_user else []) + ["net"]
        flags = {"user": CLONE_NEWUSER, "net": CLONE_NEWNET}
        pid = self.holder.pid

        def move():
            libc = _libc()
            for kind in kinds:
                fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY)
                try:
                    _check(libc.setns(fd, flags[kind]), f"setns {kind}")
                finally:
                    os.close(fd)

        return move

    def members(self) -> list[psutil.Process]:
        """Processes in the namespace (they were all started by the test), the holder excepted."""
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.pid != self.holder.pid and os.stat(f"/proc/{proc.pid}/ns/net").st_ino == self.inode:
                    found.append(proc)
            except (OSError, psutil.Error):
                continue
        return found

    def close(self) -> None:
        self.holder.stdin.close()
        try:
            self.holder.wait(5)
        except subprocess.TimeoutExpired:
            self.holder.kill()


class CannotStart(RuntimeError):
    """The head node did not start: Ray cannot run here at all."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    name: str
    proc: subprocess.Popen
    log: Path

    def started(self) -> bool:
        return "Ray runtime started" in self.log.read_text(errors="replace")

    def family(self) -> list[psutil.Process]:
        """The node's processes: its ``ray start`` and everything in that process group or below it."""
        try:
            root = psutil.Process(self.proc.pid)
            found = {root, *root.children(recursive=True)}
        except psutil.Error:
            found = set()
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) == self.proc.pid:
                    found.add(proc)
            except (OSError, psutil.Error):
                continue
        return list(found)

    def raylet(self) -> psutil.Process | None:
        return next((p for p in self.family() if _name(p) == "raylet"), None)

    def node_id(self) -> str | None:
        raylet = self.raylet()
        match = raylet and re.search(r"--node_id=([0-9a-f]+)", " ".join(raylet.cmdline()))
        return match.group(1) if match else None

    def kill(self) -> None:
        """The node dies at once, as a machine that loses power: SIGKILL to all of its processes."""
        for proc in self.family():
            try:
                proc.kill()
            except psutil.Error:
                pass


def _ip(hex_address: str, family: int) -> str:
    """An address as /proc/net/tcp* writes it: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, words)


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return ""


@dataclass
class LocalCluster:
    """A head and ``workers`` worker nodes of ``cpus`` CPUs each, with a token of their own."""

    root: Path
    cpus: int = 1
    workers: int = 1
    port: int = field(default_factory=free_port)
    nodes: list[Node] = field(default_factory=list)
    ns: NetNamespace | None = None
    confined: str = ""  # how traffic is kept on loopback, or why it is not

    def __post_init__(self):
        self.token_file = self.root / "token"
        self.token_file.write_text(secrets.token_hex(32))
        self.address = f"127.0.0.1:{self.port}"

    def base_env(self, **extra) -> dict:
        """This process's environment without any Ray auth or address setting, plus ``extra``."""
        env = {k: v for k, v in os.environ.items() if k not in AUTH_VARS}
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def node_env(self) -> dict:
        return self.base_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=self.token_file, RAY_USAGE_STATS_ENABLED=0)

    def popen(self, cmd: list[str], env: dict, **kwargs) -> subprocess.Popen:
        """Start ``cmd`` in the cluster's namespace; it gets SIGTERM if this process dies first (a node's
        ``ray start --block`` then stops the node, so a killed test run leaves no cluster behind)."""
        enter = self.ns.enter() if self.ns is not None else None

        def prepare():
            _check(_libc().prctl(PR_SET_PDEATHSIG, signal.SIGTERM), "prctl")
            if enter is not None:
                enter()

        return subprocess.Popen(cmd, env=env, preexec_fn=prepare, **kwargs)

    def run(self, cmd: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
        proc = self.popen(cmd, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    def start(self, timeout: float = 90.0) -> None:
        try:
            self.ns = NetNamespace()
            self.confined = "network namespace (user namespace too)" if self.ns.as_user else "network namespace"
        except (OSError, subprocess.SubprocessError) as exc:
            self.confined = ""
            print(f"ray_cluster: no network namespace ({exc}); the cluster listens on the host's interfaces, "
                  "guarded by its own token", file=sys.stderr)
        ray = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
               f"--num-cpus={self.cpus}", "--num-gpus=0", "--node-ip-address=127.0.0.1"]
        self._node("head", [*ray, "--head", f"--port={self.port}", "--include-dashboard=false",
                            f"--temp-dir={self.root / 'head'}"])
        try:
            self._wait(self.nodes[0], timeout)
        except RuntimeError as exc:
            raise CannotStart(str(exc)) from None
        for i in range(self.workers):
            self._node(f"worker{i}", [*ray, f"--address={self.address}", f"--temp-dir={self.root / f'worker{i}'}"])
        for node in self.nodes[1:]:
            self._wait(node, timeout)
        self._wait_for_cpus(self.cpus * (1 + self.workers), timeout)

    def _node(self, name: str, cmd: list[str]) -> None:
        log = self.root / f"{name}.log"
        with open(log, "w") as sink:
            proc = self.popen(cmd, self.node_env(), stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              start_new_session=True)
        self.nodes.append(Node(name, proc, log))

    def _wait(self, node: Node, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not node.started():
            if node.proc.poll() is not None or time.monotonic() > deadline:
                tail = node.log.read_text(errors="replace").strip().splitlines()[-5:]
                raise RuntimeError(f"'ray start' of the {node.name} node did not start: " + " | ".join(tail))
            time.sleep(0.2)

    def _wait_for_cpus(self, cpus: int, timeout: float) -> None:
        deadline, status = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            status = self.run([sys.executable, "-m", "ray.scripts.scripts", "status", "--address", self.address],
                              self.node_env(), timeout=20)
            if f"/{cpus}.0 CPU" in status.stdout:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the cluster never showed {cpus} CPUs: {status and status.stdout[-300:]}")

    def listening(self) -> set[str]:
        """Addresses the cluster's processes listen on (TCP), read from the kernel's socket tables as the
        processes see them (``/proc/PID/net/tcp*``, their namespace's)."""
        pids = {p.pid for node in self.nodes for p in node.family()}
        inodes = set()
        for pid in pids:
            try:
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
            except OSError:
                continue
        found = set()
        for pid in sorted(pids)[:1] if self.ns is not None else sorted(pids):
            for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
                try:
                    lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
                except OSError:
                    continue
                for line in lines:
                    fields = line.split()
                    if fields[3] == "0A" and fields[9] in inodes:  # LISTEN, a socket of the cluster's
                        found.add(_ip(fields[1].split(":")[0], family))
        return found

    def stop(self) -> None:
        """Stop every node (SIGTERM to its ``ray start --block``, SIGKILL to what is left), then the namespace."""
        for node in self.nodes:
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for node in self.nodes:
            try:
                node.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for node in self.nodes:
            node.kill()
        if self.ns is not None:
            for proc in self.ns.members():
                try:
                    proc.kill()
                except psutil.Error:
                    pass
            self.ns.close()
