#!/usr/bin/env bash
# The FetchAPI example with curl: schedule a POST to your endpoint 2 s from now, then watch the
# job. Start the relay first with `make run` (the example config allows loopback targets).
#   examples/fetchapi.sh http://127.0.0.1:3000/jobs/send-welcome-email
# Without an argument it targets the relay's own /healthz with GET, so it runs stand-alone.
set -euo pipefail
RELAY=${RELAY:-http://localhost:8080}
KEY=${FETCHRELAY_API_KEY:-relay_sk_dev}
TARGET=${1:-http://127.0.0.1:8080/healthz}
METHOD=POST
[ $# -eq 0 ] && METHOD=GET

answer=$(curl -s -X POST "$RELAY/v1/fetch" \
  -H "Authorization: Bearer $KEY" \
  -H "X-Fetch-Url: $TARGET" \
  -H "X-Fetch-Method: $METHOD" \
  -H "X-Delay: 2s" \
  -H "Content-Type: application/json" \
  -d '{"userId":"user_456"}')
echo "$answer"
id=$(echo "$answer" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
sleep 3
curl -s "$RELAY/v1/jobs/$id" -H "Authorization: Bearer $KEY"
echo
