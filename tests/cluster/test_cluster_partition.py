"""test_cluster_partition.py — 1 ZooKeeper + 3 brokers, a topic with RF 3 and
min.insync.replicas=2. Two rounds: first the leader of one partition (not
the controller), then the controller itself (leading a partition: a
deposed controller must learn it lost both roles) is cut off from the
other brokers and from ZooKeeper by firewall rules on 127.0.0.1, while the
test's own clients still reach it:

  - acks=all writes to the cut-off leader are not acknowledged (its ISR
    cannot shrink without the controller, although replica.lag.time.max.ms
    passes during the cut) and its high watermark does not move;
  - after its ZooKeeper session times out the others elect a new leader and
    acks=all writes to it succeed;
  - after the cut heals the old leader learns it is a follower, truncates
    what the ISR never had (its log ends byte-identical to the new leader's
    up to the HW) and rejoins the ISR; every acknowledged record is present
    exactly once.

How the cut works: every broker is started inside its own cgroup (v2)
created by the test (the test process enters the cgroup just for the fork,
so every socket the broker opens belongs to it). One nftables table of the
test's own (`inet sl_cut_<pid>`, output hook) drops packets from the
leader's sockets to the other brokers' and ZooKeeper's ports and packets
from those ports to the leader's sockets, and the same between the other
brokers' sockets and the leader's port (input rules match the receiving
socket's cgroup, output rules the sender's). Only 127.0.0.1 is
used; the table and the cgroups are removed at the end, also on failure
(finally + atexit). Exit 77 when ZooKeeper, nft or cgroup v2 is missing."""
import atexit
import json
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402
from cluster_harness import SluiceCluster  # noqa: E402
from fault_checks import (FAILED, check, check_records, consume_all, create_topic, log_batches,
                          logs_identical, parts_md, produce, sanitizer_clean, shutdown)  # noqa: E402

TOPIC = "cut-t"
NPART = 3


class Cut:
    """Per-broker cgroups and one nftables table, all owned by this test."""

    def __init__(self):
        self.table = "sl_cut_%d" % os.getpid()
        self.mount = None
        self.groups = {}
        self.active = False
        for line in open("/proc/mounts"):
            f = line.split()
            if len(f) >= 3 and f[2] == "cgroup2":
                self.mount = f[1]
                break
        self.home = self.mount
        for line in open("/proc/self/cgroup"):
            if line.startswith("0::") and self.mount is not None:
                self.home = os.path.join(self.mount, line[3:].strip().lstrip("/"))

    def remove_stale(self):
        """Removes the tables and cgroups of earlier runs whose test process
        is gone (killed by a CTest timeout before it could clean up)."""
        r = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=10)
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) == 3 and f[2].startswith("sl_cut_") and f[2][7:].isdigit() and \
                    not os.path.exists("/proc/%s" % f[2][7:]):
                subprocess.run(["nft", "delete", "table", f[1], f[2]], capture_output=True, timeout=10)
        for name in os.listdir(self.mount):
            f = name.split("-")
            if len(f) == 4 and f[:2] == ["sl", "cut"] and f[2].isdigit() and \
                    not os.path.exists("/proc/%s" % f[2]):
                try:
                    os.rmdir(os.path.join(self.mount, name))
                except OSError:
                    pass

    def why_unusable(self):
        """None when cgroup v2 and nft both work here, else the exact error."""
        if self.mount is None or not (self.mount + "/").startswith("/sys/fs/cgroup/"):
            return "no cgroup v2 mount under /sys/fs/cgroup (%s)" % self.mount
        try:
            r = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=10)
        except OSError as e:
            return "nft not usable: %s (Debian package nftables)" % e
        if r.returncode != 0:
            return "nft list tables failed: %s" % r.stderr.strip()
        return None

    def nft(self, *args):
        r = subprocess.run(["nft"] + list(args), capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise RuntimeError("nft %s: %s" % (" ".join(args), r.stderr.strip()))

    def group(self, i):
        """Creates (once) broker i's cgroup; returns its directory."""
        if i not in self.groups:
            d = os.path.join(self.mount, "sl-cut-%d-b%d" % (os.getpid(), i))
            os.makedirs(d, exist_ok=True)
            self.groups[i] = d
        return self.groups[i]

    def nft_path(self, i):
        return os.path.relpath(self.group(i), "/sys/fs/cgroup")

    def enter(self, i):
        with open(os.path.join(self.group(i), "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def leave(self):
        with open(os.path.join(self.home, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def cut(self, leader, leader_port, other_brokers, other_ports):
        """leader <-/-> other brokers and ZooKeeper (the ports in other_ports)."""
        self.nft("add", "table", "inet", self.table)
        self.active = True
        for chain, hook in (("out", "output"), ("in", "input")):
            self.nft("add", "chain", "inet", self.table, chain,
                     "{ type filter hook %s priority 0; policy accept; }" % hook)
        ports = "{ %s }" % ", ".join(str(p) for p in other_ports)
        # Output: the sending socket's cgroup; input: the receiving
        # socket's (looked up by nft), so packets already in flight on
        # established connections (a follower's pending fetch) are cut too.
        self.nft("add", "rule", "inet", self.table, "out", "socket", "cgroupv2", "level", "1",
                 '"%s"' % self.nft_path(leader), "tcp", "dport", ports, "drop")
        self.nft("add", "rule", "inet", self.table, "in", "socket", "cgroupv2", "level", "1",
                 '"%s"' % self.nft_path(leader), "tcp", "sport", ports, "drop")
        for o in other_brokers:
            self.nft("add", "rule", "inet", self.table, "out", "socket", "cgroupv2", "level", "1",
                     '"%s"' % self.nft_path(o), "tcp", "dport", str(leader_port), "drop")
            self.nft("add", "rule", "inet", self.table, "in", "socket", "cgroupv2", "level", "1",
                     '"%s"' % self.nft_path(o), "tcp", "sport", str(leader_port), "drop")

    def heal(self):
        if self.active:
            self.nft("delete", "table", "inet", self.table)
            self.active = False

    def close(self):
        try:
            self.heal()
        except Exception as e:  # noqa: BLE001
            print("cut: could not delete table %s: %s" % (self.table, e))
        for d in self.groups.values():
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids = f.read().split()
                for pid in pids:
                    with open(os.path.join(self.mount, "cgroup.procs"), "w") as f:
                        f.write(pid)
                os.rmdir(d)
            except OSError as e:
                print("cut: could not remove %s: %s" % (d, e))
        self.groups = {}


class CutCluster(SluiceCluster):
    """Starts each broker inside its own cgroup of `cut`."""
    cut = None

    def start(self, i, broker_id=None, port=None, data_dir=None):
        self.cut.enter(i)
        try:
            return super().start(i, broker_id, port, data_dir)
        finally:
            self.cut.leave()


# ---- the test ----
def controller(c):
    data, _ = c.zk_get("/controller")
    return json.loads(data)["brokerid"] if data else None


def values_in_log(c, i, topic, part):
    """Every record value in broker i's log (uncompressed batches)."""
    out = []
    for _, _, b in log_batches(c, i, topic, part):
        attrs = struct.unpack(">h", b[21:23])[0]
        if attrs & 0x7:
            continue
        (n,) = struct.unpack(">i", b[57:61])
        off = 61
        for _ in range(n):
            ln, off = varint(b, off)
            end = off + ln
            off += 1
            _, off = varint(b, off)
            _, off = varint(b, off)
            kl, off = varint(b, off)
            off += max(kl, 0)
            vl, off = varint(b, off)
            out.append(b[off:off + vl].decode(errors="replace"))
            off = end
    return out


def varint(b, off):
    v, shift = 0, 0
    for _ in range(10):
        x = b[off]
        off += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            break
    return (v >> 1) ^ -(v & 1), off


def cut_round(c, cut, tag, part, acked):
    """Cuts the leader of `part` off, checks the three phases, heals."""
    ids = [1, 2, 3]
    ctl = controller(c)
    old = parts_md(c, ctl, TOPIC)[part][0]
    others = [i for i in ids if i != old]
    a, f = produce(c, TOPIC, part, "%s-a" % tag, 30)
    check(not f and len(a) == 30, "[%s] 30 acks=all records before the cut (%d failed)" % (tag, len(f)))
    acked += a
    _, hw0, _ = consume_all(c, old, TOPIC, part)
    print("[%s] partition %d: leader %d, controller %d, HW %d; cutting broker %d off" %
          (tag, part, old, ctl, hw0, old))

    cut.cut(old, c.ports[old], others,
            [c.ports[o] for o in others] + list(c.zk.client_ports.values()))
    t0 = time.monotonic()
    # acks=all writes to the cut-off leader: never acknowledged.
    a, f = produce(c, TOPIC, part, "%s-cut" % tag, 5, ids=[old], timeout=15.0, each=False)
    check(not a and len(f) == 5, "[%s] acks=all writes to the cut-off leader %d are not acknowledged "
          "(%d acked, %d failed)" % (tag, old, len(a), len(f)))
    cutv = [v for v in values_in_log(c, old, TOPIC, part) if v.startswith("%s-cut-" % tag)]
    check(cutv, "[%s] the cut-off leader appended them to its own log (%d), above its HW" %
          (tag, len(cutv)))
    _, hw_cut, recs = consume_all(c, old, TOPIC, part)
    check(hw_cut == hw0 and not [v for _, v in recs if v in cutv],
          "[%s] the cut-off leader's HW stays %d (now %d) and it serves none of them" % (tag, hw0, hw_cut))

    # The others elect a new leader once the session of the old one expires.
    def elected():
        ctl2 = controller(c)
        pm = parts_md(c, ctl2, TOPIC) if ctl2 in others else {}
        return pm and pm[part][0] in others and old not in pm[part][2]
    c.wait(elected, "[%s] a new leader of partition %d" % (tag, part), timeout=90)
    ctl2 = controller(c)
    new = parts_md(c, ctl2, TOPIC)[part][0]
    print("[%s] new leader %d (controller %d) after %.1fs" % (tag, new, ctl2, time.monotonic() - t0))
    a, f = c.wait(lambda: (lambda r: r if r[0] else None)(
        produce(c, TOPIC, part, "%s-n%d" % (tag, int(time.monotonic() * 1000)), 1, ids=others)),
        "a first acks=all write to the new leader", timeout=60)
    print("[%s] first acks=all write to the new leader %.1fs after the cut" % (tag, time.monotonic() - t0))
    acked += a
    a, f = produce(c, TOPIC, part, "%s-b" % tag, 30, ids=others)
    check(not f and len(a) == 30, "[%s] 30 acks=all records to the new leader %d (%d failed)"
          % (tag, new, len(f)))
    acked += a

    # Heal: the old leader follows, truncates and rejoins the ISR.
    cut.heal()
    t1 = time.monotonic()
    c.wait_cluster(timeout=90)
    c.wait(lambda: all((lambda pm: len(pm) == NPART and all(isr == ids for _, _, isr in pm.values()))(
        parts_md(c, i, TOPIC)) for i in ids), "broker %d back in every ISR" % old, timeout=120)
    print("[%s] old leader back in the ISR %.1fs after the heal" % (tag, time.monotonic() - t1))
    check(controller(c) != old or ctl == old, "[%s] the cut-off broker did not take the controller back"
          % tag)
    check(parts_md(c, old, TOPIC)[part][0] == new, "[%s] broker %d reports %d as the leader" % (tag, old, new))
    low, hw, recs = consume_all(c, new, TOPIC, part)
    vals = [v for _, v in recs]
    check_records(vals, acked, "[%s] partition %d from the new leader" % (tag, part))
    check(low == 0 and hw == len(vals) and hw >= len(acked),
          "[%s] HW %d covers the %d acknowledged records" % (tag, hw, len(acked)))
    extra = [v for v in vals if v not in acked]
    print("[%s] unacknowledged records kept by the ISR: %s" % (tag, extra))
    check(not [v for v in extra if v in cutv],
          "[%s] none of the writes to the cut-off leader reached the new leader" % tag)
    check(c.wait(lambda: logs_identical(c, new, old, TOPIC, part, hw), "identical logs", timeout=60),
          "[%s] broker %d's log byte-identical to the new leader %d's up to HW %d" % (tag, old, new, hw))
    ghost = [v for v in values_in_log(c, old, TOPIC, part) if v in cutv]
    check(not ghost, "[%s] the old leader truncated what the ISR never had (left: %s)" % (tag, ghost[:5]))
    third = [o for o in others if o != new][0]
    check(c.wait(lambda: logs_identical(c, new, third, TOPIC, part, hw), "identical logs", timeout=60),
          "[%s] broker %d's log identical too" % (tag, third))


def run(c, cut):
    ids = [1, 2, 3]
    c.wait_cluster(timeout=90)
    check(create_topic(c, 1, TOPIC, NPART) == [0], "CreateTopics %dx3 min.insync 2" % NPART)
    c.wait(lambda: all(len(pm) == NPART and all(r == ids and isr == ids for _, r, isr in pm.values())
                       for pm in (parts_md(c, i, TOPIC) for i in ids)),
           "every partition with ISR 1,2,3", timeout=90)
    acked = {p: [] for p in range(NPART)}
    # Round 1: the leader of a partition, not the controller.
    ctl = controller(c)
    pm = parts_md(c, ctl, TOPIC)
    part = [p for p in range(NPART) if pm[p][0] != ctl][0]
    cut_round(c, cut, "leader", part, acked[part])
    # Round 2: the controller, leading a partition (a deposed controller
    # must learn it lost both roles).
    ctl = controller(c)
    pm = parts_md(c, ctl, TOPIC)
    led = [p for p in range(NPART) if pm[p][0] == ctl]
    if check(led, "the controller %d leads a partition (%s)" % (ctl, pm)):
        cut_round(c, cut, "controller", led[0], acked[led[0]])
    for p in range(NPART):
        lp = parts_md(c, 1, TOPIC)[p][0]
        _, hwp, _ = consume_all(c, lp, TOPIC, p)
        check(all(c.wait(lambda r=r: logs_identical(c, lp, r, TOPIC, p, hwp), "identical", timeout=30)
                  for r in ids if r != lp),
              "partition %d: replicas identical up to HW %d" % (p, hwp))
    shutdown(c)
    sanitizer_clean(c)


def main():
    why = zk_harness.zk_available()
    if why:
        print("skip:", why)
        return 77
    cut = Cut()
    why = cut.why_unusable()
    if why:
        print("skip:", why)
        return 77
    cut.remove_stale()
    atexit.register(cut.close)
    CutCluster.cut = cut
    try:
        # replica.lag.time.max.ms below the session timeout: the cut-off
        # leader wants to drop its followers from the ISR while it still
        # thinks it leads, and must not do so without the controller.
        with CutCluster(zk_servers=1, brokers=3, session_ms=6000,
                        conf=["replica.lag.time.max.ms=2000"]) as c:
            try:
                run(c, cut)
            except Exception as e:  # noqa: BLE001
                FAILED.append("exception: %r" % e)
                import traceback
                traceback.print_exc()
            finally:
                cut.heal()
            if FAILED:
                c.dump_logs()
    finally:
        cut.close()
    r = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=10)
    check(cut.table not in r.stdout, "the test's nft table is gone")
    print("%d failed" % len(FAILED))
    for f in FAILED:
        print("  FAIL:", f)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
