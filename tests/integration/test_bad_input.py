#!/usr/bin/python3
"""test_bad_input.py — the broker survives bad input, and well-behaved
clients keep being served meanwhile.

Broker 1 (2 shards, defaults) gets, over raw sockets, while a good client
(confluent-kafka producer + kcat consumer, in a thread) produces and
consumes round after round:
  truncated frames, a size below the header, negative sizes, a 2 GiB size,
  negative / huge array counts and negative string lengths inside valid
  looking requests, unknown API keys, unsupported versions (and ApiVersions
  v99, which must get UNSUPPORTED_VERSION (35) and the version table in a
  v0 response — the bytes are checked), random bytes, 300 well-formed
  requests with edge values in every field (kafka-python's schemas,
  seeded), half a Produce then
  close, 1,000 connections opened and dropped, a slow-loris request (one
  byte at a time). After each case a probe (ApiVersions v0 on a new
  connection) must be answered. At the end: the broker still runs and
  answers Metadata, the good client's every round checked out, and the log
  has a line naming each kind of bad frame.

Broker 2 (1 shard, socket.request.max.bytes = queued.max.request.bytes =
1 MiB, max.connections=8, connections.max.idle.ms=3000):
  request-memory budget: a connection holding a half-received 1 MiB frame
  fills the shard's budget, so another connection's request is parked
  (not answered) until the first goes away, then answered; the log says
  the budget was full. max.connections: the 9th connection is closed by
  the broker (logged). Idle connections are closed (logged).

Prints "N passed, M failed"; exits 0 only if nothing failed (77: skipped).
Runs with /usr/bin/python3. Env: SLUICE_BIN.
"""
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("SLUICE_BIN", "")
RESULTS = {"passed": 0, "failed": 0}
IO_TIMEOUT = 10.0
# Only the good client writes here (the random requests use other names).
GOOD_TOPIC = "well-behaved"


def check(cond, what):
    if cond:
        RESULTS["passed"] += 1
        print("ok   " + what, flush=True)
    else:
        RESULTS["failed"] += 1
        print("FAIL " + what, flush=True)
    return cond


# ---- wire helpers ----

def kstr(s):
    if s is None:
        return struct.pack(">h", -1)
    return struct.pack(">h", len(s)) + s


def header(key, version, corr, client=b"bad-input"):
    """RequestHeader v1 (non-flexible)."""
    return struct.pack(">hhi", key, version, corr) + kstr(client)


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def recv_frame(s):
    (size,) = struct.unpack(">i", recv_exact(s, 4))
    return recv_exact(s, size)


def closed_by_peer(s, timeout=IO_TIMEOUT):
    """True if the broker closes s (EOF or reset) within `timeout` s; data is drained."""
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def api_versions_v0(corr):
    return frame(header(18, 0, corr))


def parse_api_versions_v0(body, corr):
    """(error, {key: (min, max)}) of an ApiVersions v0 response (header v0)."""
    rcorr, err, n = struct.unpack(">ihi", body[:10])
    assert rcorr == corr, "correlation id %d != %d" % (rcorr, corr)
    assert 0 < n < 100 and len(body) == 10 + 6 * n, "bad count %d for %d bytes" % (n, len(body))
    keys = {}
    for i in range(n):
        k, lo, hi = struct.unpack(">hhh", body[10 + 6 * i:16 + 6 * i])
        keys[k] = (lo, hi)
    return err, keys


def probe(port, what):
    """A fresh connection gets ApiVersions v0 answered correctly."""
    try:
        s = connect(port)
        s.sendall(api_versions_v0(4242))
        err, keys = parse_api_versions_v0(recv_frame(s), 4242)
        s.close()
        return check(err == 0 and 18 in keys and 3 in keys, "probe after " + what)
    except (OSError, EOFError, AssertionError, struct.error) as e:
        return check(False, "probe after %s: %s" % (what, e))


def metadata_v1_topics(corr, count_field, names=()):
    body = struct.pack(">i", count_field) + b"".join(kstr(n) for n in names)
    return frame(header(3, 1, corr) + body)


def produce_v3(corr, topic, nrec=50):
    """A Produce v3 with one batch of `nrec` records (CRC not needed: never completed)."""
    records = b"".join(b"\x10" + b"\x00" * 7 + b"\x0avalue" for _ in range(nrec))
    batch = struct.pack(">qi", 0, 49 + len(records)) + b"\x00" * 49 + records
    body = (kstr(None) + struct.pack(">hi", -1, 30000) + struct.pack(">i", 1) + kstr(topic) +
            struct.pack(">ii", 1, 0) + struct.pack(">i", len(batch)) + batch)
    return frame(header(0, 3, corr) + body)


# ---- broker process ----

class Broker:
    def __init__(self, name, keys):
        self.dir = tempfile.mkdtemp(prefix="sluice-%s-" % name)
        self.port = free_port()
        self.log = os.path.join(self.dir, "broker.log")
        conf = os.path.join(self.dir, "server.properties")
        with open(conf, "w") as f:
            f.write("listeners=PLAINTEXT://127.0.0.1:%d\n" % self.port)
            f.write("log.dirs=%s\n" % os.path.join(self.dir, "data"))
            f.write("log.level=info\n")
            for k in keys:
                f.write(k + "\n")
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([BIN, "--config", conf], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError("broker exited during start-up:\n" + self.log_text())
            if "listening on" in self.log_text():
                try:
                    connect(self.port).close()
                    return
                except OSError:
                    pass
            time.sleep(0.1)
        raise RuntimeError("broker not ready in 20 s")

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM; True if it exits 0 within 30 s."""
        if not self.alive():
            return False
        self.proc.terminate()
        try:
            return self.proc.wait(30) == 0
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return False
        finally:
            self.logf.close()

    def cleanup(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        if os.environ.get("SL_KEEP") == "1":
            print("kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- the well-behaved client ----

class GoodClient(threading.Thread):
    """Rounds of: produce 20 messages (confluent-kafka, acks=all), then read
    the whole partition back with kcat and compare with everything sent."""

    ROUNDS_MAX = 200

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop_flag = threading.Event()
        self.rounds = 0
        self.errors = []

    def run(self):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": "127.0.0.1:%d" % self.port, "acks": "all",
                      "linger.ms": 5, "message.timeout.ms": 30000})
        sent = []
        for r in range(self.ROUNDS_MAX):
            if self.stop_flag.is_set() and r >= 2:
                break
            failed = []
            for i in range(20):
                v = "round-%d-msg-%d" % (r, i)
                p.produce(GOOD_TOPIC, value=v.encode(), partition=0,
                          on_delivery=lambda e, m: failed.append(e) if e else None)
                sent.append(v)
            if p.flush(30) != 0 or failed:
                self.errors.append("round %d: produce failed: %s" % (r, failed[:1]))
                return
            out = subprocess.run(["kcat", "-C", "-b", "127.0.0.1:%d" % self.port, "-t", GOOD_TOPIC,
                                  "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%s\n"],
                                 capture_output=True, timeout=60)
            got = out.stdout.decode().split("\n")[:-1]
            if out.returncode != 0 or got != sent:
                self.errors.append("round %d: consumed %d messages, expected %d (rc %d)"
                                   % (r, len(got), len(sent), out.returncode))
                return
            self.rounds += 1


# ---- broker 1: bad input ----

def bad_frames(b):
    port = b.port

    # truncated: a size prefix, fewer bytes, close
    s = connect(port)
    s.sendall(struct.pack(">i", 100) + b"\x00\x12\x00\x00\x00\x00")
    s.close()
    probe(port, "a truncated frame")

    cases = [
        ("size 4 (< header)", struct.pack(">i", 4) + b"\x00\x12\x00\x00"),
        ("size 0", struct.pack(">i", 0)),
        ("negative size -1", struct.pack(">i", -1) + b"\x00" * 16),
        ("negative size INT32_MIN", struct.pack(">i", -2 ** 31)),
        ("2 GiB size prefix", struct.pack(">i", 2 ** 31 - 1) + b"\x00" * 64),
        ("Metadata v1 topic count -2", metadata_v1_topics(1, -2)),
        ("Metadata v1 topic count 2^31-1", metadata_v1_topics(2, 2 ** 31 - 1, [b"t"])),
        ("Metadata v1 topic name length -5",
         frame(header(3, 1, 3) + struct.pack(">ih", 1, -5) + b"abc")),
        ("client id length -2", frame(struct.pack(">hhih", 18, 0, 4, -2) + b"xx")),
        ("Metadata v9 (flexible) compact count 2^31",
         frame(struct.pack(">hhi", 3, 9, 5) + kstr(b"c") + b"\x00" +
               b"\xff\xff\xff\xff\x08" + b"\x00" * 8)),
        ("Produce v3 topic count -7",
         frame(header(0, 3, 6) + kstr(None) + struct.pack(">hii", 1, 1000, -7))),
        ("unknown api key 9999", frame(header(9999, 0, 7))),
        ("unknown api key -1", frame(header(-1, 0, 8))),
        ("served-nowhere api key 67", frame(header(67, 0, 9))),
        ("unsupported Metadata version 99", frame(header(3, 99, 10))),
        ("unsupported Produce version 2", frame(header(0, 2, 11))),
        ("unsupported Fetch version -3", frame(header(1, -3, 12))),
    ]
    for what, data in cases:
        s = connect(port)
        try:
            s.sendall(data)
        except OSError:
            pass
        check(closed_by_peer(s), "broker closes the connection: " + what)
        s.close()
        probe(port, what)

    # ApiVersions v99: UNSUPPORTED_VERSION and the table, response v0, connection kept
    s = connect(port)
    s.sendall(frame(header(18, 99, 77)))
    body = recv_frame(s)
    try:
        err, keys = parse_api_versions_v0(body, 77)
        check(err == 35, "ApiVersions v99 -> error 35 (got %d)" % err)
        check(keys.get(18) == (0, 3) and 0 in keys and 1 in keys and 3 in keys,
              "ApiVersions v99 -> the version table in a v0 body (%d keys)" % len(keys))
    except AssertionError as e:
        check(False, "ApiVersions v99 response bytes: %s (%s)" % (e, body[:32].hex()))
    s.sendall(api_versions_v0(78))
    err, keys = parse_api_versions_v0(recv_frame(s), 78)
    check(err == 0, "ApiVersions v0 retried on the same connection")
    # Produce is advertised from v0 (Kafka 4, for librdkafka's compression);
    # a v2 request is still refused (the case list above)
    check(keys.get(0, (-1, -1))[0] == 0, "Produce advertised from version 0 (%r)" % (keys.get(0),))
    s.close()
    # ApiVersions v99 with a flexible (v2) header, as a newer client sends it
    s = connect(port)
    s.sendall(frame(struct.pack(">hhi", 18, 99, 79) + kstr(b"new") + b"\x00" +
                    b"\x05abcd\x04123\x00"))
    err, keys = parse_api_versions_v0(recv_frame(s), 79)
    check(err == 35 and 18 in keys, "ApiVersions v99 with header v2 -> error 35")
    s.close()

    # random bytes
    rnd = random.Random(1234)
    for i in range(30):
        s = connect(port)
        try:
            s.sendall(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 3000))))
        except OSError:
            pass
        s.close()
    probe(port, "30 connections of random bytes")

    # random bytes behind a valid header prefix (keys the broker serves)
    for i in range(60):
        key, ver = rnd.choice([(0, 3), (0, 9), (1, 4), (1, 12), (2, 1), (2, 7), (3, 1), (3, 12),
                               (18, 3), (22, 4)])
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 400)))
        s = connect(port)
        try:
            s.sendall(frame(header(key, ver, i) + body))
            s.settimeout(2)
            s.recv(65536)
        except OSError:
            pass
        s.close()
    probe(port, "60 valid headers with random bodies")

    if random_requests(port, 300, 7):
        probe(port, "300 random well-formed requests with edge values")

    # a client vanishing mid-request: half a Produce, then close
    for i in range(5):
        data = produce_v3(100 + i, b"half-produce", 400)
        s = connect(port)
        s.sendall(data[:len(data) // 2])
        s.close()
    probe(port, "half a Produce then close (x5)")

    # 1,000 connections opened and dropped, 100 at a time
    opened = 0
    for rnd_i in range(10):
        socks = []
        for _ in range(100):
            try:
                socks.append(connect(port))
                opened += 1
            except OSError:
                pass
        for j, s in enumerate(socks):
            try:
                if j % 3 == 0:
                    s.sendall(b"\x00\x00")      # half a size prefix
                elif j % 3 == 1:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            s.close()
    check(opened == 1000, "1000 connections opened and dropped (%d opened)" % opened)
    probe(port, "1000 dropped connections")

    # slow-loris: one ApiVersions request, a byte at a time
    data = api_versions_v0(555)
    s = connect(port)
    for i in range(len(data)):
        s.sendall(data[i:i + 1])
        time.sleep(0.03)
    try:
        err, keys = parse_api_versions_v0(recv_frame(s), 555)
        check(err == 0, "slow-loris request (1 byte / 30 ms) answered")
    except (OSError, EOFError, AssertionError) as e:
        check(False, "slow-loris request answered: %s" % e)
    s.close()
    # and a slow-loris that stops half-way stays harmless to others
    s_hang = connect(port)
    s_hang.sendall(struct.pack(">i", 65536) + b"\x00\x03")
    probe(port, "a stalled half-sent frame")
    s_hang.close()


def random_requests(port, count, seed):
    """`count` well-formed requests of the served non-flexible versions, built
    from kafka-python's schemas with edge values (negative and huge ints,
    empty, long and invalid names, null, junk or valid record batches),
    each on its own connection, some dropped before the answer. Returns
    False when kafka-python is missing (section skipped)."""
    try:
        from kafka.protocol import types as T
        import kafka.protocol.fetch as F
        import kafka.protocol.metadata as M
        import kafka.protocol.offset as O
        import kafka.protocol.produce as P
        from kafka.record.default_records import DefaultRecordBatchBuilder
    except ImportError:
        return False
    rnd = random.Random(seed)
    ints = [(T.Int8, [0, 1, -1, 127, -128]), (T.Int16, [0, 1, -1, 32767, -32768, 3]),
            (T.Int32, [0, 1, -1, 2 ** 31 - 1, -2 ** 31, 100, 1000000]),
            (T.Int64, [0, 1, -1, 2 ** 63 - 1, -2 ** 63, 5])]

    def batch():
        b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                      producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                      batch_size=1 << 20)
        for i in range(rnd.randint(1, 5)):
            b.append(i, timestamp=rnd.choice([0, -1, 1700000000000]), key=b"k", value=b"v",
                     headers=[])
        return bytes(b.build())

    def is_(t, cls):
        return t is cls or isinstance(t, cls) or (isinstance(t, type) and issubclass(t, cls))

    def gen(t):
        if is_(t, T.Schema):
            return tuple(gen(ft) for ft in t.fields)
        if isinstance(t, T.Array):
            return [gen(t.array_of) for _ in range(rnd.choice([0, 1, 1, 2, 3]))]
        for cls, vals in ints:
            if is_(t, cls):
                return rnd.choice(vals)
        if is_(t, T.String):
            return rnd.choice(["fz", "fz", "", "a" * 250, "bad/name", "__consumer_offsets"])
        if is_(t, T.Bytes):
            return rnd.choice([b"", None, batch(), batch(),
                               bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 200)))])
        if is_(t, T.Boolean):
            return rnd.choice([True, False])
        raise TypeError(repr(t))

    classes = (list(P.ProduceRequest[3:9]) + list(F.FetchRequest[4:12]) +
               list(M.MetadataRequest[0:6]) + list(O.OffsetRequest[1:6]))
    sent = 0
    for i in range(count):
        c = rnd.choice(classes)
        try:
            data = header(c.API_KEY, c.API_VERSION, i) + c.SCHEMA.encode(gen(c.SCHEMA))
        except (TypeError, struct.error, ValueError):
            continue    # a value kafka-python's encoder refuses (or a schema it cannot encode)
        sent += 1
        s = connect(port)
        try:
            s.sendall(frame(data))
            s.settimeout(2 if rnd.random() < 0.9 else 0.01)
            s.recv(1 << 20)
        except OSError:
            pass
        s.close()
    check(sent >= count // 2, "random well-formed requests sent: %d of %d" % (sent, count))
    return True


def fetch_negative_offsets(port, topic):
    """Fetch v4 at offsets -1 and INT64_MIN (once an overflow in the read
    path): each partition gets OFFSET_OUT_OF_RANGE (1), the connection stays."""
    s = connect(port)
    ok = True
    for corr, offset in ((31, -1), (32, -2 ** 63)):
        body = (struct.pack(">iiiib", -1, 0, 0, 1 << 20, 0) + struct.pack(">i", 1) + kstr(topic) +
                struct.pack(">iiqi", 1, 0, offset, 1 << 20))
        s.sendall(frame(header(1, 4, corr) + body))
        r = recv_frame(s)
        rcorr, _throttle, ntopics = struct.unpack(">iii", r[:12])
        (nlen,) = struct.unpack(">h", r[12:14])
        npart, part, err = struct.unpack(">iih", r[14 + nlen:24 + nlen])
        ok = ok and rcorr == corr and ntopics == 1 and npart == 1 and part == 0 and err == 1
    s.close()
    return ok


def metadata_answered(port):
    s = connect(port)
    s.sendall(frame(header(3, 1, 99) + struct.pack(">i", -1)))
    body = recv_frame(s)
    s.close()
    (corr, nbrokers) = struct.unpack(">ii", body[:8])
    return corr == 99 and nbrokers == 1


def broker1():
    b = Broker("bad-input", ["num.shards=2", "num.partitions=1"])
    try:
        good = GoodClient(b.port)
        good.start()
        bad_frames(b)
        good.stop_flag.set()
        good.join(180)
        check(not good.is_alive(), "good client finished")
        check(not good.errors and good.rounds >= 2,
              "good client produced and consumed correctly throughout (%d rounds%s)"
              % (good.rounds, ": " + good.errors[0] if good.errors else ""))
        try:
            check(fetch_negative_offsets(b.port, GOOD_TOPIC.encode()),
                  "Fetch at offsets -1 and INT64_MIN -> OFFSET_OUT_OF_RANGE")
        except (OSError, EOFError, struct.error) as e:
            check(False, "Fetch at offsets -1 and INT64_MIN -> OFFSET_OUT_OF_RANGE: %s" % e)
        check(b.alive(), "broker 1 still running (pid %d)" % b.proc.pid)
        check(metadata_answered(b.port), "broker 1 answers Metadata at the end")
        log = b.log_text()
        for reason in ["negative frame size", "frame too small for a request header",
                       "frame size exceeds socket.request.max.bytes", "unsupported api key 9999",
                       "unsupported Metadata version 99", "malformed request body",
                       "malformed request header"]:
            check(reason in log, "broker log names the bad frame: '%s'" % reason)
        check("AddressSanitizer" not in log and "assertion" not in log.lower(),
              "no sanitizer report or assertion in the log")
        check(b.stop(), "broker 1 stops cleanly (exit 0)")
    finally:
        b.cleanup()


# ---- broker 2: request-memory budget, max.connections, idle ----

def broker2():
    mib = 1 << 20
    b = Broker("bad-input-limits", ["num.shards=1", "socket.request.max.bytes=%d" % mib,
                                    "queued.max.request.bytes=%d" % mib, "max.connections=8",
                                    "connections.max.idle.ms=3000"])
    try:
        port = b.port
        # A holds a half-received 1 MiB frame: the whole budget of the only shard.
        a = connect(port)
        a.sendall(struct.pack(">i", mib) + header(18, 0, 1) + b"\x00" * 1000)
        parked = None
        for i in range(10):
            c = connect(port)
            c.sendall(api_versions_v0(600 + i))
            c.settimeout(0.5)
            try:
                recv_frame(c)
                c.close()           # answered: A's prefix was not read yet; try again
            except socket.timeout:
                parked = (c, 600 + i)
                break
        check(parked is not None, "a request is parked while another frame holds the budget")
        check(b.alive(), "broker 2 alive with a full budget")
        a.close()                   # frees A's frame: the parked request must resume
        if parked is not None:
            c, corr = parked
            c.settimeout(IO_TIMEOUT)
            try:
                err, keys = parse_api_versions_v0(recv_frame(c), corr)
                check(err == 0, "the parked request is answered once memory was freed")
            except (OSError, EOFError, AssertionError) as e:
                check(False, "the parked request is answered once memory was freed: %s" % e)
            c.close()
        check("request memory budget full" in b.log_text(), "broker 2 logs the full budget")
        # one frame as large as the whole budget still goes through (ApiVersions
        # v0 padded to 1 MiB: trailing bytes after the empty body are ignored)
        s = connect(port)
        big = header(18, 0, 31)
        s.sendall(frame(big + b"\x00" * (mib - len(big))))
        try:
            err, keys = parse_api_versions_v0(recv_frame(s), 31)
            check(err == 0, "a frame as large as the whole budget is answered")
        except (OSError, EOFError, AssertionError) as e:
            check(False, "a frame as large as the whole budget is answered: %s" % e)
        s.close()

        # max.connections=8 on one shard: the 9th is closed by the broker
        held = []
        deadline = time.monotonic() + 20
        while len(held) < 8 and time.monotonic() < deadline:
            s = connect(port)
            s.sendall(api_versions_v0(700))
            try:
                recv_frame(s)
                held.append(s)
            except (OSError, EOFError):
                s.close()       # earlier connections not yet freed: retry
                time.sleep(0.05)
        check(len(held) == 8, "8 connections served (max.connections=8)")
        extra = connect(port)
        try:
            extra.sendall(api_versions_v0(701))
        except OSError:
            pass
        check(closed_by_peer(extra), "the 9th connection is closed by the broker")
        extra.close()
        check("refusing a connection: connection limit reached" in b.log_text(),
              "broker 2 logs the refused connection")

        # idle: the held connections are closed after connections.max.idle.ms
        check(all(closed_by_peer(s, 15) for s in held),
              "idle connections closed by the broker (connections.max.idle.ms=3000)")
        for s in held:
            s.close()
        check("connections.max.idle.ms" in b.log_text(), "broker 2 logs the idle close")
        probe(port, "idle closes")
        check(b.alive(), "broker 2 still running")
        check(b.stop(), "broker 2 stops cleanly (exit 0)")
    finally:
        b.cleanup()


def main():
    if not BIN or not os.access(BIN, os.X_OK):
        print("SKIP: SLUICE_BIN is not an executable")
        return 77
    if shutil.which("kcat") is None:
        print("SKIP: kcat is not installed")
        return 77
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        print("SKIP: python3-confluent-kafka is not installed")
        return 77
    for part in (broker1, broker2):
        try:
            part()
        except Exception as e:  # a crash of the test itself is a failure, not a skip
            check(False, "%s raised %s: %s" % (part.__name__, type(e).__name__, e))
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 0 if RESULTS["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
