#!/bin/sh
# Starts one agentcron process (api, scheduler, worker, migrate) in place of this shell, so a
# platform's SIGTERM reaches it directly and its exit code is the process's own.
# Prefers the project's Node 24 (the `node` devDependency) to an older system node; without it
# (a production install on a platform whose Node is older), says so in one line and exits 1.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: apps/start.sh api|scheduler|worker|migrate}
node=node
[ -x "$root/node_modules/.bin/node" ] && node="$root/node_modules/.bin/node"
if ! "$node" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)' 2>/dev/null; then
  echo "agentcron: needs Node.js 24 or newer to run its TypeScript sources (found $("$node" --version 2>/dev/null || echo none));" \
    "use a Node 24 runtime, or install the dev dependencies (npm ci), which bring one" >&2
  exit 1
fi
# The api and the scheduler run no agents: a young generation of at most 2 x 8 MB (V8's default
# grows it to 2 x 32 MB on a machine with much memory, pages a busy process then keeps) holds
# their RSS down (docs/performance.md, Memory). NODE_OPTIONS set by the operator comes after, so
# it wins. The worker keeps V8's default: its young generation is part of its CPU per run.
# MALLOC_ARENA_MAX=2: glibc's per-thread malloc arenas (V8's compiler threads) kept 4-7 MB more of
# the api's and the scheduler's RSS after an hour (docs/performance.md, Memory); an operator's own wins.
case $name in
  api | scheduler)
    export NODE_OPTIONS="--max-semi-space-size=8${NODE_OPTIONS:+ $NODE_OPTIONS}"
    export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
    ;;
esac
exec "$node" "$root/apps/$name/main.ts"
