#!/usr/bin/env bash
# Smoke test for the Express peer: start it on a free port, talk to it with
# curl (and, for the streaming transports, with smoke-streams.mjs), stop it.
# Exits non-zero on the first sign of trouble or if any check failed.
#
#   bash smoke.sh        (runs `npm ci` first if node_modules/ is missing)
set -euo pipefail
cd "$(dirname "$0")"

[ -d node_modules ] || npm ci --no-audit --no-fund

TOKEN="smoke-$$"
LOG="$(mktemp)"
passed=0
failed=0

# --port 0: the OS picks a free port, and the server prints the one it got.
node server.js --host 127.0.0.1 --port 0 --teacher-token "$TOKEN" >"$LOG" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  rm -f "$LOG"
}
trap cleanup EXIT

for _ in $(seq 100); do
  grep -q '^listening on ' "$LOG" && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.05
done
BASE="$(sed -n 's/^listening on //p' "$LOG")"
if [ -z "$BASE" ]; then
  echo "server did not start:" >&2
  cat "$LOG" >&2
  exit 1
fi
echo "# server at $BASE (pid $PID)"

# check NAME STATUS BODY_PATTERN CURL_ARGS...
# Runs curl, then compares the status code and greps the body (fixed string;
# an empty pattern means the body must be empty).
check() {
  local name="$1" want_status="$2" want_body="$3"
  shift 3
  local out status body
  out="$(curl -sS -w '\n%{http_code}' "$@")"
  status="${out##*$'\n'}"
  body="${out%$'\n'*}"
  if [ "$status" = "$want_status" ] &&
     { [ -n "$want_body" ] && grep -qF -- "$want_body" <<<"$body" || { [ -z "$want_body" ] && [ -z "$body" ]; }; }; then
    echo "ok - $name"
    passed=$((passed + 1))
  else
    echo "not ok - $name: got $status ${body:0:200}"
    failed=$((failed + 1))
  fi
}

JSON=(-H 'Content-Type: application/json')

check "POST /api/messages stores message 1" 201 '"id":1,"author":"ada","text":"hello","sent_at":' \
  -X POST "${JSON[@]}" -d '{"author":" ada ","text":"hello"}' "$BASE/api/messages"
check "POST keeps via" 201 '"id":2,"author":"bob","text":"hi","sent_at":' \
  -X POST "${JSON[@]}" -d '{"author":"bob","text":"hi","via":"timeout"}' "$BASE/api/messages"
check "GET /api/messages reads them back" 200 '"text":"hello","sent_at":' \
  "$BASE/api/messages?since=0"
check "GET since=1 limit=1 is one page with last_id" 200 '],"last_id":2}' \
  "$BASE/api/messages?since=1&limit=1&transport=interval&seq=7"
check "GET answers Cache-Control: no-store" 200 'Cache-Control: no-store' \
  -i "$BASE/api/messages"
check "longpoll with nothing new times out with 204" 204 '' \
  "$BASE/api/longpoll?since=2&timeout=1"
check "longpoll with news answers at once" 200 '"last_id":2' \
  "$BASE/api/longpoll?since=1&timeout=1"
check "422 for an empty author" 422 '"code":"invalid_field"' \
  -X POST "${JSON[@]}" -d '{"author":"   ","text":"x"}' "$BASE/api/messages"
check "422 for a 2001-character text" 422 '"error":"' \
  -X POST "${JSON[@]}" -d "{\"author\":\"a\",\"text\":\"$(printf 'x%.0s' $(seq 2001))\"}" "$BASE/api/messages"
check "415 for a body that is not JSON" 415 '"code":"unsupported_media_type"' \
  -X POST -H 'Content-Type: text/plain' -d 'hello' "$BASE/api/messages"
check "400 for broken JSON" 400 '"code":"invalid_json"' \
  -X POST "${JSON[@]}" -d '{"author":' "$BASE/api/messages"
check "400 for a bad since" 400 '"code":"invalid_query"' \
  "$BASE/api/messages?since=-1"
check "rejected messages took no id" 200 '"last_id":2}' \
  "$BASE/api/messages?since=2"
check "GET /api/stats" 200 '"transports":' "$BASE/api/stats"
check "GET /healthz" 200 '"status":"ok"' "$BASE/healthz"

# WebSocket, SSE, long-poll wake-up and the lab's outage.
streams_rc=0
streams="$(node smoke-streams.mjs "$BASE" "$TOKEN" 2>&1)" || streams_rc=$?
echo "$streams"
passed=$((passed + $(grep -c '^ok - ' <<<"$streams" || true)))
failed=$((failed + $(grep -c '^not ok - ' <<<"$streams" || true)))
if [ "$streams_rc" -ne 0 ] && ! grep -q '^not ok - ' <<<"$streams"; then
  echo "not ok - smoke-streams.mjs stopped with exit code $streams_rc"
  failed=$((failed + 1))
fi

# A clean stop: SIGTERM, and the process must exit 0 on its own.
kill -TERM "$PID"
if wait "$PID"; then
  echo "ok - SIGTERM stops the server cleanly"
  passed=$((passed + 1))
else
  echo "not ok - server exited with $? after SIGTERM"
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
