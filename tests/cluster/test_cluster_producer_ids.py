"""test_cluster_producer_ids.py — 1 ZooKeeper server + 2 Sluice brokers:
producer ids come from blocks reserved in ZooKeeper's
/latest_producer_id_block (Kafka's ZK-mode layout), so the two brokers
never hand out the same id. Raw InitProducerId v0 requests to both brokers,
interleaved, more than one block's worth each; every id distinct; the
znode holds Kafka's JSON and moves forward; a restarted broker takes a new
block above every id handed out before. Exit 77 when ZooKeeper is missing."""
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402
from cluster_harness import SluiceCluster  # noqa: E402

FAILED = []
BLOCK = 1000
PER_BROKER = 1300          # > one block per broker
COORDINATOR_NOT_AVAILABLE = 15


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        FAILED.append(what)
    return cond


class Raw:
    """One Kafka connection sending InitProducerId v0 (idempotent: null
    transactional id)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.corr = 0

    def _recvn(self, n):
        b = b""
        while len(b) < n:
            chunk = self.s.recv(n - len(b))
            if not chunk:
                raise OSError("connection closed")
            b += chunk
        return b

    def init_producer_id(self):
        """(error, producer id, epoch)."""
        self.corr += 1
        client = b"pid-test"
        body = struct.pack(">hhih", 22, 0, self.corr, len(client)) + client
        body += struct.pack(">hi", -1, 60000)   # TransactionalId null, timeout
        self.s.sendall(struct.pack(">i", len(body)) + body)
        n, = struct.unpack(">i", self._recvn(4))
        r = self._recvn(n)
        corr, _throttle, err, pid, epoch = struct.unpack(">iihqh", r[:20])
        assert corr == self.corr
        return err, pid, epoch

    def next_id(self, tries=200):
        for _ in range(tries):
            err, pid, epoch = self.init_producer_id()
            if err == 0:
                return pid, epoch
            if err != COORDINATOR_NOT_AVAILABLE:
                raise RuntimeError("InitProducerId error %d" % err)
            time.sleep(0.1)
        raise RuntimeError("InitProducerId kept failing")

    def close(self):
        self.s.close()


def block(c):
    data, stat = c.zk_get("/latest_producer_id_block")
    return (json.loads(data) if data else None), stat


def run(c):
    c.wait_cluster(timeout=120)
    conns = {i: Raw(c.ports[i]) for i in (1, 2)}
    ids = {1: [], 2: []}
    epochs = set()
    try:
        for _ in range(PER_BROKER):
            for i in (1, 2):
                pid, epoch = conns[i].next_id()
                ids[i].append(pid)
                epochs.add(epoch)
    finally:
        for r in conns.values():
            r.close()
    every = ids[1] + ids[2]
    check(len(every) == 2 * PER_BROKER, "%d ids handed out" % len(every))
    check(len(set(every)) == len(every), "all producer ids distinct across both brokers")
    check(epochs == {0}, "epoch always 0 (%s)" % sorted(epochs))
    check(min(every) >= 0, "ids non-negative")
    for i in (1, 2):
        check(all(a < b for a, b in zip(ids[i], ids[i][1:])),
              "broker %d hands out increasing ids" % i)
    js, stat = block(c)
    print("znode:", js, "version", stat and stat.get("version"))
    check(js is not None and js.get("version") == 1 and isinstance(js.get("broker"), int) and
          isinstance(js.get("block_start"), str) and isinstance(js.get("block_end"), str),
          "/latest_producer_id_block holds Kafka's JSON (strings for the offsets)")
    end1 = int(js["block_end"])
    check(int(js["block_end"]) - int(js["block_start"]) + 1 == BLOCK, "blocks of 1000 ids")
    check(end1 >= max(every), "block_end %d covers every id (max %d)" % (end1, max(every)))
    # Four blocks at least (1300 ids per broker, 1000 per block).
    check(stat is not None and stat.get("version", 0) >= 3,
          "the znode was set at least 4 times (version %s)" % (stat and stat.get("version")))

    # A restarted broker takes a new block: its ids are above every old one.
    c.stop(1)
    c.start(1)
    c.wait_cluster(timeout=120)
    r = Raw(c.ports[1])
    try:
        pid, _ = r.next_id()
    finally:
        r.close()
    js2, _ = block(c)
    check(pid > max(every), "after a restart broker 1's id %d is above every old id" % pid)
    check(int(js2["block_start"]) > end1 and js2["broker"] == 1,
          "/latest_producer_id_block moved forward to broker 1's new block (%s)" % js2)


def main():
    why = zk_harness.zk_available()
    if why:
        print("skip:", why)
        return 77
    with SluiceCluster(zk_servers=1, brokers=2, session_ms=6000) as c:
        try:
            run(c)
        except Exception as e:  # noqa: BLE001
            FAILED.append("exception: %r" % e)
            import traceback
            traceback.print_exc()
        if FAILED:
            c.dump_logs()
    print("%d failed" % len(FAILED))
    for f in FAILED:
        print("  FAIL:", f)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
