"""cluster_harness.py — a throwaway Sluice cluster: a ZooKeeper ensemble
(zk_harness.ZkEnsemble, 1 or 3 servers) and N brokers on loopback.

    with SluiceCluster(zk_servers=3, brokers=3) as c:
        c.wait_cluster()                   # every broker registered + serving Metadata of all
        c.kill(2)                          # kill -9 broker 2 (ids 1..N)
        c.start(2); c.wait_cluster()       # restart it (same data dir, same port)
        c.zk_get("/brokers/ids/1")         # (data bytes, stat dict) through ZooKeeper's CLI-less client

Each broker: the build's binary ($SLUICE_BIN), its own data dir under one
mkdtemp() dir, broker.id = index, a free port, zookeeper.connect, a short
zookeeper.session.timeout.ms (4000 by default), num.shards=2. Waits are
bounded. Everything is stopped by PID and removed at exit (atexit too);
broker logs are printed by dump_logs() (call it on failure;
SL_KEEP_CLUSTER_DIR=1 keeps the dir).

ZooKeeper reads use a tiny client of ZooKeeper's wire protocol written
here (connect, getData, getChildren, exists) so the test needs no Python
ZooKeeper package.
"""
import atexit
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402

SESSION_TIMEOUT_MS = 4000


def _sluice_bin():
    b = os.environ.get("SLUICE_BIN")
    if b:
        return b
    return os.path.join(os.environ.get("SLUICE_BUILD", "/tmp/build-a"), "sluice")


class MiniZk:
    """A minimal synchronous ZooKeeper client (read-only ops) over the
    jute wire protocol; enough for tests to inspect znodes."""

    def __init__(self, port, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.settimeout(timeout)
        self.xid = 0
        req = struct.pack(">iqiq", 0, 0, 10000, 0) + struct.pack(">i", 16) + b"\0" * 16
        self._send(req)
        self._recv()

    def _send(self, body):
        self.s.sendall(struct.pack(">i", len(body)) + body)

    def _recvn(self, n):
        buf = b""
        for _ in range(10000):
            if len(buf) >= n:
                break
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise OSError("zookeeper closed the connection")
            buf += chunk
        return buf

    def _recv(self):
        (n,) = struct.unpack(">i", self._recvn(4))
        return self._recvn(n)

    @staticmethod
    def _str(s):
        b = s.encode()
        return struct.pack(">i", len(b)) + b

    def _call(self, op, body):
        self.xid += 1
        self._send(struct.pack(">ii", self.xid, op) + body)
        for _ in range(100):
            r = self._recv()
            xid, _zxid, err = struct.unpack(">iqi", r[:16])
            if xid == self.xid:
                return err, r[16:]
        raise OSError("no answer")

    @staticmethod
    def _stat(b):
        f = struct.unpack(">qqqqiiiqiiq", b[:68])
        return {"czxid": f[0], "mzxid": f[1], "version": f[4], "cversion": f[5],
                "ephemeralOwner": f[7], "dataLength": f[8], "numChildren": f[9]}, b[68:]

    def get(self, path):
        """(bytes, stat) or (None, None) when the node does not exist."""
        err, r = self._call(4, self._str(path) + b"\0")
        if err == -101:
            return None, None
        if err != 0:
            raise OSError("getData %s: %d" % (path, err))
        (n,) = struct.unpack(">i", r[:4])
        data = r[4:4 + n] if n >= 0 else b""
        stat, _ = self._stat(r[4 + max(n, 0):])
        return data, stat

    def children(self, path):
        err, r = self._call(8, self._str(path) + b"\0")
        if err == -101:
            return None
        if err != 0:
            raise OSError("getChildren %s: %d" % (path, err))
        (n,) = struct.unpack(">i", r[:4])
        out, off = [], 4
        for _ in range(n):
            (ln,) = struct.unpack(">i", r[off:off + 4])
            out.append(r[off + 4:off + 4 + ln].decode())
            off += 4 + ln
        return out

    def close(self):
        try:
            self._call(-11, b"")
        except OSError:
            pass
        self.s.close()


class SluiceCluster:
    def __init__(self, zk_servers=3, brokers=3, chroot="", conf=(), session_ms=SESSION_TIMEOUT_MS):
        self.dir = tempfile.mkdtemp(prefix="sl-cluster-")
        self.procs = {}
        self.logs = {}
        self.ports = {}
        self.chroot = chroot
        self.conf = list(conf)
        self.session_ms = session_ms
        self.n = brokers
        self._closed = False
        atexit.register(self.close)
        self.zk = zk_harness.ZkEnsemble(zk_servers)
        ports = zk_harness.free_ports(brokers + 4)
        for i in range(1, brokers + 1):
            self.ports[i] = ports[i - 1]
        self.spare_ports = ports[brokers:]
        for i in range(1, brokers + 1):
            self.start(i)

    # ---- brokers ----
    def data_dir(self, i):
        return os.path.join(self.dir, "b%d" % i)

    def write_config(self, i, broker_id=None, port=None, data_dir=None):
        d = data_dir or self.data_dir(i)
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(self.dir, "b%d.properties" % i)
        lines = [
            "broker.id=%d" % (broker_id if broker_id is not None else i),
            "listeners=PLAINTEXT://127.0.0.1:%d" % (port or self.ports[i]),
            "log.dirs=%s" % d,
            "num.shards=2",
            "zookeeper.connect=%s" % self.zk.connect_string(chroot=self.chroot),
            "zookeeper.session.timeout.ms=%d" % self.session_ms,
            "default.replication.factor=%d" % min(3, self.n),
            "offsets.topic.replication.factor=%d" % min(3, self.n),
        ] + self.conf
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return conf

    def start(self, i, broker_id=None, port=None, data_dir=None):
        """Starts broker i (ids 1..N; extra indexes for tests); returns the Popen."""
        assert i not in self.procs or self.procs[i].poll() is not None
        conf = self.write_config(i, broker_id, port, data_dir)
        logp = os.path.join(self.dir, "b%d.log" % i)
        self.logs[i] = logp
        log = open(logp, "ab")
        try:
            self.procs[i] = subprocess.Popen(
                [_sluice_bin(), "--config", conf], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=zk_harness._die_with_parent)
        finally:
            log.close()
        return self.procs[i]

    def running(self, i):
        return i in self.procs and self.procs[i].poll() is None

    def pid(self, i):
        return self.procs[i].pid

    def kill(self, i, sig=signal.SIGKILL):
        if not self.running(i):
            return
        os.kill(self.procs[i].pid, sig)
        try:
            self.procs[i].wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.procs[i].pid, signal.SIGKILL)
            self.procs[i].wait(timeout=30)

    def stop(self, i):
        """SIGTERM (clean stop), then kill -9 after 30 s. Returns the exit code."""
        self.kill(i, signal.SIGTERM)
        return self.procs[i].returncode

    def restart(self, i):
        self.kill(i)
        self.start(i)

    def bootstrap(self, ids=None):
        ids = ids or [i for i in sorted(self.ports) if self.running(i)]
        return ",".join("127.0.0.1:%d" % self.ports[i] for i in ids)

    # ---- ZooKeeper ----
    def zk_client(self):
        ports = [p for i, p in sorted(self.zk.client_ports.items()) if self.zk.running(i)]
        last = None
        for p in ports:
            try:
                return MiniZk(p)
            except OSError as e:
                last = e
        raise OSError("no ZooKeeper server answers: %s" % last)

    def zk_get(self, path):
        z = self.zk_client()
        try:
            return z.get(self.chroot + path)
        finally:
            z.close()

    def zk_children(self, path):
        z = self.zk_client()
        try:
            return z.children(self.chroot + path)
        finally:
            z.close()

    # ---- waits ----
    def metadata(self, i, timeout=5.0):
        """Metadata of broker i through confluent-kafka: (broker ids, controller id, topics)."""
        from confluent_kafka.admin import AdminClient
        a = AdminClient({"bootstrap.servers": "127.0.0.1:%d" % self.ports[i],
                         "socket.timeout.ms": 3000})
        md = a.list_topics(timeout=timeout)
        return md

    def wait(self, cond, what, timeout=60.0, interval=0.2):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                r = cond()
                if r:
                    return r
            except Exception as e:  # noqa: BLE001 (retry until the deadline)
                last = e
            time.sleep(interval)
        raise RuntimeError("timed out waiting for %s (last error: %s)" % (what, last))

    def wait_cluster(self, ids=None, timeout=60.0):
        """Waits until every broker of `ids` (default: running ones) is in
        /brokers/ids and each serves Metadata listing exactly those brokers."""
        ids = ids or [i for i in sorted(self.ports) if self.running(i)]
        want = sorted(ids)

        def ok():
            for i in ids:
                if not self.running(i):
                    raise RuntimeError("broker %d exited (%s)" % (i, self.procs[i].returncode))
            reg = sorted(int(x) for x in (self.zk_children("/brokers/ids") or []))
            if reg != want:
                return False
            for i in ids:
                md = self.metadata(i)
                if sorted(md.brokers) != want or md.controller_id < 0:
                    return False
            return True
        return self.wait(ok, "brokers %s registered and in every Metadata" % want, timeout)

    def dump_logs(self, lines=60):
        for i in sorted(self.logs):
            try:
                with open(self.logs[i], "rb") as f:
                    data = f.read()[-65536:].decode(errors="replace")
                print("---- broker %d log (tail) ----" % i)
                print("\n".join(data.splitlines()[-lines:]))
            except OSError:
                pass

    def close(self):
        if self._closed:
            return
        self._closed = True
        for i in list(self.procs):
            try:
                self.kill(i)
            except (OSError, subprocess.TimeoutExpired):
                pass
        try:
            self.zk.close()
        except Exception:  # noqa: BLE001
            pass
        if os.environ.get("SL_KEEP_CLUSTER_DIR"):
            print("cluster_harness: kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


if __name__ == "__main__":
    why = zk_harness.zk_available()
    if why:
        print("skip:", why)
        sys.exit(77)
    with SluiceCluster(int(sys.argv[1]) if len(sys.argv) > 1 else 1,
                       int(sys.argv[2]) if len(sys.argv) > 2 else 3) as c:
        try:
            t0 = time.monotonic()
            c.wait_cluster()
            print("cluster up in %.1fs" % (time.monotonic() - t0))
            print(c.zk_children("/brokers/ids"), c.zk_get("/controller"))
        except Exception:
            c.dump_logs()
            raise
