#!/usr/bin/python3
"""capture_batches.py — capture real record batches produced by real clients.

A throwaway fake Kafka endpoint (standard library only) answers just enough
of the protocol for a producer to send one Produce request: ApiVersions
(v0-v3), Metadata (v0-v8, one topic "capture" with one partition led by
itself), InitProducerId (v0-v1, for the idempotent producer) and Produce
(v0-v7, non-flexible). The raw record-set bytes of the first Produce
request's partition are written to tests/data/batch-<client>-<name>.bin.

This is a capture tool, not a test: run it by hand when the captured files
need refreshing (timestamps change every run, so the files differ each time;
the record contents do not).

    /usr/bin/python3 tools/capture_batches.py [--out tests/data] [--only NAME]

Clients: kcat (librdkafka 2.0.2) and kafka-python 2.0.2 (python3-kafka).
/usr/bin/python3 is used because the Debian python3-kafka package lives there.
"""

import argparse
import os
import socket
import struct
import subprocess
import sys
import threading

TOPIC = "capture"
PRODUCER_ID = 4242
PRODUCER_EPOCH = 0

# api_key: (min, max) we advertise. Fetch and FindCoordinator are advertised
# but never served: librdkafka enables record batch v2 (MsgVer2) only when
# Fetch v4 is there too, ZSTD only with Fetch v10, and LZ4 only when
# FindCoordinator is there. Without them it falls back to MessageSet v0/v1.
API_PRODUCE, API_FETCH, API_METADATA, API_FIND_COORDINATOR = 0, 1, 3, 10
API_API_VERSIONS, API_INIT_PRODUCER_ID = 18, 22
SUPPORTED = {
    API_PRODUCE: (0, 7),
    API_FETCH: (0, 11),
    API_METADATA: (0, 8),
    API_FIND_COORDINATOR: (0, 2),
    API_API_VERSIONS: (0, 3),
    API_INIT_PRODUCER_ID: (0, 1),
}


class Reader:
    """Big-endian cursor over a request body."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("short request")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def uvarint(self):
        shift, value = 0, 0
        for _ in range(5):
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
        raise ValueError("varint too long")

    def tagged_fields(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def p_i16(v):
    return struct.pack(">h", v)


def p_i32(v):
    return struct.pack(">i", v)


def p_i64(v):
    return struct.pack(">q", v)


def p_str(s):
    if s is None:
        return p_i16(-1)
    b = s.encode()
    return p_i16(len(b)) + b


def p_array(items):
    return p_i32(len(items)) + b"".join(items)


def p_uvarint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def answer_api_versions(version):
    keys = sorted(SUPPORTED.items())
    if version >= 3:
        body = p_i16(0) + p_uvarint(len(keys) + 1)
        body += b"".join(p_i16(k) + p_i16(lo) + p_i16(hi) + b"\x00" for k, (lo, hi) in keys)
        return body + p_i32(0) + b"\x00"
    body = p_i16(0) + p_array([p_i16(k) + p_i16(lo) + p_i16(hi) for k, (lo, hi) in keys])
    return body + (p_i32(0) if version >= 1 else b"")


def answer_metadata(version, port):
    body = p_i32(0) if version >= 3 else b""
    broker = p_i32(0) + p_str("127.0.0.1") + p_i32(port)
    if version >= 1:
        broker += p_str(None)                       # Rack
    body += p_array([broker])
    if version >= 2:
        body += p_str("sluice-capture")             # ClusterId
    if version >= 1:
        body += p_i32(0)                            # ControllerId
    part = p_i16(0) + p_i32(0) + p_i32(0)           # ErrorCode, PartitionIndex, LeaderId
    if version >= 7:
        part += p_i32(0)                            # LeaderEpoch
    part += p_array([p_i32(0)]) + p_array([p_i32(0)])
    if version >= 5:
        part += p_array([])                         # OfflineReplicas
    topic = p_i16(0) + p_str(TOPIC)
    if version >= 1:
        topic += b"\x00"                            # IsInternal
    topic += p_array([part])
    if version >= 8:
        topic += p_i32(-2147483648)                 # TopicAuthorizedOperations
    body += p_array([topic])
    if version >= 8:
        body += p_i32(-2147483648)                  # ClusterAuthorizedOperations
    return body


def answer_init_producer_id(version):
    return p_i32(0) + p_i16(0) + p_i64(PRODUCER_ID) + p_i16(PRODUCER_EPOCH)


def answer_produce(version, body, captured):
    r = Reader(body)
    if version >= 3:
        r.string()                                  # TransactionalId
    r.i16()                                         # Acks
    r.i32()                                         # TimeoutMs
    topics = []
    for _ in range(r.i32()):
        name = r.string()
        parts = []
        for _ in range(r.i32()):
            index = r.i32()
            n = r.i32()
            records = r.take(n) if n >= 0 else b""
            captured.append(records)
            p = p_i32(index) + p_i16(0) + p_i64(0)
            if version >= 2:
                p += p_i64(-1)                      # LogAppendTimeMs
            if version >= 5:
                p += p_i64(0)                       # LogStartOffset
            parts.append(p)
        topics.append(p_str(name) + p_array(parts))
    return p_array(topics) + (p_i32(0) if version >= 1 else b"")


class FakeBroker:
    """Listens on 127.0.0.1:<ephemeral>; one thread per connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.captured = []
        self.got_produce = threading.Event()
        self.log = []
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    @staticmethod
    def recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def serve(self, conn):
        try:
            while True:
                size = struct.unpack(">i", self.recv_exact(conn, 4))[0]
                self.handle(conn, self.recv_exact(conn, size))
        except (EOFError, OSError, ValueError):
            pass
        finally:
            conn.close()

    def handle(self, conn, frame):
        r = Reader(frame)
        key, version, corr = r.i16(), r.i16(), r.i32()
        r.string()                                  # client_id
        self.log.append((key, version))
        flexible_req = (key == API_API_VERSIONS and version >= 3)
        if flexible_req:
            r.tagged_fields()
        body = frame[r.pos:]
        if key == API_API_VERSIONS:
            lo, hi = SUPPORTED[key]
            if version > hi:                        # ask again with v0
                resp = p_i16(35) + p_array([p_i16(key) + p_i16(lo) + p_i16(hi)])
            else:
                resp = answer_api_versions(version)
        elif key == API_METADATA:
            resp = answer_metadata(version, self.port)
        elif key == API_INIT_PRODUCER_ID:
            resp = answer_init_producer_id(version)
        elif key == API_PRODUCE:
            resp = answer_produce(version, body, self.captured)
            self.got_produce.set()
        else:
            raise ValueError("unexpected api key %d v%d" % (key, version))
        # ApiVersions answers always use response header v0; so do the
        # non-flexible versions served here.
        out = p_i32(corr) + resp
        conn.sendall(p_i32(len(out)) + out)

    def close(self):
        self.sock.close()


LINES = ["k%d:value %d — the quick brown fox jumps over the lazy dog %s" % (i, i, "x" * 20)
         for i in range(5)]


def kcat_cmd(port, codec, idempotent):
    cmd = ["kcat", "-P", "-b", "127.0.0.1:%d" % port, "-t", TOPIC, "-p", "0",
           "-K:", "-H", "app=sluice", "-H", "trace=t-1",
           "-X", "linger.ms=100", "-X", "api.version.request=true"]
    if codec != "none":
        cmd += ["-z", codec]
    if idempotent:
        cmd += ["-X", "enable.idempotence=true"]
    return cmd


KAFKA_PYTHON = r'''
import sys
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers="127.0.0.1:%d", api_version=(2, 0, 0),
                  compression_type=%r, linger_ms=100)
for i in range(5):
    p.send("capture", value=("value %%d — the quick brown fox" %% i).encode(),
           key=("k%%d" %% i).encode(), headers=[("app", b"sluice")], partition=0)
p.flush(10)
p.close(1)
'''


def capture(name, make_cmd, stdin, out_dir):
    """Runs make_cmd(port) against a fresh fake broker; saves the first record set."""
    broker = FakeBroker()
    try:
        cmd = make_cmd(broker.port)
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            _, err = proc.communicate(stdin.encode() if stdin else None, timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if not broker.got_produce.is_set() or not broker.captured:
            sys.stderr.write("%s: no Produce captured (requests %s)\n%s\n"
                             % (name, broker.log, err.decode(errors="replace")))
            return False
        path = os.path.join(out_dir, "batch-%s.bin" % name)
        with open(path, "wb") as f:
            f.write(broker.captured[0])
        print("%s: %d bytes, requests %s" % (path, len(broker.captured[0]), broker.log))
        return True
    finally:
        broker.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data"))
    ap.add_argument("--only", help="capture only this name (e.g. kcat-gzip)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    stdin = "\n".join(LINES) + "\n"
    jobs = []
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        jobs.append(("kcat-" + codec, lambda port, c=codec: kcat_cmd(port, c, False), stdin))
    jobs.append(("kcat-idempotent", lambda port: kcat_cmd(port, "none", True), stdin))
    for codec in [None, "gzip"]:
        jobs.append(("kafkapython-" + (codec or "none"),
                     lambda port, c=codec: ["/usr/bin/python3", "-c", KAFKA_PYTHON % (port, c)],
                     None))

    ok = True
    for name, make_cmd, data in jobs:
        if args.only and name != args.only:
            continue
        ok &= capture(name, make_cmd, data, args.out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
