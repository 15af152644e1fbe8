#!/usr/bin/env bash
# Where does an idle connection's memory go? An experiment, not the shipped
# server.
#
#   bash benches/lean-actix.sh                      # ws, sse, longpoll; 10,000 each
#   KINDS="longpoll" CLIENTS=4000 bash benches/lean-actix.sh
#
# Builds the server twice — stock, and with benches/patches/
# actix-http-lean-buffers.patch applied to a copy of actix-http (HTTP/1
# buffers that start empty and are released when idle) — then opens the same
# idle connections against each and prints the server's memory per
# connection. The difference is what actix-http's two fixed 8 KiB buffers
# per connection cost; docs/benchmarks.md has the numbers and
# docs/decisions.md why the shipped server keeps stock actix-http.
#
# Nothing in the repository changes: the patched copy and its build live in
# target/lean/, and Cargo.lock is put back afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

KINDS=${KINDS:-ws sse longpoll}
CLIENTS=${CLIENTS:-10000}
LEAN=target/lean
PATCH=benches/patches/actix-http-lean-buffers.patch

# 10,000 clients need 10,000 sockets on each side.
ulimit -n "$(ulimit -Hn)"

# The actix-http this project builds against, as Cargo resolved it.
src=$(cargo metadata --format-version 1 --locked |
  python3 -c 'import json,sys,os
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "actix-http": print(os.path.dirname(p["manifest_path"]))')
version=$(basename "$src")
if ! grep -q "${version#actix-http-}" "$PATCH"; then
  echo "lean-actix: the patch was made for a different actix-http than $version" >&2
fi
rm -rf "$LEAN/actix-http"
mkdir -p "$LEAN"
cp -r "$src" "$LEAN/actix-http"
patch --quiet -p1 -d "$LEAN/actix-http" <"$PATCH"

cargo build --release --bin weebsockets --example loadgen
cp Cargo.lock "$LEAN/Cargo.lock.orig"
trap 'cp "$LEAN/Cargo.lock.orig" Cargo.lock' EXIT
cargo build --release --bin weebsockets --target-dir "$LEAN" \
  --config "patch.crates-io.actix-http.path=\"$LEAN/actix-http\""
cp "$LEAN/Cargo.lock.orig" Cargo.lock

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap 'stop_server; cp "$LEAN/Cargo.lock.orig" Cargo.lock' EXIT

# measure stock|lean KIND: one fresh server, CLIENTS idle connections.
measure() {
  local build=$1 kind=$2 bin db log url=""
  case $build in
    stock) bin=target/release/weebsockets ;;
    lean) bin=$LEAN/release/weebsockets ;;
  esac
  db="$LEAN/idle-$build-$kind.db"
  log="$LEAN/idle-$build-$kind.log"
  rm -f "$db" "$db-wal" "$db-shm"
  RUST_LOG=warn "$bin" --bind 127.0.0.1:0 --db "$db" --no-limits >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 150); do
    url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$log" | head -1 || true)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$log" >&2; exit 1; }
  printf '%-6s ' "$build"
  target/release/examples/loadgen --url "$url" --server-pid "$SERVER_PID" \
    idle-memory --kind "$kind" --clients "$CLIENTS" 2>/dev/null | grep 'per connection'
  stop_server
}

for kind in $KINDS; do
  measure stock "$kind"
  measure lean "$kind"
done
