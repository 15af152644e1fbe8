#!/usr/bin/env bash
# User-space instructions per push delivery, counted by callgrind: the
# noise-free check of the push path's cost on a shared machine, where CPU
# seconds move with everybody else's builds.
#
#   bash benches/instructions.sh                        # this build, WebSocket
#   bash benches/instructions.sh target/release/weebsockets sse
#   bash benches/instructions.sh floor ws               # the floor
#
# The server runs under `valgrind --tool=callgrind` twice, with 500 clients
# of the kind: once with 1 message, once with 21. The difference is 20 × 500
# deliveries (and 20 posts); everything else — start, 500 handshakes, stop —
# cancels out. Prints the instructions per delivery, grouped by whose code
# they are in. Kernel work (the socket writes) is not counted: callgrind sees
# user space only. About 2 minutes. Needs valgrind and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-target/release/weebsockets}
KIND=${2:-ws}
CLIENTS=500
OUT=${OUT:-target/bench/instructions-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"
cargo build --release --bin weebsockets --example loadgen --example floor
if [ "$BIN" = floor ]; then BIN=target/release/examples/floor; fi

run() {
  local messages=$1 dir="$OUT/$1"
  mkdir -p "$dir"
  if [ "$BIN" = target/release/examples/floor ]; then
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" "$BIN" --port 0 >"$dir/log" 2>&1 &
  else
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" "$BIN" --bind 127.0.0.1:0 \
      --db "$dir/w.db" --no-limits --teacher-token bench --workers 2 >"$dir/log" 2>&1 &
  fi
  local pid=$! url=""
  for _ in $(seq 150); do
    url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$dir/log" 2>/dev/null | head -1 || true)
    [ -n "$url" ] && break
    sleep 0.2
  done
  timeout 300 target/release/examples/loadgen --url "$url" --server-pid "$pid" \
    fanout --kind "$KIND" --clients "$CLIENTS" --messages "$messages" --rate 10 \
    >"$dir/loadgen.out" 2>/dev/null || echo "instructions: the load generator failed" >&2
  kill -INT "$pid" 2>/dev/null || true
  # Bounded: the server stops gracefully within seconds; callgrind then writes.
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
run 21
run 1

python3 - "$OUT/21/cg.out" "$OUT/1/cg.out" $((20 * CLIENTS)) <<'EOF'
import collections, re, subprocess, sys

def costs(path):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    per = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*?) \[", line)
        if m:
            per[m.group(2)] += int(m.group(1).replace(",", ""))
    return per

more, less, deliveries = costs(sys.argv[1]), costs(sys.argv[2]), int(sys.argv[3])
diff = {f: (more[f] - less[f]) / deliveries for f in set(more) | set(less)}
groups = [
    ("watch/notify (tokio::sync)", r"tokio::sync::(notify|watch)|wait_for_change|closing|outage_started"),
    ("tokio: tasks, scheduler, coop, I/O readiness", r"tokio::runtime|tokio::task|coop|LocalKey|LocalSet|Registration|scheduled_io|RestoreOnPending|waker"),
    ("tokio: timers", r"tokio::time|Sleep|Interval|wheel"),
    ("actix: h1 dispatcher, payload, service", r"actix_http::h1|actix_http::body|actix_server|actix_web|actix_service|actix_codec|trace_timer"),
    ("ours: feed, log read, framing, stats", r"weebsockets|actix_http::ws|reusable_box|bytes::"),
    ("libc: malloc, free, memcpy, memset", r"malloc|free|memmove|memcpy|memset|unlink|_int_"),
]
total = sum(diff.values())
by_group = collections.Counter()
for function, cost in diff.items():
    group = next((g for g, pattern in groups if re.search(pattern, function)), "other")
    by_group[group] += cost
print(f"{total:,.0f} instructions per delivery (user space)")
for group, cost in by_group.most_common():
    print(f"  {cost:7,.0f}  {100 * cost / max(total, 1):3.0f}%  {group}")
print("largest functions:")
for function, cost in sorted(diff.items(), key=lambda kv: -kv[1])[:15]:
    print(f"  {cost:7,.0f}  {function[:110]}")
EOF
