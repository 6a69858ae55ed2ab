#!/bin/sh
# RSS of an idle deployment as the Procfile starts it: api, scheduler and worker through
# apps/start.sh in the project's directory (so its agentcron.json graphs load), on DATABASE_URL (a
# migrated database), each process's VmRSS after IDLE_RSS_SECONDS (60). Usage:
#   DATABASE_URL=postgres://... bench/idle-rss.sh
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
: "${DATABASE_URL:?set DATABASE_URL to a migrated database}"
wait_s=${IDLE_RSS_SECONDS:-60}
PORT=${PORT:-18998} apps/start.sh api > /dev/null 2>&1 &
api=$!
apps/start.sh scheduler > /dev/null 2>&1 &
scheduler=$!
apps/start.sh worker > /dev/null 2>&1 &
worker=$!
sleep "$wait_s"
for p in "api $api" "scheduler $scheduler" "worker $worker"; do
  set -- $p
  echo "$1 rss_mb=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$2/status")"
done
kill -TERM $api $scheduler $worker
wait
