#!/bin/sh
# Starts one agentcron process (api, scheduler, worker, migrate) in place of this shell, so a
# platform's SIGTERM reaches it directly and its exit code is the process's own.
# Prefers the project's Node 24 (the `node` devDependency) to an older system node.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: apps/start.sh api|scheduler|worker|migrate}
node=node
[ -x "$root/node_modules/.bin/node" ] && node="$root/node_modules/.bin/node"
exec "$node" "$root/apps/$name/main.ts"
