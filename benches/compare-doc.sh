#!/usr/bin/env bash
# The shared document: Weebsockets against the ShareDB peer
# (benches/peers/sharedb/), in one run, on this machine, with the same load
# generator (`loadgen doc …`, examples/loadgen/doc.rs).
#
#   bash benches/compare-doc.sh                       # every target, medians of 3
#   RUNS=1 TARGETS="replay class-30" bash benches/compare-doc.sh
#   SERVERS=weebsockets TARGETS=idle-ws-chat bash benches/compare-doc.sh
#
# For each target and run, both servers are measured one after the other
# (the order alternates between runs). Every measurement gets a freshly
# started server: a new SQLite file for Weebsockets (durable, as shipped:
# --sync full), a new process for the peer (its log is in memory). At the
# end, `loadgen doc report` prints the median of each figure per server and
# the ratio Weebsockets / peer.
#
# `concurrent` (the two-person trace with 500 ms of lab latency) takes about 70
# minutes per server: it waits for the latency whenever one person needs
# what the other typed. It writes the stored operations out, and
# `concurrent-control` replays them on a fresh server by one editor (none
# transformed); benches/paced-edits.py compares paced edits with and without
# transformation (docs/benchmarks.md, "Two people at once").
#
# Results: $OUT/results.jsonl (one JSON line per measurement), $OUT/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
OUT=${OUT:-target/bench/compare-doc-$(date +%Y%m%d-%H%M%S)}
ALL_TARGETS="replay class-30 class-200 class-transports idle-ws idle-longpoll idle-ws-chat idle-longpoll-chat"
TARGETS=${TARGETS:-$ALL_TARGETS}
SERVERS=${SERVERS:-weebsockets sharedb}
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"

ulimit -n "$(ulimit -Hn)"
echo "compare-doc: results in $OUT" >&2

cargo build --release --bin weebsockets --example loadgen
npm ci --prefix benches/peers/sharedb --silent --no-audit --no-fund
LOADGEN=target/release/examples/loadgen

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT INT TERM

# Waits (at most 15 s) until the server's log shows its address; sets URL.
wait_for_url() {
  local log=$1
  for _ in $(seq 150); do
    URL=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$log" 2>/dev/null | head -1 || true)
    if [ -n "$URL" ]; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "compare-doc: server did not start; log:" >&2
  cat "$log" >&2
  return 1
}

# start_server weebsockets|sharedb N: on a free port (port 0, read back).
# rustcode grows past the contract's default 100,000 characters: both get
# a limit of 1,000,000.
start_server() {
  local which=$1 n=$2 log="$OUT/$1-$2.log"
  case $which in
    weebsockets)
      RUST_LOG=warn target/release/weebsockets --bind 127.0.0.1:0 \
        --db "$OUT/weebsockets-$n.db" --no-limits --teacher-token bench \
        --doc-max-chars 1000000 >"$log" 2>&1 &
      ;;
    sharedb)
      node benches/peers/sharedb/server.js --port 0 --teacher-token bench \
        --doc-max-chars 1000000 >"$log" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  wait_for_url "$log"
}

# The loadgen arguments of each target ($1), for server $2 and run $3.
args_of() {
  case $1 in
    replay) echo "doc replay --trace seph-blog1 --window 256" ;;
    class-30) echo "doc class --transports websocket --editors 30 --rate 10 --warmup-s 2 --duration-s 10" ;;
    class-200) echo "doc class --transports websocket --editors 200 --rate 1 --warmup-s 2 --duration-s 10" ;;
    class-transports) echo "doc class --editors 20 --rate 2 --interval-ms 1000 --warmup-s 2 --duration-s 10" ;;
    concurrent) echo "doc concurrent --lab-latency-ms 500 --dump-ops $OUT/ops-$2-$3.jsonl" ;;
    concurrent-control) echo "doc replay --ops $OUT/ops-$2-$3.jsonl --window 1 --watchers 1" ;;
    idle-ws) echo "doc idle --kind ws --topic doc --clients 2000" ;;
    idle-longpoll) echo "doc idle --kind longpoll --topic doc --clients 2000" ;;
    idle-ws-chat) echo "doc idle --kind ws --topic chat --clients 2000" ;;
    idle-longpoll-chat) echo "doc idle --kind longpoll --topic chat --clients 2000" ;;
    *) echo "compare-doc: unknown target $1" >&2; return 1 ;;
  esac
}

n=0
for run in $(seq "$RUNS"); do
  if [ $((run % 2)) -eq 1 ]; then order="$SERVERS"; else order=$(echo "$SERVERS" | awk '{for (i = NF; i > 0; i--) printf "%s ", $i}'); fi
  for target in $TARGETS; do
    for server in $order; do
      # The peer has no chat.
      case "$server/$target" in sharedb/*-chat) continue ;; esac
      # The control replays what this server's concurrent run stored.
      if [ "$target" = concurrent-control ] && [ ! -s "$OUT/ops-$server-$run.jsonl" ]; then continue; fi
      args=$(args_of "$target" "$server" "$run")
      n=$((n + 1))
      echo "compare-doc: run $run/$RUNS, $target, $server (load $(cut -d' ' -f1 /proc/loadavg))" >&2
      start_server "$server" "$n"
      # shellcheck disable=SC2086 # $args is a list of words on purpose.
      "$LOADGEN" --url "$URL" --server-pid "$SERVER_PID" --label "$server" \
        --teacher-token bench --json "$RESULTS" $args \
        >>"$OUT/loadgen-$server.log" 2>>"$OUT/progress.log" ||
        echo "compare-doc: $target against $server failed (see $OUT/progress.log)" >&2
      stop_server
      rm -f "$OUT/weebsockets-$n.db" "$OUT/weebsockets-$n.db-wal" "$OUT/weebsockets-$n.db-shm"
    done
  done
done

echo
echo "Medians of $RUNS run(s); the last column is weebsockets / sharedb."
"$LOADGEN" doc report "$RESULTS" --baseline sharedb
