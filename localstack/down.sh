#!/usr/bin/env bash
# Stops what localstack/up.sh started: moto servers (by their pidfiles under
# <repo>/target/localstack/) and the LocalStack container (docker compose down).
# With SAGEMETER_EMULATOR_PORT set, only the emulator on that port. Fine if nothing is
# running. Works from any cwd.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
state="$root/target/localstack"
only="${SAGEMETER_EMULATOR_PORT:-}"

say() { echo "down.sh: $*" >&2; }
stopped=0

shopt -s nullglob
for pidfile in "$state"/moto-*.pid; do
  port="${pidfile##*/moto-}"; port="${port%.pid}"
  [ -z "$only" ] || [ "$only" = "$port" ] || continue
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  # Only signal the process if it still is a moto server (pids get reused).
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    say "stopped moto server on port $port (pid $pid)"
    stopped=1
  fi
  rm -f "$pidfile"
done

composefile="$state/localstack.port"
if [ -f "$composefile" ] && { [ -z "$only" ] || [ "$only" = "$(cat "$composefile")" ]; }; then
  if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; then
    if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
    SAGEMETER_EMULATOR_PORT="$(cat "$composefile")" "${compose[@]}" -f "$here/docker-compose.yml" down
    say "stopped LocalStack"
    stopped=1
  else
    say "LocalStack was started but no Docker engine answers now; nothing to stop"
  fi
  rm -f "$composefile"
fi

[ "$stopped" = 1 ] || say "nothing was running"
exit 0
