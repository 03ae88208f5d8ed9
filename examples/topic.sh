#!/usr/bin/env bash
# Fan-out with curl: one submission, one job per endpoint of a topic, each retried on its own.
# Start the relay first with `make run`. Give your endpoints as arguments, or none to use the
# relay's own /healthz and /readyz (GET), so it runs stand-alone:
#   examples/topic.sh http://127.0.0.1:3000/hooks/billing http://127.0.0.1:3001/hooks/crm
set -euo pipefail
RELAY=${RELAY:-http://localhost:8080}
KEY=${FETCHRELAY_API_KEY:-relay_sk_dev}
auth=(-H "Authorization: Bearer $KEY")
method=POST
if [ $# -eq 0 ]; then
  set -- http://127.0.0.1:8080/healthz http://127.0.0.1:8080/readyz
  method=GET
fi
endpoints=""
n=0
for url in "$@"; do
  n=$((n + 1))
  endpoints+="${endpoints:+,}{\"url\":\"$url\",\"name\":\"endpoint-$n\"}"
done

echo "== the topic"
curl -s -X PUT "$RELAY/v1/topics/example-orders" "${auth[@]}" -H "Content-Type: application/json" \
  -d "{\"endpoints\":[$endpoints]}"
echo
echo "== one submission, one job per endpoint"
curl -s -X POST "$RELAY/v1/fetch" "${auth[@]}" -H "X-Fetch-Topic: example-orders" -H "X-Fetch-Method: $method" \
  -H "X-Idempotency-Key: order-1001" -H "Content-Type: application/json" -d '{"order":1001}'
echo
sleep 1
echo "== the topic's jobs"
curl -s "$RELAY/v1/jobs?topic=example-orders&limit=10" "${auth[@]}"
echo
