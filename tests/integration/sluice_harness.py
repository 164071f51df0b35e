"""sluice_harness.py — shared helpers for the Python integration tests.

Not a test itself (no test_ prefix, so CTest never runs it). Tests import it
after putting their own directory on sys.path.

Checks counts passed/failed checks and prints the final "N passed, M failed"
line. Broker runs one $SLUICE_BIN on a free port with a temp data dir (a Python
twin of lib.sh): start() writes the config, launches the broker and waits for
"listening on " in the log written since that start plus a TCP connect;
stop() signals it (SIGTERM by default), waits a bounded 30 s and falls back to
SIGKILL. Invariants: at most one broker process per Broker; the temp dir and
port are created on the first start() and reused by restarts; fail_exit()
never returns and never leaves the broker running.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    """Returns a TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Checks:
    """Counts checks; verbose prints an "ok" line for passing ones too."""

    def __init__(self, verbose=False):
        self.passed = 0
        self.failed = 0
        self.verbose = verbose

    def check(self, cond, what):
        if cond:
            self.passed += 1
            if self.verbose:
                print("ok   " + what)
        else:
            self.failed += 1
            print("FAIL " + what)
        return cond

    def eq(self, got, want, what):
        return self.check(got == want, "%s: got %r, want %r" % (what, got, want))

    def summary(self, extra_failed=0):
        print("%d passed, %d failed" % (self.passed, self.failed + extra_failed))

    def finish(self):
        """Prints the summary line and exits 1 on any failure, else 0."""
        self.summary()
        sys.exit(1 if self.failed else 0)


class Broker:
    """One sluice broker under test (see the file comment)."""

    def __init__(self, checks, prefix, conf=(), wait_s=20, fail_sig=signal.SIGTERM,
                 keep_dir_on_fail=False, on_fail=None):
        self.checks = checks
        self.prefix = prefix
        self.conf = list(conf)
        self.wait_s = wait_s
        self.fail_sig = fail_sig
        self.keep_dir_on_fail = keep_dir_on_fail
        self.on_fail = on_fail
        self.dir = None
        self.data = None
        self.port = None
        self.proc = None
        self.log = None

    def log_path(self):
        return os.path.join(self.dir, "broker.log")

    def start(self):
        """Starts the broker; returns "127.0.0.1:port" or fail_exit()s."""
        binary = os.environ.get("SLUICE_BIN")
        if not binary or not os.access(binary, os.X_OK):
            print("SKIP: SLUICE_BIN not set or not executable")
            sys.exit(77)
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix=self.prefix)
            self.data = os.path.join(self.dir, "data")
            os.mkdir(self.data)
            self.port = free_port()
        conf = os.path.join(self.dir, "server.properties")
        with open(conf, "w") as f:
            f.write("listeners=PLAINTEXT://127.0.0.1:%d\nlog.dirs=%s\nnum.shards=2\n"
                    "log.level=info\n" % (self.port, self.data))
            for kv in self.conf:
                f.write(kv + "\n")
        self.log = open(self.log_path(), "a")
        mark = os.path.getsize(self.log_path())
        self.proc = subprocess.Popen([binary, "--config", conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + self.wait_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.fail_exit("broker exited during start-up")
            with open(self.log_path()) as f:
                f.seek(mark)
                up = "listening on " in f.read()
            if up:
                try:
                    socket.create_connection(("127.0.0.1", self.port), 1).close()
                    return "127.0.0.1:%d" % self.port
                except OSError:
                    pass
            time.sleep(0.1)
        self.fail_exit("broker not ready in %d s" % self.wait_s)

    def stop(self, sig=signal.SIGTERM):
        """Signals the broker and waits (30 s, then SIGKILL); returns its
        exit status, or None when it was not running."""
        proc = self.proc
        if proc is None:
            return None
        proc.send_signal(sig)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        self.proc = None
        self.log.close()
        return rc

    def log_text(self):
        """The whole broker log ("" when there is none yet)."""
        try:
            with open(self.log_path()) as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def show_log(self, lines=40):
        text = self.log_text()
        if not text:
            return
        print("---- last broker log lines ----")
        sys.stdout.write("".join(text.splitlines(True)[-lines:]))

    def remove_dir(self):
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def fail_exit(self, msg):
        """Reports msg as one more failure, stops everything, exits 1."""
        print("FAIL " + msg)
        self.show_log()
        if self.on_fail is not None:
            self.on_fail()
        self.stop(self.fail_sig)
        if not self.keep_dir_on_fail:
            self.remove_dir()
        self.checks.summary(1)
        sys.exit(1)
