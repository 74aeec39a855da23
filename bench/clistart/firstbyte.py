#!/usr/bin/env python3
"""How long `gantry rollback` takes from exec to its first byte to a server.

A listener on a unix socket stands in for the server: it times each run of
`BIN rollback test --app hello --server unix://SOCKET` from the exec to the
first bytes of its request, then hangs up (the CLI exits with an error);
`BIN version` runs in the same loop, timed from exec to exit. It prints the
fastest and the median of each. See bench/README.md, "CLI start".

    python3 bench/clistart/firstbyte.py BIN [RUNS]
"""
import os
import socket
import subprocess
import sys
import tempfile
import time


def main():
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gantry.sock")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen(4)
        first, version = [], []
        for _ in range(runs):
            begin = time.perf_counter()
            cli = subprocess.Popen([binary, "rollback", "test", "--app", "hello", "--server", "unix://" + path],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            conn, _ = srv.accept()
            conn.recv(4096)
            first.append(time.perf_counter() - begin)
            conn.close()
            cli.wait()
            begin = time.perf_counter()
            subprocess.run([binary, "version"], stdout=subprocess.DEVNULL, check=True)
            version.append(time.perf_counter() - begin)
    for name, xs in (("rollback, exec to first byte", first), ("version, exec to exit", version)):
        xs.sort()
        print("%-30s fastest %.2f ms, median %.2f ms" % (name, xs[0] * 1e3, xs[len(xs) // 2] * 1e3))


if __name__ == "__main__":
    main()
