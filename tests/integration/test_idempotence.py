#!/usr/bin/python3
"""test_idempotence.py — the broker's idempotent-producer checks, over a raw
socket, with record batches built by hand (so sequence numbers, epochs and
retries are exactly what the test says, which no client library allows).

Checks, each with exact expected results:
  1. InitProducerId v0/v3/v4: fresh ids with epoch 0, each call a new id
     (the KIP-360 bump of a non-transactional producer too); a transactional
     id is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53); a
     half-set (id, epoch) pair with INVALID_REQUEST (42).
  2. A retried batch (same producer id, epoch, sequence) is acknowledged
     with its original base offset and not written twice (log end offset
     unchanged), also when the retry is pipelined right behind the original
     (the original still in flight), after a clean restart (snapshot) and
     after kill -9 (rebuild from the log).
  3. A gap in sequence numbers: OUT_OF_ORDER_SEQUENCE_NUMBER (45); an older
     epoch after a bump: INVALID_PRODUCER_EPOCH (47); two batches in one set
     from an idempotent producer: INVALID_RECORD (87); a transactional batch:
     INVALID_TXN_STATE (48).

Runs with /usr/bin/python3, standard library only. Env: SLUICE_BIN (skip 77
without it).
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

TOPIC = b"idem"

# ---- CRC-32C (Castagnoli), table-driven ----
_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(n):
    z = (n << 1) ^ (n >> 63)  # zigzag
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def record(delta, key, value):
    body = b"\x00" + varint(0) + varint(delta)
    body += varint(len(key)) + key + varint(len(value)) + value + varint(0)
    return varint(len(body)) + body


def batch(pid, epoch, seq, count, attributes=0, tag=b"v"):
    """A record batch v2 with `count` records (base offset 0)."""
    ts = int(time.time() * 1000)
    recs = b"".join(record(i, b"k%d" % (seq + i), tag + b"%d" % (seq + i)) for i in range(count))
    after_crc = struct.pack(">hiqqqhii", attributes, count - 1, ts, ts, pid, epoch, seq, count) + recs
    crc = crc32c(after_crc)
    # partitionLeaderEpoch, magic, crc
    after_len = struct.pack(">ibI", 0, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_len)) + after_len


# ---- wire ----
def kstr(s):
    if s is None:
        return struct.pack(">h", -1)
    return struct.pack(">h", len(s)) + s


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.corr = 0

    def send(self, key, version, body):
        self.corr += 1
        hdr = struct.pack(">hhi", key, version, self.corr) + kstr(b"idem-test")
        if key == 22 and version >= 2:   # flexible: header v2 (empty tagged fields)
            hdr += b"\x00"
        msg = hdr + body
        self.s.sendall(struct.pack(">i", len(msg)) + msg)
        return self.corr

    def recv(self, corr, flexible=False):
        size = struct.unpack(">i", self._read(4))[0]
        data = self._read(size)
        got = struct.unpack(">i", data[:4])[0]
        assert got == corr, "correlation id %d, expected %d" % (got, corr)
        return data[5:] if flexible else data[4:]

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed by the broker")
            buf += chunk
        return buf

    def close(self):
        self.s.close()


def init_pid(c, version=0, txn=None, pid=-1, epoch=-1):
    """InitProducerId; returns (error, producer id, epoch)."""
    if version >= 2:
        # compact nullable string, int32, [int64, int16], tagged fields
        t = b"\x00" if txn is None else bytes([len(txn) + 1]) + txn
        body = t + struct.pack(">i", 60000)
        if version >= 3:
            body += struct.pack(">qh", pid, epoch)
        body += b"\x00"
    else:
        body = kstr(txn) + struct.pack(">i", 60000)
    corr = c.send(22, version, body)
    data = c.recv(corr, flexible=version >= 2)
    _throttle, err, rpid, repoch = struct.unpack(">ihqh", data[:16])
    return err, rpid, repoch


def produce_req(c, records, acks=-1):
    """Sends Produce v7 for partition 0 of TOPIC; returns the correlation id."""
    body = kstr(None) + struct.pack(">hi", acks, 30000)
    body += struct.pack(">i", 1) + kstr(TOPIC) + struct.pack(">i", 1)
    body += struct.pack(">ii", 0, len(records)) + records
    return c.send(0, 7, body)


def produce_resp(c, corr):
    data = c.recv(corr)
    ntopics = struct.unpack(">i", data[:4])[0]
    assert ntopics == 1
    p = 4
    nlen = struct.unpack(">h", data[p:p + 2])[0]
    p += 2 + nlen
    nparts = struct.unpack(">i", data[p:p + 4])[0]
    assert nparts == 1
    p += 4
    _idx, err, base = struct.unpack(">ihq", data[p:p + 14])
    return err, base


def produce(c, records):
    return produce_resp(c, produce_req(c, records))


def end_offset(c):
    """ListOffsets v1, LATEST, partition 0."""
    body = struct.pack(">i", -1) + struct.pack(">i", 1) + kstr(TOPIC)
    body += struct.pack(">i", 1) + struct.pack(">iq", 0, -1)
    corr = c.send(2, 1, body)
    data = c.recv(corr)
    p = 4
    nlen = struct.unpack(">h", data[p:p + 2])[0]
    p += 2 + nlen + 4
    _idx, err, _ts, off = struct.unpack(">ihqq", data[p:p + 22])
    assert err == 0, "ListOffsets error %d" % err
    return off


# ---- broker ----
class Broker:
    def __init__(self, binary):
        self.bin = binary
        self.dir = tempfile.mkdtemp(prefix="sluice-idem-")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.conf = os.path.join(self.dir, "server.properties")
        with open(self.conf, "w") as f:
            f.write("listeners=PLAINTEXT://127.0.0.1:%d\n" % self.port)
            f.write("log.dirs=%s/data\nnum.shards=2\nnum.partitions=1\nlog.level=info\n" % self.dir)
        self.log = open(os.path.join(self.dir, "broker.log"), "ab")
        self.proc = None

    def _listening(self):
        with open(os.path.join(self.dir, "broker.log"), "rb") as f:
            return f.read().count(b"listening on ")

    def start(self):
        # Ready once this run logged "listening on" (as lib.sh): a socket of
        # the previous process may linger for a moment after kill -9.
        before = self._listening()
        self.proc = subprocess.Popen([self.bin, "--config", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        for _ in range(200):
            assert self.proc.poll() is None, "broker exited during start-up"
            if self._listening() > before:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    pass
            time.sleep(0.1)
        raise AssertionError("broker did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        assert rc == 0, "broker exit status %d after SIGTERM" % rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=30)

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if os.environ.get("SL_KEEP") == "1":
            print("kept", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def tail(self):
        with open(os.path.join(self.dir, "broker.log"), "rb") as f:
            return f.read()[-4000:].decode(errors="replace")


def expect(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, expected %r" % (what, got, want))


def run(b):
    c = Conn(b.port)
    # 1. InitProducerId
    err, pid, epoch = init_pid(c, 0)
    expect((err, epoch), (0, 0), "InitProducerId v0")
    assert pid >= 0
    err, pid2, epoch2 = init_pid(c, 4, pid=pid, epoch=0)
    expect((err, epoch2), (0, 0), "InitProducerId v4 epoch bump")
    assert pid2 != pid, "a bump must give a new producer id"
    expect(init_pid(c, 1, txn=b"tx")[0], 53, "transactional id v1")
    expect(init_pid(c, 3, txn=b"tx")[0], 53, "transactional id v3")
    expect(init_pid(c, 3, pid=5, epoch=-1)[0], 42, "half-set producer id/epoch")

    # 2. de-duplication (the topic is auto-created by the first Produce)
    expect(produce(c, batch(pid, 0, 0, 3)), (0, 0), "first batch")
    expect(produce(c, batch(pid, 0, 0, 3)), (0, 0), "retried first batch")
    expect(end_offset(c), 3, "end offset after a retry")
    expect(produce(c, batch(pid, 0, 3, 2)), (0, 3), "second batch")
    # pipelined: the retry right behind its original, same connection
    first = produce_req(c, batch(pid, 0, 5, 4))
    second = produce_req(c, batch(pid, 0, 5, 4))
    expect(produce_resp(c, first), (0, 5), "pipelined original")
    expect(produce_resp(c, second), (0, 5), "pipelined retry")
    expect(end_offset(c), 9, "end offset after a pipelined retry")
    # an older batch of the window is still recognised
    expect(produce(c, batch(pid, 0, 3, 2)), (0, 3), "retry of an older batch")

    # 3. refusals
    expect(produce(c, batch(pid, 0, 20, 1))[0], 45, "sequence gap")
    expect(produce(c, batch(pid, 0, 9, 1) + batch(pid, 0, 10, 1))[0], 87, "two batches")
    expect(produce(c, batch(pid, 0, 9, 1, attributes=0x10))[0], 48, "transactional batch")
    expect(end_offset(c), 9, "end offset after refusals")
    # epoch bump on the same id (what a transactional coordinator would do),
    # then the old epoch is fenced
    expect(produce(c, batch(pid2, 0, 0, 1)), (0, 9), "second producer")
    expect(produce(c, batch(pid2, 1, 0, 1)), (0, 10), "bumped epoch from 0")
    expect(produce(c, batch(pid2, 0, 1, 1))[0], 47, "fenced epoch")
    expect(end_offset(c), 11, "end offset")
    c.close()

    # 4. a clean restart keeps the state (snapshot) ...
    b.stop()
    b.start()
    c = Conn(b.port)
    expect(produce(c, batch(pid, 0, 5, 4)), (0, 5), "retry after a clean restart")
    expect(produce(c, batch(pid, 0, 9, 1)), (0, 11), "next batch after a clean restart")
    expect(produce(c, batch(pid, 0, 11, 1))[0], 45, "gap after a clean restart")
    c.close()
    # ... and so does kill -9 (rebuild from the log after the last snapshot)
    b.kill9()
    b.start()
    c = Conn(b.port)
    expect(produce(c, batch(pid, 0, 9, 1)), (0, 11), "retry after kill -9")
    expect(produce(c, batch(pid2, 1, 0, 1)), (0, 10), "retry of the bumped epoch after kill -9")
    expect(end_offset(c), 12, "end offset after kill -9")
    err, pid3, _ = init_pid(c, 0)
    assert err == 0 and pid3 > pid2, "ids after a restart must be new (%d <= %d)" % (pid3, pid2)
    c.close()
    b.stop()


def main():
    binary = os.environ.get("SLUICE_BIN", "")
    if not binary or not os.access(binary, os.X_OK):
        print("SKIP: SLUICE_BIN is not an executable")
        return 77
    b = Broker(binary)
    try:
        b.start()
        run(b)
    except (AssertionError, EOFError, OSError) as e:
        print("FAIL (idempotence): %s" % e)
        print("---- broker log tail ----\n" + b.tail())
        return 1
    finally:
        b.cleanup()
    print("PASS: idempotence")
    return 0


if __name__ == "__main__":
    sys.exit(main())
