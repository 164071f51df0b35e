#!/usr/bin/python3
"""test_zk_client.py — runs tests/zk_client_test (coordination/zk.c) against
a real 3-server ZooKeeper ensemble (zk_harness.py).

Protocol with the C program: it prints one line per check ("ok ..." /
"FAIL ..."); when it prints "KILL <port>" we kill -9 the server listening
on that client port and answer "OK" on its stdin. Its exit code is ours.
Skips (77) without java / the ZooKeeper jar or the built program.
"""
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zk_harness import ZkEnsemble, zk_available  # noqa: E402

TIMEOUT_S = 300


def main():
    why = zk_available()
    if why:
        print("skip:", why)
        return 77
    build = os.environ.get("SLUICE_BUILD", "")
    prog = os.path.join(build, "tests", "zk_client_test")
    if not os.path.exists(prog):
        print("skip: %s not built" % prog)
        return 77
    with ZkEnsemble(3) as ens:
        print("ensemble:", ens.connect_string(), ens.modes(), flush=True)
        p = subprocess.Popen([prog, ens.connect_string()], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, bufsize=1)
        timer = threading.Timer(TIMEOUT_S, p.kill)
        timer.start()
        killed = []
        try:
            for line in p.stdout:
                line = line.rstrip("\n")
                print(line, flush=True)
                if line.startswith("KILL "):
                    port = int(line.split()[1])
                    sid = ens.server_of_port(port)
                    if sid is None:
                        print("FAIL driver: no server on port %d" % port)
                        p.stdin.write("NO\n")
                    else:
                        ens.kill(sid)
                        killed.append(sid)
                        print("driver: killed server %d (port %d)" % (sid, port), flush=True)
                        p.stdin.write("OK\n")
                    p.stdin.flush()
            rc = p.wait()
        finally:
            timer.cancel()
            if p.poll() is None:
                p.kill()
                p.wait()
        if rc != 0:
            print("zk_client_test exited %d" % rc)
            return 1
        if len(killed) != 1:
            print("FAIL the program never asked for a server kill")
            return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
