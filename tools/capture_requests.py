#!/usr/bin/python3
"""capture_requests.py — record the Kafka requests (and responses) real
clients exchange with a broker, as seeds for tests/fuzz/fuzz_codec.

Two commands:

  proxy --listen PORT --broker HOST:PORT --out DIR [--tag NAME]
      A TCP proxy: every client connection to 127.0.0.1:PORT is relayed to
      the broker; each complete request frame and each response frame is
      written to DIR in fuzz_codec's input format (tests/fuzz/fuzz_codec.c):
        request:  3 selector bytes 00 00 02 (mode 2: "a RequestHeader, then
                  the body it names"), then the frame without its size prefix;
        response: selector bytes (api index, version index, 01) (mode 1:
                  "response body of api/version"), then the frame without its
                  size prefix and response header.
      The broker must advertise the proxy (advertised.listeners) or clients
      go around it after their first Metadata.

  collect --out DIR [--sluice BIN]
      Starts a broker (SLUICE_BIN or --sluice) advertising a proxy, runs
      kcat, confluent-kafka (librdkafka) and kafka-python producers and
      consumers through the proxy, and writes the captured frames to DIR.

Names are <tag>-<Api>-v<version>-<frame|response>-<sha1 prefix>; identical
bytes are kept once, at most --per-kind files per (api, version, side), none
larger than --max-bytes, so the corpus stays small.

The selector bytes of a response (index into kafka_api_table, version - min)
are learned from the committed seeds named <Api>-v<version>-response in
tests/fuzz/corpus/fuzz_codec (written by gen_codec_seeds), and flexible
versions (response header v1) from the Kafka schemas in
../shared/kafka-protocol, so nothing here duplicates the codec's tables.

Standard library only (the clients used by `collect` are Debian packages).
"""
import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(REPO, "tests", "fuzz", "corpus", "fuzz_codec")
SCHEMAS = os.path.join(os.path.dirname(REPO), "shared", "kafka-protocol")
FRAME_MAX = 64 << 20


def load_schemas(path):
    """{api key: (name, flexible_min or None)} from the *Request.json schemas."""
    apis = {}
    for f in glob.glob(os.path.join(path, "*Request.json")):
        with open(f) as fh:
            text = "\n".join(l for l in fh.read().splitlines() if not l.strip().startswith("//"))
        try:
            s = json.loads(text)
        except ValueError:
            continue
        if s.get("type") != "request" or "apiKey" not in s:
            continue
        flex = s.get("flexibleVersions", "none")
        m = re.match(r"(\d+)\+", flex)
        apis[s["apiKey"]] = (s["name"][:-len("Request")], int(m.group(1)) if m else None)
    return apis


def load_selectors(seeds):
    """{(api name, version): (byte0, byte1)} from the committed response seeds."""
    sel = {}
    for f in glob.glob(os.path.join(seeds, "*-v*-response")):
        m = re.match(r"(\w+)-v(\d+)-response$", os.path.basename(f))
        if not m:
            continue
        with open(f, "rb") as fh:
            head = fh.read(3)
        if len(head) == 3:
            sel[(m.group(1), int(m.group(2)))] = (head[0], head[1])
    return sel


class Sink:
    """Writes deduplicated, bounded seeds to `out` (thread-safe)."""

    def __init__(self, out, tag, per_kind, max_bytes, apis, selectors):
        self.out, self.tag, self.per_kind, self.max_bytes = out, tag, per_kind, max_bytes
        self.apis, self.selectors = apis, selectors
        self.lock = threading.Lock()
        self.seen = set()
        self.kinds = {}
        self.written = 0
        os.makedirs(out, exist_ok=True)

    def put(self, key, version, side, data):
        name = self.apis.get(key, ("Api%d" % key, None))[0]
        if len(data) > self.max_bytes:
            return
        digest = hashlib.sha1(data).hexdigest()
        with self.lock:
            kind = (key, version, side)
            if digest in self.seen or self.kinds.get(kind, 0) >= self.per_kind:
                return
            self.seen.add(digest)
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            path = os.path.join(self.out, "%s-%s-v%d-%s-%s" % (self.tag, name, version, side,
                                                              digest[:10]))
            with open(path, "wb") as fh:
                fh.write(data)
            self.written += 1

    def request(self, frame):
        key, version = struct.unpack(">hh", frame[:4])
        self.put(key, version, "frame", b"\x00\x00\x02" + frame)

    def response(self, key, version, frame):
        name, flex_min = self.apis.get(key, (None, None))
        sel = self.selectors.get((name, version))
        if sel is None or len(frame) < 4:
            return
        body = frame[4:]
        # ResponseHeader v1 (a tagged-field section) for flexible versions,
        # except ApiVersions, always answered with header v0.
        if flex_min is not None and version >= flex_min and key != 18:
            if not body or body[0] != 0:
                return   # tagged fields in a response header: none expected, skip
            body = body[1:]
        self.put(key, version, "response", bytes([sel[0], sel[1], 1]) + body)


def read_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def relay(src, dst, on_frame):
    """Copies frames src -> dst, calling on_frame(frame) for each; ends at EOF/error."""
    try:
        while True:
            head = read_exact(src, 4)
            if head is None:
                break
            (size,) = struct.unpack(">i", head)
            if size < 0 or size > FRAME_MAX:
                break
            frame = read_exact(src, size)
            if frame is None:
                break
            dst.sendall(head + frame)
            on_frame(frame)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve_client(client, broker_addr, sink):
    try:
        upstream = socket.create_connection(broker_addr, timeout=30)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    pending = []          # (corr, key, version) in request order
    plock = threading.Lock()

    def on_request(frame):
        if len(frame) < 8:
            return
        key, version, corr = struct.unpack(">hhi", frame[:8])
        with plock:
            pending.append((corr, key, version))
        sink.request(frame)

    def on_response(frame):
        if len(frame) < 4:
            return
        (corr,) = struct.unpack(">i", frame[:4])
        with plock:
            # Requests without a response (Produce acks=0) are skipped over.
            while pending and pending[0][0] != corr:
                pending.pop(0)
            if not pending:
                return
            _, key, version = pending.pop(0)
        sink.response(key, version, frame)

    t = threading.Thread(target=relay, args=(upstream, client, on_response), daemon=True)
    t.start()
    relay(client, upstream, on_request)
    t.join(30)
    client.close()
    upstream.close()


def proxy(listen_port, broker_addr, sink, stop):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", listen_port))
    ls.listen(64)
    ls.settimeout(0.2)
    while not stop.is_set():
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        c.settimeout(None)
        threading.Thread(target=serve_client, args=(c, broker_addr, sink), daemon=True).start()
    ls.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run_clients(bootstrap, log):
    """Producers and consumers of several client libraries, through the proxy."""
    def sh(args, data=None):
        r = subprocess.run(args, input=data, capture_output=True, timeout=120)
        log.write("%s -> %d\n" % (" ".join(args), r.returncode))
        return r

    msgs = b"".join(b"key%d:value-%d\n" % (i, i) for i in range(20))
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        sh(["kcat", "-P", "-b", bootstrap, "-t", "cap-kcat", "-K:", "-z", codec,
            "-X", "enable.idempotence=%s" % ("true" if codec == "none" else "false")], msgs)
    sh(["kcat", "-C", "-b", bootstrap, "-t", "cap-kcat", "-o", "beginning", "-e", "-q"])
    sh(["kcat", "-L", "-b", bootstrap])
    sh(["kcat", "-Q", "-b", bootstrap, "-t", "cap-kcat:0:-1"])
    try:
        from confluent_kafka import Consumer, Producer, TopicPartition
        from confluent_kafka.admin import AdminClient, NewTopic
        p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                      "compression.type": "lz4"})
        for i in range(30):
            p.produce("cap-ck", key=b"k%d" % i, value=b"v" * (i * 7),
                      headers=[("h", b"x")] if i % 2 else None)
        p.flush(30)
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "cap",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        c.assign([TopicPartition("cap-ck", 0, 0)])
        for _ in range(10):
            if c.poll(1.0) is None:
                break
        c.close()
        a = AdminClient({"bootstrap.servers": bootstrap})
        fs = a.create_topics([NewTopic("cap-admin", 3, 1)], request_timeout=5)
        for f in fs.values():
            try:
                f.result(10)
            except Exception:
                pass
        from confluent_kafka.admin import ConfigResource, NewPartitions
        calls = [lambda: a.describe_configs([ConfigResource("topic", "cap-admin"),
                                             ConfigResource("broker", "0")]),
                 lambda: a.create_partitions([NewPartitions("cap-admin", 4)]),
                 lambda: a.delete_records([TopicPartition("cap-ck", 0, 5)]),
                 lambda: a.delete_topics(["cap-admin"])]
        for call in calls:
            try:
                for f in call().values():
                    f.result(10)
            except Exception as e:
                log.write("confluent admin: %s\n" % e)
        log.write("confluent-kafka done\n")
    except Exception as e:   # a library's error must not lose what was captured
        log.write("confluent-kafka: %s\n" % e)
    try:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTP
        for ver in (None, (0, 11), (1, 0), (2, 1)):
            kp = KafkaProducer(bootstrap_servers=bootstrap, acks=1, compression_type="gzip",
                               api_version=ver)
            for i in range(20):
                kp.send("cap-kp", key=b"k%d" % i, value=b"value-%d" % i)
            kp.flush(30)
            kp.close(10)
        kc = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                           consumer_timeout_ms=3000, auto_offset_reset="earliest")
        kc.assign([KTP("cap-kp", 0)])
        for _ in kc:
            pass
        kc.close()
        log.write("kafka-python done\n")
    except Exception as e:
        log.write("kafka-python: %s\n" % e)


def collect(args, sink):
    binary = args.sluice or os.environ.get("SLUICE_BIN")
    if not binary:
        sys.exit("collect: give --sluice or SLUICE_BIN")
    tmp = tempfile.mkdtemp(prefix="sluice-capture-")
    proc = None
    stop = threading.Event()
    try:
        bport, pport = free_port(), free_port()
        conf = os.path.join(tmp, "server.properties")
        with open(conf, "w") as f:
            f.write("listeners=PLAINTEXT://127.0.0.1:%d\n" % bport)
            f.write("advertised.listeners=PLAINTEXT://127.0.0.1:%d\n" % pport)
            f.write("log.dirs=%s\nnum.shards=2\noffsets.topic.replication.factor=1\n"
                    % os.path.join(tmp, "data"))
        logf = open(os.path.join(tmp, "broker.log"), "wb")
        proc = subprocess.Popen([binary, "--config", conf], stdout=logf, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", bport), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        t = threading.Thread(target=proxy, args=(pport, ("127.0.0.1", bport), sink, stop),
                             daemon=True)
        t.start()
        with open(os.path.join(tmp, "clients.log"), "w") as log:
            run_clients("127.0.0.1:%d" % pport, log)
        stop.set()
        t.join(5)
        time.sleep(0.5)   # let relays flush their last frames
        with open(os.path.join(tmp, "clients.log")) as log:
            sys.stderr.write(log.read())
    finally:
        stop.set()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("proxy", "collect"):
        p = sub.add_parser(name)
        p.add_argument("--out", required=True)
        p.add_argument("--tag", default="client")
        p.add_argument("--per-kind", type=int, default=3)
        p.add_argument("--max-bytes", type=int, default=8192)
        p.add_argument("--schemas", default=SCHEMAS)
        p.add_argument("--seeds", default=SEEDS)
        if name == "proxy":
            p.add_argument("--listen", type=int, required=True)
            p.add_argument("--broker", required=True)
        else:
            p.add_argument("--sluice")
    args = ap.parse_args()
    sink = Sink(args.out, args.tag, args.per_kind, args.max_bytes, load_schemas(args.schemas),
                load_selectors(args.seeds))
    if args.cmd == "proxy":
        host, port = args.broker.rsplit(":", 1)
        stop = threading.Event()
        try:
            proxy(args.listen, (host, int(port)), sink, stop)
        except KeyboardInterrupt:
            stop.set()
    else:
        collect(args, sink)
    print("%d seed(s) written to %s" % (sink.written, args.out))


if __name__ == "__main__":
    main()
