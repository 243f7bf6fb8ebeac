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

# Whether pid is a moto server (pids get reused): /proc where there is one (Linux),
# else ps (macOS and the BSDs have no /proc).
is_moto() {
  if [ -r "/proc/$1/cmdline" ]; then
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q moto_server
  else
    ps -p "$1" -o command= 2>/dev/null | grep -q moto_server
  fi
}

# Whether a Docker engine answers, within 10 s where timeout(1) exists (GNU; macOS
# has none without coreutils).
docker_answers() {
  command -v docker >/dev/null 2>&1 || return 1
  if command -v timeout >/dev/null 2>&1; then timeout 10 docker info >/dev/null 2>&1
  else docker info >/dev/null 2>&1; fi
}

shopt -s nullglob
for pidfile in "$state"/moto-*.pid; do
  port="${pidfile##*/moto-}"; port="${port%.pid}"
  [ -z "$only" ] || [ "$only" = "$port" ] || continue
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  # Only signal the process if it still is a moto server (pids get reused).
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && is_moto "$pid"; then
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
  if docker_answers; then
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
