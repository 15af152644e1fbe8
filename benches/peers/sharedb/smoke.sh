#!/usr/bin/env bash
# Smoke test for the ShareDB peer: start it on a free port, talk to it with
# curl (and, for the streaming transports, with smoke-streams.mjs), stop it.
# Exercises every endpoint, two concurrent ops at one revision, resend
# dedupe and every error code the peer answers. Exits non-zero if any check
# failed.
#
#   bash smoke.sh        (runs `npm ci` first if node_modules/ is missing)
set -euo pipefail
cd "$(dirname "$0")"

[ -d node_modules ] || npm ci --no-audit --no-fund

TOKEN="smoke-$$"
LOG="$(mktemp)"
BIG="$(mktemp)"
passed=0
failed=0

# --port 0: the OS picks a free port, and the server prints the one it got.
node server.js --host 127.0.0.1 --port 0 --teacher-token "$TOKEN" >"$LOG" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  rm -f "$LOG" "$BIG"
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
    echo "not ok - $name: got $status ${body:0:300}"
    failed=$((failed + 1))
  fi
}

JSON=(-H 'Content-Type: application/json')
OPS="$BASE/api/doc/ops"

echo "# the document and its ops"
check "GET /api/doc: empty at rev 0" 200 '{"rev":0,"text":""}' "$BASE/api/doc"
check "POST an op at rev 0 is stored as rev 1" 201 '{"rev":1,"op":["hello"]}' \
  -X POST "${JSON[@]}" -d '{"client":"tab-a","seq":1,"rev":0,"op":["hello"]}' "$OPS"
check "POST keeps author, answers the op in normal form" 201 '{"rev":2,"op":[5," world"]}' \
  -X POST "${JSON[@]}" -d '{"client":"tab-a","seq":2,"rev":1,"op":[3,2," wor","ld"],"author":" ada "}' "$OPS"

echo "# two ops made at the same revision: both survive, the second transformed"
check "first op at rev 2 (insert at the start)" 201 '{"rev":3,"op":["Oh, ",11]}' \
  -X POST "${JSON[@]}" -d '{"client":"tab-b","seq":1,"rev":2,"op":["Oh, ",11]}' "$OPS"
check "second op at rev 2 (append) is shifted past the first" 201 '{"rev":4,"op":[15,"!"]}' \
  -X POST "${JSON[@]}" -d '{"client":"tab-c","seq":1,"rev":2,"op":[11,"!"]}' "$OPS"
check "both edits are in the text" 200 '{"rev":4,"text":"Oh, hello world!"}' "$BASE/api/doc"
# The same, really at once: two curls in flight together, both at rev 4.
curl -sS -o /dev/null -X POST "${JSON[@]}" -d '{"client":"tab-b","seq":2,"rev":4,"op":[4,"[b]",12]}' "$OPS" &
c1=$!
curl -sS -o /dev/null -X POST "${JSON[@]}" -d '{"client":"tab-c","seq":2,"rev":4,"op":[9,"[c]",7]}' "$OPS" &
c2=$!
wait "$c1" "$c2"
check "two ops sent at once at rev 4: both in the text" 200 '{"rev":6,"text":"Oh, [b]hello[c] world!"}' "$BASE/api/doc"

echo "# resending is safe"
check "same (client, seq) again: 200, the first answer" 200 '{"rev":4,"op":[15,"!"]}' \
  -X POST "${JSON[@]}" -d '{"client":"tab-c","seq":1,"rev":2,"op":[11,"!"]}' "$OPS"
check "same (client, seq) with another op and rev: still the first answer" 200 '{"rev":1,"op":["hello"]}' \
  -X POST "${JSON[@]}" -d '{"client":"tab-a","seq":1,"rev":5,"op":[22,"again"]}' "$OPS"
check "resends stored nothing" 200 '{"rev":6,"text":"Oh, [b]hello[c] world!"}' "$BASE/api/doc"

echo "# reading the log"
check "GET ops since=0: stored ops with client, seq, author, at" 200 '{"rev":2,"op":[5," world"],"client":"tab-a","seq":2,"author":"ada","at":' \
  "$OPS?since=0"
check "GET ops since=1&limit=1: one page and last_rev" 200 '],"last_rev":6}' \
  "$OPS?since=1&limit=1&transport=interval&seq=7"
check "GET ops answers Cache-Control: no-store" 200 'Cache-Control: no-store' -i "$OPS"
check "GET ops beyond the newest: empty, not an error" 200 '{"ops":[],"last_rev":6}' "$OPS?since=99&transport=timeout"
check "longpoll with nothing new times out with 204" 204 '' "$BASE/api/doc/longpoll?since=6&timeout=1"
check "longpoll with news answers at once" 200 '"last_rev":6}' "$BASE/api/doc/longpoll?since=5&timeout=1"

echo "# replacing the whole text"
check "PUT /api/doc/text: one op that deletes all and inserts" 201 '{"rev":7,"op":["fresh start\n",-22]}' \
  -X PUT "${JSON[@]}" -d '{"client":"tab-d","seq":1,"text":"fresh start\n"}' "$BASE/api/doc/text"
check "PUT resent: 200, the first answer" 200 '{"rev":7,"op":["fresh start\n",-22]}' \
  -X PUT "${JSON[@]}" -d '{"client":"tab-d","seq":1,"text":"other"}' "$BASE/api/doc/text"
check "code points, not UTF-16 units: 👩‍💻 is 3 characters" 201 '{"rev":8,"op":[12,"👩‍💻"]}' \
  -X POST "${JSON[@]}" -d '{"client":"tab-d","seq":2,"rev":7,"op":[12,"👩‍💻"]}' "$OPS"
check "… and deleting it takes -3" 201 '{"rev":9,"op":[12,-3]}' \
  -X POST "${JSON[@]}" -d '{"client":"tab-d","seq":3,"rev":8,"op":[12,-3]}' "$OPS"

echo "# errors"
check "409 rev_ahead" 409 '"code":"rev_ahead"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","seq":1,"rev":10,"op":[12,"x"]}' "$OPS"
check "422 bad_operation: counts do not add up to the length" 422 '"code":"bad_operation"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","seq":1,"rev":9,"op":[11,"x"]}' "$OPS"
check "422 bad_operation: a zero" 422 '"code":"bad_operation"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","seq":1,"rev":9,"op":[0,12]}' "$OPS"
check "422 bad_operation: 1.5" 422 '"code":"bad_operation"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","seq":1,"rev":9,"op":[1.5,10.5]}' "$OPS"
check "422 bad_operation: an empty insert" 422 '"code":"bad_operation"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","seq":1,"rev":9,"op":["",12]}' "$OPS"
check "422 bad_operation: not an array" 422 '"code":"bad_operation"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","seq":1,"rev":9,"op":{"insert":"x"}}' "$OPS"
check "422 bad_operation: a nested array" 422 '"code":"bad_operation"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","seq":1,"rev":9,"op":[[12]]}' "$OPS"
check "422 control_character: a carriage return" 422 '"code":"control_character"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","seq":1,"rev":9,"op":[12,"a\r\n"]}' "$OPS"
check "422 invalid_client" 422 '"code":"invalid_client"' \
  -X POST "${JSON[@]}" -d '{"client":"","seq":1,"rev":9,"op":[12]}' "$OPS"
check "422 invalid_seq" 422 '"code":"invalid_seq"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","seq":-1,"rev":9,"op":[12]}' "$OPS"
check "422 invalid_seq: beyond 2^53 - 1" 422 '"code":"invalid_seq"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","seq":9007199254740992,"rev":9,"op":[12]}' "$OPS"
check "422 invalid_rev" 422 '"code":"invalid_rev"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","seq":1,"rev":0.5,"op":[12]}' "$OPS"
check "422 invalid_author" 422 '"code":"invalid_author"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","seq":1,"rev":9,"op":[12],"author":"   "}' "$OPS"
check "400 bad_json: broken JSON" 400 '"code":"bad_json"' \
  -X POST "${JSON[@]}" -d '{"client":' "$OPS"
check "400 bad_json: a missing field" 400 '"code":"bad_json"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","rev":9,"op":[12]}' "$OPS"
check "400 bad_json: a lone surrogate" 400 '"code":"bad_json"' \
  -X POST "${JSON[@]}" -d '{"client":"tab-e","seq":1,"rev":9,"op":[12,"\ud800"]}' "$OPS"
check "415 not_json" 415 '"code":"not_json"' \
  -X POST -H 'Content-Type: text/plain' -d 'hello' "$OPS"
head -c 1100000 /dev/zero | tr '\0' 'x' | sed 's/^/{"client":"tab-e","seq":1,"text":"/; s/$/"}/' >"$BIG"
check "413 body_too_large (over 1 MiB)" 413 '"code":"body_too_large"' \
  -X PUT "${JSON[@]}" --data-binary "@$BIG" "$BASE/api/doc/text"
head -c 100001 /dev/zero | tr '\0' 'x' | sed 's/^/{"client":"tab-e","seq":1,"text":"/; s/$/"}/' >"$BIG"
check "422 document_too_long: a 100,001-character text" 422 '"code":"document_too_long"' \
  -X PUT "${JSON[@]}" --data-binary "@$BIG" "$BASE/api/doc/text"
head -c 99990 /dev/zero | tr '\0' 'x' | sed 's/^/{"client":"tab-e","seq":1,"rev":9,"op":[12,"/; s/$/"]}/' >"$BIG"
check "422 document_too_long: an op that grows it past 100,000" 422 '"code":"document_too_long"' \
  -X POST "${JSON[@]}" --data-binary "@$BIG" "$OPS"
check "400 bad_query: since=-1" 400 '"code":"bad_query"' "$OPS?since=-1"
check "400 bad_query: limit=501" 400 '"code":"bad_query"' "$OPS?limit=501"
check "400 bad_query: longpoll timeout=56" 400 '"code":"bad_query"' "$BASE/api/doc/longpoll?timeout=56"
check "400 bad_query: SSE Last-Event-ID not a number" 400 '"code":"bad_query"' -H 'Last-Event-ID: x' "$BASE/api/doc/events"
check "400 not_websocket: a plain GET on the WebSocket path" 400 '"code":"not_websocket"' "$BASE/api/doc/ws"
check "404 not_found" 404 '"code":"not_found"' "$BASE/api/nothing"
check "405 method_not_allowed" 405 '"code":"method_not_allowed"' -X DELETE "$OPS"
check "401 unauthorized: lab change without the token" 401 '"code":"unauthorized"' \
  -X PUT "${JSON[@]}" -d '{"latency_ms":5}' "$BASE/api/lab"
check "422 invalid_lab" 422 '"code":"invalid_lab"' \
  -X PUT "${JSON[@]}" -H "Authorization: Bearer $TOKEN" -d '{"latency_ms":-5}' "$BASE/api/lab"
check "refused ops took no revision" 200 '{"rev":9,"text":"fresh start\n"}' "$BASE/api/doc"

echo "# the rest"
check "GET /api/stats" 200 '"doc":{"rev":9,"chars":12,' "$BASE/api/stats"
check "GET /api/lab" 200 '{"latency_ms":0,"jitter_ms":0,"outage":false}' "$BASE/api/lab"
check "GET /healthz" 200 '{"status":"ok","rev":9}' "$BASE/healthz"

# WebSocket, SSE, long-poll wake-up, the lab.
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
