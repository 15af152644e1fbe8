#!/usr/bin/env bash
# Weebsockets against the Express peer, in one run, on this machine, with the
# same load generator.
#
#   bash benches/compare.sh                 # every target, medians of 3 runs
#   RUNS=1 TARGETS="empty-polls posts" bash benches/compare.sh
#
# For each target and each run, both servers are measured one after the
# other (the order alternates between runs, so neither always goes first on a
# warm machine). Every measurement gets a freshly started server: a new
# SQLite file for Weebsockets (durable, as shipped: --sync full), a new
# process for the peer. At the end, `loadgen report` prints the median of
# each figure per server and the ratio Weebsockets / peer.
#
# The floor (examples/floor: one epoll loop, no runtime) is measured too, on
# the targets it speaks (WebSocket and SSE fan-out, idle WebSockets and
# streams), so the push path is compared with what the kernel alone costs.
# BEFORE=path/to/an/older/weebsockets adds a fourth server, "before", for
# before/after comparisons in the same alternating run:
#
#   BEFORE=/tmp/weebsockets-main TARGETS="fanout-ws-5000" bash benches/compare.sh
#
# Results: $OUT/results.jsonl (one JSON line per measurement), $OUT/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
OUT=${OUT:-target/bench/compare-$(date +%Y%m%d-%H%M%S)}
ALL_TARGETS="empty-polls posts browsers fanout-ws-1000 fanout-ws-5000 fanout-ws-10000 \
fanout-sse-1000 fanout-longpoll-1000 fanout-longpoll-10000 \
idle-ws idle-sse idle-longpoll"
TARGETS=${TARGETS:-$ALL_TARGETS}
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"

# 10,000 clients need 10,000 sockets on each side.
ulimit -n "$(ulimit -Hn)"
echo "compare: open files limit $(ulimit -n); results in $OUT" >&2

cargo build --release --bin weebsockets --example loadgen --example floor
npm ci --prefix benches/peers/express --silent --no-audit --no-fund
LOADGEN=target/release/examples/loadgen
if [ -n "${BEFORE:-}" ]; then DEFAULT_SERVERS="weebsockets before express floor"; else DEFAULT_SERVERS="weebsockets express floor"; fi
# SERVERS="weebsockets before" measures only those (a quicker A/B).
SERVERS=${SERVERS:-$DEFAULT_SERVERS}

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    # Bounded wait: graceful stop takes well under 5 s.
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT INT TERM

# Waits (at most 15 s) until the server's log shows its address; sets URL.
wait_for_url() {
  local log=$1 pattern=$2
  for _ in $(seq 150); do
    URL=$(grep -oE "$pattern" "$log" 2>/dev/null | head -1 || true)
    if [ -n "$URL" ]; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "compare: server did not start; log:" >&2
  cat "$log" >&2
  return 1
}

# start_server weebsockets|express N: on a free port (port 0, read back).
start_server() {
  local which=$1 n=$2 log="$OUT/$1-$2.log"
  case $which in
    weebsockets|before)
      local bin=target/release/weebsockets
      if [ "$which" = before ]; then bin=$BEFORE; fi
      RUST_LOG=warn "$bin" --bind 127.0.0.1:0 \
        --db "$OUT/weebsockets-$n.db" --no-limits --teacher-token bench \
        >"$log" 2>&1 &
      SERVER_PID=$!
      wait_for_url "$log" 'http://127\.0\.0\.1:[0-9]+'
      ;;
    express)
      node benches/peers/express/server.js --port 0 --teacher-token bench \
        >"$log" 2>&1 &
      SERVER_PID=$!
      wait_for_url "$log" 'http://127\.0\.0\.1:[0-9]+'
      ;;
    floor)
      target/release/examples/floor --port 0 >"$log" 2>&1 &
      SERVER_PID=$!
      wait_for_url "$log" 'http://127\.0\.0\.1:[0-9]+'
      ;;
  esac
}

# The loadgen arguments of each target.
args_of() {
  case $1 in
    empty-polls) echo "empty-polls --connections 64 --duration-s 10" ;;
    posts) echo "posts --connections 16 --duration-s 10" ;;
    browsers) echo "browsers --clients 100 --rate 2 --interval-ms 1000 --warmup-s 3 --duration-s 10" ;;
    fanout-ws-1000) echo "fanout --kind ws --clients 1000 --messages 20 --rate 10" ;;
    fanout-ws-5000) echo "fanout --kind ws --clients 5000 --messages 20 --rate 10" ;;
    fanout-ws-10000) echo "fanout --kind ws --clients 10000 --messages 20 --rate 10" ;;
    fanout-sse-1000) echo "fanout --kind sse --clients 1000 --messages 20 --rate 10" ;;
    fanout-longpoll-1000) echo "fanout --kind longpoll --clients 1000 --messages 20 --rate 10" ;;
    fanout-longpoll-10000) echo "fanout --kind longpoll --clients 10000 --messages 5 --rate 0.5" ;;
    idle-ws) echo "idle-memory --kind ws --clients 10000" ;;
    idle-sse) echo "idle-memory --kind sse --clients 10000" ;;
    idle-longpoll) echo "idle-memory --kind longpoll --clients 10000" ;;
    *) echo "compare: unknown target $1" >&2; return 1 ;;
  esac
}

# Whether the floor speaks what a target needs.
floor_speaks() {
  case $1 in fanout-ws-*|fanout-sse-*|idle-ws|idle-sse) return 0 ;; *) return 1 ;; esac
}

# The servers in run $1's order: rotated by one each run, so none always
# goes first on a warm (or busy) machine.
order_of() {
  local -a servers=($SERVERS)
  local k=$(( ($1 - 1) % ${#servers[@]} )) i
  for i in $(seq 0 $(( ${#servers[@]} - 1 ))); do
    echo -n "${servers[$(( (i + k) % ${#servers[@]} ))]} "
  done
}

n=0
for run in $(seq "$RUNS"); do
  order=$(order_of "$run")
  for target in $TARGETS; do
    args=$(args_of "$target")
    for server in $order; do
      if [ "$server" = floor ] && ! floor_speaks "$target"; then continue; fi
      n=$((n + 1))
      echo "compare: run $run/$RUNS, $target, $server" >&2
      start_server "$server" "$n"
      # shellcheck disable=SC2086 # $args is a list of words on purpose.
      "$LOADGEN" --url "$URL" --server-pid "$SERVER_PID" --label "$server" \
        --teacher-token bench --json "$RESULTS" $args \
        >>"$OUT/loadgen-$server.log" 2>>"$OUT/progress.log" ||
        echo "compare: $target against $server failed (see $OUT/progress.log)" >&2
      stop_server
      rm -f "$OUT/weebsockets-$n.db" "$OUT/weebsockets-$n.db-wal" "$OUT/weebsockets-$n.db-shm"
    done
  done
done

echo
echo "Medians of $RUNS run(s); the last columns are each server / the last one."
case " $SERVERS " in
  *" express "*) "$LOADGEN" report "$RESULTS" --baseline express ;;
  *) "$LOADGEN" report "$RESULTS" ;;
esac
echo
case " $SERVERS " in
  *" floor "*)
    echo "The same, against the floor (the rows it was measured on)."
    "$LOADGEN" report "$RESULTS" --baseline floor ;;
esac
