#!/usr/bin/env python3
"""What transforming an edit costs the server, next to an edit that needs none.

    target/release/weebsockets --bind 127.0.0.1:8080 --db /tmp/paced.db --no-limits &
    python3 benches/paced-edits.py 8080 $!

`loadgen doc concurrent` (two people typing friendsforever with 500 ms of lab
latency) sends about three edits a second, each committed on its own; its
CPU per edit is that of a lone, paced commit, and cannot be compared with a
replay of the same edits back to back (warm caches, shared commits). This
script compares like with like: pairs of edits over `POST /api/doc/ops`,
three pairs a second, 150 pairs per round, in three kinds of round —

  * transformed: the second edit of each pair is made one revision ago, so
    the server transforms it past the first (an insert at the same place:
    the tie rule decides);
  * two clients: the same two clients, both edits at the newest revision;
  * untransformed: one client, both at the newest revision —

twice each, alternating. CPU is read from `/proc/<pid>/task/*/schedstat`
(nanoseconds on the CPU, exact, unlike the clock ticks of `/proc/<pid>/stat`)
for the document's writer thread and for the whole server.
"""

import glob
import http.client
import json
import sys
import time

PAIRS, RATE = 150, 3.0


def on_cpu_ns(task):
    with open(task + "/schedstat") as f:
        return int(f.read().split()[0])


def writer_ns(pid):
    for task in glob.glob(f"/proc/{pid}/task/*"):
        with open(task + "/comm") as f:
            if f.read().strip() == "doc-writer":
                return on_cpu_ns(task)
    raise SystemExit("no doc-writer thread: is this Weebsockets?")


def server_ns(pid):
    return sum(on_cpu_ns(t) for t in glob.glob(f"/proc/{pid}/task/*"))


class Api:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.seq = {}

    def doc(self):
        self.conn.request("GET", "/api/doc")
        return json.loads(self.conn.getresponse().read())

    def insert(self, client, rev, at, text):
        seq = self.seq.get(client, 0)
        self.seq[client] = seq + 1
        op = [text] if at == 0 else [at, text]
        body = json.dumps({"client": client, "seq": seq, "rev": rev, "op": op})
        self.conn.request("POST", "/api/doc/ops", body, {"content-type": "application/json"})
        answer = self.conn.getresponse()
        data = json.loads(answer.read())
        assert answer.status == 201, data


def pair(api, kind):
    doc = api.doc()
    rev, end = doc["rev"], len(doc["text"])
    api.insert("ada", rev, end, "x")
    if kind == "transformed":
        api.insert("bob", rev, end, "y")  # made before ada's: transformed
    elif kind == "two clients":
        api.insert("bob", rev + 1, end + 1, "y")
    else:
        api.insert("ada", rev + 1, end + 1, "x")


def round_of(api, pid, kind):
    w0, s0, t0 = writer_ns(pid), server_ns(pid), time.time()
    for i in range(PAIRS):
        pair(api, kind)
        time.sleep(max(0.0, t0 + (i + 1) / RATE - time.time()))
    edits = 2 * PAIRS
    return (writer_ns(pid) - w0) / 1e3 / edits, (server_ns(pid) - s0) / 1e3 / edits


def main():
    port, pid = int(sys.argv[1]), sys.argv[2]
    api = Api(port)
    for _ in range(2):
        for kind in ("transformed", "two clients", "untransformed"):
            writer, server = round_of(api, pid, kind)
            print(f"{kind:14} writer {writer:6.1f} µs/edit   whole server {server:6.1f} µs/edit")


if __name__ == "__main__":
    main()
