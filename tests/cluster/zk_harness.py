"""zk_harness.py — a throwaway ZooKeeper ensemble (1 or 3 servers) on free
127.0.0.1 ports, for the cluster tests.

    with ZkEnsemble(3) as zk:
        connect = zk.connect_string()          # "127.0.0.1:p1,127.0.0.1:p2,..."
        zk.kill(2)                             # kill -9 server 2 (ids 1..N)
        zk.start(2); zk.wait_ready([2])        # restart it
        zk.stop(1)                             # SIGTERM, bounded wait, then -9

Each server runs Debian's ZooKeeper jar directly (no systemd) from its own
zoo.cfg in a mkdtemp() directory: tickTime=500 (sessions of 1-10 s),
admin.enableServer=false (else it takes port 8080), the 4lw whitelist and
clientPortAddress=127.0.0.1. Ready means `srvr` answers `Mode: ...`
(`ruok` answers before the server serves). Every wait is bounded. Servers
are stopped by PID and the directory removed on exit, on exceptions and
(atexit) when the test process ends without closing the context; a server
also gets SIGKILL from the kernel if the test process dies (PDEATHSIG).

Skip rule: if java or the ZooKeeper jar is missing, `zk_available()` says
why and the test should exit 77.
"""
import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

JAVA = shutil.which("java") or "/usr/bin/java"
ZK_JAR = "/usr/share/java/zookeeper.jar"
SLF4J_JAR = "/usr/share/java/slf4j-simple.jar"


def _die_with_parent():
    """preexec_fn: the server gets SIGKILL when the test process dies, even
    by kill -9 (a CTest timeout), so no JVM outlives its test."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def zk_available():
    """Returns None when an ensemble can run here, else the reason."""
    if not os.path.exists(JAVA):
        return "java not installed (Debian package zookeeper)"
    if not os.path.exists(ZK_JAR):
        return "%s missing (Debian package zookeeper)" % ZK_JAR
    return None


def free_ports(count):
    """Returns `count` distinct free TCP ports on 127.0.0.1 (all bound at
    once while choosing, so they differ)."""
    socks, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def four_letter(port, cmd, timeout=1.0):
    """Sends a four-letter word; returns the answer text ("" on failure)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(cmd.encode())
            chunks = []
            for _ in range(64):  # bounded: answers are a few hundred bytes
                b = s.recv(4096)
                if not b:
                    break
                chunks.append(b)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


def server_mode(port):
    """"leader", "follower", "standalone", or None when not serving."""
    for line in four_letter(port, "srvr").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


class ZkEnsemble:
    """N ZooKeeper servers (ids 1..N) on loopback in a temp dir."""

    def __init__(self, n=3, start=True, ready_timeout=60.0):
        assert n in (1, 3, 5), "an ensemble of 1, 3 or 5"
        self.n = n
        self.dir = tempfile.mkdtemp(prefix="sl-zk-")
        self.procs = {}
        self.client_ports = {}
        self._closed = False
        ports = free_ports(3 * n)
        for i in range(1, n + 1):
            self.client_ports[i] = ports[3 * (i - 1)]
        self.quorum_ports = {i: (ports[3 * (i - 1) + 1], ports[3 * (i - 1) + 2])
                             for i in range(1, n + 1)}
        for i in range(1, n + 1):
            self._write_config(i)
        atexit.register(self.close)
        if start:
            try:
                for i in range(1, n + 1):
                    self.start(i)
                self.wait_ready(timeout=ready_timeout)
            except BaseException:
                self.close()
                raise

    def _sdir(self, i):
        return os.path.join(self.dir, "s%d" % i)

    def _write_config(self, i):
        sdir = self._sdir(i)
        os.makedirs(os.path.join(sdir, "data"), exist_ok=True)
        lines = [
            "tickTime=500",
            "initLimit=20",
            "syncLimit=10",
            "dataDir=%s" % os.path.join(sdir, "data"),
            "clientPort=%d" % self.client_ports[i],
            "clientPortAddress=127.0.0.1",
            "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,srvr,mntr,stat",
            "maxClientCnxns=0",
        ]
        if self.n > 1:
            for j in range(1, self.n + 1):
                p1, p2 = self.quorum_ports[j]
                lines.append("server.%d=127.0.0.1:%d:%d" % (j, p1, p2))
            with open(os.path.join(sdir, "data", "myid"), "w") as f:
                f.write("%d\n" % i)
        with open(os.path.join(sdir, "zoo.cfg"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, i):
        """Starts server i (not running); returns at once (see wait_ready)."""
        assert i not in self.procs or self.procs[i].poll() is not None
        sdir = self._sdir(i)
        cp = ZK_JAR + (":" + SLF4J_JAR if os.path.exists(SLF4J_JAR) else "")
        log = open(os.path.join(sdir, "server.log"), "ab")
        try:
            self.procs[i] = subprocess.Popen(
                [JAVA, "-Xmx256m", "-XX:+UseSerialGC", "-cp", cp,
                 "-Dzookeeper.jmx.log4j.disable=true",
                 "-Dzookeeper.log.dir=%s" % sdir,
                 "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                 os.path.join(sdir, "zoo.cfg")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=sdir, start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            log.close()

    def running(self, i):
        return i in self.procs and self.procs[i].poll() is None

    def pid(self, i):
        return self.procs[i].pid

    def wait_ready(self, ids=None, timeout=60.0):
        """Waits (bounded) until every server of `ids` (default: all running)
        reports a Mode. Raises RuntimeError with the log tail on timeout."""
        ids = ids if ids is not None else [i for i in self.procs if self.running(i)]
        deadline = time.monotonic() + timeout
        pending = set(ids)
        while pending:
            for i in list(pending):
                if not self.running(i):
                    raise RuntimeError("zookeeper %d exited:\n%s" % (i, self.log_tail(i)))
                if server_mode(self.client_ports[i]) is not None:
                    pending.discard(i)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("zookeeper %s not ready after %.0fs:\n%s" % (
                    sorted(pending), timeout,
                    "\n".join(self.log_tail(i) for i in sorted(pending))))
            time.sleep(0.1)

    def modes(self):
        """{id: mode or None} of the running servers."""
        return {i: server_mode(self.client_ports[i]) for i in self.procs if self.running(i)}

    def leader(self):
        """The id of the current leader (or the standalone server), or None."""
        for i, mode in self.modes().items():
            if mode in ("leader", "standalone"):
                return i
        return None

    def connect_string(self, ids=None, chroot=""):
        ids = ids if ids is not None else sorted(self.client_ports)
        return ",".join("127.0.0.1:%d" % self.client_ports[i] for i in ids) + chroot

    def server_of_port(self, port):
        for i, p in self.client_ports.items():
            if p == port:
                return i
        return None

    def kill(self, i, sig=signal.SIGKILL):
        """Sends `sig` (default kill -9) to server i and reaps it (bounded)."""
        if not self.running(i):
            return
        os.kill(self.procs[i].pid, sig)
        try:
            self.procs[i].wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.procs[i].pid, signal.SIGKILL)
            self.procs[i].wait(timeout=30)

    def stop(self, i):
        """SIGTERM, then kill -9 after 10 s."""
        if not self.running(i):
            return
        os.kill(self.procs[i].pid, signal.SIGTERM)
        try:
            self.procs[i].wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill(i)

    def restart(self, i, timeout=60.0):
        self.stop(i)
        self.start(i)
        self.wait_ready([i], timeout=timeout)

    def log_tail(self, i, lines=30):
        try:
            with open(os.path.join(self._sdir(i), "server.log"), "rb") as f:
                data = f.read()[-16384:].decode(errors="replace")
            return "\n".join(data.splitlines()[-lines:])
        except OSError:
            return ""

    def close(self):
        """Kills every server by PID and removes the directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for i in list(self.procs):
            try:
                self.kill(i)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if os.environ.get("SL_KEEP_ZK_DIR"):
            print("zk_harness: kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        try:
            atexit.unregister(self.close)
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


if __name__ == "__main__":
    # Smoke test: python3 zk_harness.py [N]
    import sys
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    why = zk_available()
    if why:
        print("skip:", why)
        sys.exit(77)
    t0 = time.monotonic()
    with ZkEnsemble(n) as ens:
        print("ready in %.1fs: %s modes=%s" % (time.monotonic() - t0, ens.connect_string(),
                                               ens.modes()))
        if n > 1:
            lead = ens.leader()
            ens.kill(lead)
            t1 = time.monotonic()
            others = [i for i in range(1, n + 1) if i != lead]
            deadline = time.monotonic() + 30
            while ens.leader() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            print("killed leader %d, new leader %s in %.1fs" % (lead, ens.leader(),
                                                                time.monotonic() - t1))
            ens.start(lead)
            ens.wait_ready([lead])
            print("restarted %d: modes=%s" % (lead, ens.modes()))
