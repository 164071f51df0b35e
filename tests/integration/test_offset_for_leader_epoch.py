#!/usr/bin/python3
"""test_offset_for_leader_epoch.py — OffsetForLeaderEpoch (key 23) on a
single-node broker, over a raw socket in versions 0, 2, 3 and 4 (flexible).

A single-node broker leads every partition in leader epoch 0 (Metadata and
ListOffsets say so, and Produce stamps partitionLeaderEpoch 0), so, as Kafka
answers with a leader-epoch cache holding epoch 0:
  1. ApiVersions advertises key 23, versions 0-4.
  2. LeaderEpoch 0 -> (epoch 0, end offset = log end offset) for a partition
     holding records, (0, 0) for an empty one.
  3. LeaderEpoch 1 (newer than any) -> (-1, -1), no error; LeaderEpoch -1
     -> (-1, -1).
  4. CurrentLeaderEpoch 1 -> UNKNOWN_LEADER_EPOCH (75); 0 and -1 pass.
  5. Unknown topic / partition out of range -> UNKNOWN_TOPIC_OR_PARTITION (3).
  6. v0 (no LeaderEpoch in the answer) gives the same end offset.
Records are produced with kafka-python (acks=1). Env: SLUICE_BIN (skip 77).
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import Broker, Checks  # noqa: E402

TOPIC = b"ofle"
RECORDS = 7


def kstr(s):
    return struct.pack(">h", len(s)) + s


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_uvarint(data, p):
    n = shift = 0
    while True:
        b = data[p]
        p += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, p


class Raw:
    def __init__(self, port):
        import socket
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.corr = 0

    def call(self, key, version, body, flexible):
        self.corr += 1
        hdr = struct.pack(">hhi", key, version, self.corr) + kstr(b"ofle-test")
        if flexible:
            hdr += b"\x00"
        msg = hdr + body
        self.s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", self._read(4))[0]
        data = self._read(size)
        assert struct.unpack(">i", data[:4])[0] == self.corr
        return data[5:] if flexible and key != 18 else data[4:]

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed by the broker")
            buf += chunk
        return buf


def ofle(raw, version, parts, topic=TOPIC):
    """parts: [(partition, current_epoch, epoch)]; returns
    [(error, partition, leader_epoch or None, end_offset)]."""
    flexible = version >= 4
    body = b""
    if version >= 3:
        body += struct.pack(">i", -1)          # ReplicaId: a consumer
    if flexible:
        body += uvarint(2) + uvarint(len(topic) + 1) + topic + uvarint(len(parts) + 1)
    else:
        body += struct.pack(">i", 1) + kstr(topic) + struct.pack(">i", len(parts))
    for p, cur, ep in parts:
        body += struct.pack(">i", p)
        if version >= 2:
            body += struct.pack(">i", cur)
        body += struct.pack(">i", ep)
        if flexible:
            body += b"\x00"
    if flexible:
        body += b"\x00\x00"                    # topic tags, request tags
    data = raw.call(23, version, body, flexible)
    p = 4 if version >= 2 else 0               # ThrottleTimeMs
    out = []
    if flexible:
        nt, p = read_uvarint(data, p)
        nt -= 1
    else:
        nt = struct.unpack(">i", data[p:p + 4])[0]
        p += 4
    assert nt == 1
    if flexible:
        ln, p = read_uvarint(data, p)
        p += ln - 1
        np_, p = read_uvarint(data, p)
        np_ -= 1
    else:
        ln = struct.unpack(">h", data[p:p + 2])[0]
        p += 2 + ln
        np_ = struct.unpack(">i", data[p:p + 4])[0]
        p += 4
    for _ in range(np_):
        err, part = struct.unpack(">hi", data[p:p + 6])
        p += 6
        ep = None
        if version >= 1:
            ep = struct.unpack(">i", data[p:p + 4])[0]
            p += 4
        end = struct.unpack(">q", data[p:p + 8])[0]
        p += 8
        if flexible:
            p += 1
        out.append((err, part, ep, end))
    return out


def api_versions_range(raw, key):
    data = raw.call(18, 0, b"", False)
    err, n = struct.unpack(">hi", data[:6])
    assert err == 0
    for i in range(n):
        k, lo, hi = struct.unpack(">hhh", data[6 + 6 * i:12 + 6 * i])
        if k == key:
            return lo, hi
    return None


def main():
    c = Checks()
    b = Broker(c, "sluice-ofle-", conf=["num.partitions=2"])
    addr = b.start()
    try:
        from kafka import KafkaProducer
    except ImportError:
        b.stop()
        b.remove_dir()
        print("SKIP: kafka-python missing")
        sys.exit(77)
    try:
        prod = KafkaProducer(bootstrap_servers=addr, acks=1, api_version=(2, 5, 0))
        for i in range(RECORDS):
            prod.send(TOPIC.decode(), b"v%d" % i, partition=0).get(timeout=20)
        prod.close()
        raw = Raw(b.port)
        c.eq(api_versions_range(raw, 23), (0, 4), "ApiVersions: OffsetForLeaderEpoch 0-4")
        for v in (2, 3, 4):
            got = ofle(raw, v, [(0, 0, 0), (1, -1, 0), (0, -1, 1), (0, -1, -1)])
            c.eq(got[0], (0, 0, 0, RECORDS), "v%d epoch 0: (0, log end)" % v)
            c.eq(got[1], (0, 1, 0, 0), "v%d empty partition, epoch 0: (0, 0)" % v)
            c.eq(got[2], (0, 0, -1, -1), "v%d newer epoch: (-1, -1)" % v)
            c.eq(got[3], (0, 0, -1, -1), "v%d epoch -1: (-1, -1)" % v)
            got = ofle(raw, v, [(0, 1, 0), (5, -1, 0)])
            c.eq(got[0][0], 75, "v%d CurrentLeaderEpoch 1: UNKNOWN_LEADER_EPOCH" % v)
            c.eq(got[1][0], 3, "v%d partition 5: UNKNOWN_TOPIC_OR_PARTITION" % v)
            got = ofle(raw, v, [(0, 0, 0)], topic=b"no-such-topic")
            c.eq(got[0][0], 3, "v%d unknown topic: UNKNOWN_TOPIC_OR_PARTITION" % v)
        got = ofle(raw, 0, [(0, -1, 0)])
        c.eq(got[0], (0, 0, None, RECORDS), "v0 epoch 0: end offset = log end")
    except Exception as e:  # noqa: BLE001 — any failure ends the test
        b.fail_exit("exception: %r" % (e,))
    rc = b.stop()
    c.eq(rc, 0, "broker exit status")
    b.remove_dir()
    c.finish()


if __name__ == "__main__":
    main()
