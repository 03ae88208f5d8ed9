#!/usr/bin/env bash
# A FIFO queue with curl: jobs of one queue run in submission order, `parallelism` at a time.
# Start the relay first with `make run`. Give your endpoint as the argument, or none to use the
# relay's own /healthz (GET), so it runs stand-alone:
#   examples/queue.sh http://127.0.0.1:3000/jobs/sync-customer
set -euo pipefail
RELAY=${RELAY:-http://localhost:8080}
KEY=${FETCHRELAY_API_KEY:-relay_sk_dev}
TARGET=${1:-http://127.0.0.1:8080/healthz}
METHOD=POST
[ $# -eq 0 ] && METHOD=GET
auth=(-H "Authorization: Bearer $KEY")

echo "== the queue: one job at a time"
curl -s -X PUT "$RELAY/v1/queues/example-customer-42" "${auth[@]}" -H "Content-Type: application/json" \
  -d '{"parallelism":1}'
echo
echo "== three jobs, in order"
for step in 1 2 3; do
  curl -s -X POST "$RELAY/v1/fetch" "${auth[@]}" -H "X-Queue: example-customer-42" \
    -H "X-Fetch-Url: $TARGET" -H "X-Fetch-Method: $METHOD" -H "Content-Type: application/json" \
    -d "{\"step\":$step}"
  echo
done
sleep 1
echo "== the queue now"
curl -s "$RELAY/v1/queues/example-customer-42" "${auth[@]}"
echo
echo "== its jobs (newest first)"
curl -s "$RELAY/v1/jobs?queue=example-customer-42&limit=3" "${auth[@]}"
echo
