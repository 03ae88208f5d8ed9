#!/usr/bin/env bash
# A cron schedule with curl: every 5 seconds, a GET of your endpoint (default: the relay's own
# /healthz, so it runs stand-alone). Start the relay first with `make run`.
#   examples/schedule.sh [http://127.0.0.1:3000/jobs/report]
# It creates the schedule "example-every-5s", waits for a few fires, lists the jobs they made,
# pauses, triggers one run by hand, and deletes the schedule (its jobs stay).
set -euo pipefail
RELAY=${RELAY:-http://localhost:8080}
KEY=${FETCHRELAY_API_KEY:-relay_sk_dev}
TARGET=${1:-http://127.0.0.1:8080/healthz}
auth=(-H "Authorization: Bearer $KEY")

echo "== create (6 fields: seconds first; CRON_TZ= picks a time zone)"
curl -s -X POST "$RELAY/v1/schedules" "${auth[@]}" \
  -H "X-Schedule-Id: example-every-5s" \
  -H "X-Cron: CRON_TZ=Europe/Berlin */5 * * * * *" \
  -H "X-Fetch-Url: $TARGET" -H "X-Fetch-Method: GET"
echo
sleep 11
echo "== the jobs it made (newest first)"
curl -s "$RELAY/v1/jobs?schedule=example-every-5s&limit=5" "${auth[@]}"
echo
echo "== pause, then one run by hand"
curl -s -X POST "$RELAY/v1/schedules/example-every-5s/pause" "${auth[@]}" >/dev/null
curl -s -X POST "$RELAY/v1/schedules/example-every-5s/trigger" "${auth[@]}"
echo
echo "== delete"
curl -s -X DELETE "$RELAY/v1/schedules/example-every-5s" "${auth[@]}" >/dev/null
curl -s "$RELAY/v1/schedules/example-every-5s" "${auth[@]}"
echo
