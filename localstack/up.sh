#!/usr/bin/env bash
# Brings a local AWS up at http://127.0.0.1:${SAGEMETER_EMULATOR_PORT:-4566} and seeds it
# with the demo endpoints (localstack/seed.py). Works from any cwd; idempotent.
#
#   - LOCALSTACK_AUTH_TOKEN is set (LocalStack's SageMaker needs it) and a Docker
#     engine answers (`docker info`) -> LocalStack via docker-compose.yml;
#   - otherwise -> the moto server from <repo>/.venv (installed by install.sh), in the
#     background, pid + log under <repo>/target/localstack/ (moto-PORT.pid, moto-PORT.log).
# If the port already answers as moto or LocalStack, that emulator is reused and just
# seeded again. If something else holds the port, this exits non-zero and starts nothing.
#
# Env: SAGEMETER_EMULATOR_PORT (default 4566)
#      SAGEMETER_EMULATOR=auto|moto|localstack (default auto: LocalStack iff the token is set and Docker answers)
#      SAGEMETER_EMULATOR_WAIT seconds to wait for the emulator to answer (default 30 moto, 180 LocalStack)
#      LOCALSTACK_AUTH_TOKEN (LocalStack path only)
# Stop it with localstack/down.sh.
set -euo pipefail
# The emulator is on loopback: never through a proxy the caller set (Python's urllib
# and boto3 honour http_proxy, and the probe would take a proxy's answer for a
# foreign server).
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
port="${SAGEMETER_EMULATOR_PORT:-4566}"
mode="${SAGEMETER_EMULATOR:-auto}"
url="http://127.0.0.1:$port"
state="$root/target/localstack"
pidfile="$state/moto-$port.pid"
logfile="$state/moto-$port.log"
composefile="$state/localstack.port"
venv_py="$root/.venv/bin/python"

say() { echo "up.sh: $*" >&2; }
die() { say "$*"; exit 1; }
# Whether a Docker engine answers, within 10 s where timeout(1) exists (GNU; macOS
# has none without coreutils).
docker_answers() {
  command -v docker >/dev/null 2>&1 || return 1
  if command -v timeout >/dev/null 2>&1; then timeout 10 docker info >/dev/null 2>&1
  else docker info >/dev/null 2>&1; fi
}

case "$port" in ''|*[!0-9]*) die "SAGEMETER_EMULATOR_PORT must be a port number, got '$port'";; esac
command -v python3 >/dev/null 2>&1 || die "python3 is required"
case "$mode" in auto|moto|localstack) ;; *) die "SAGEMETER_EMULATOR must be auto, moto or localstack, got '$mode'";; esac

# Prints none | moto | localstack | other for what listens on 127.0.0.1:$1.
probe() {
  python3 - "$1" <<'PY'
import json, socket, sys, urllib.request
port = int(sys.argv[1])
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("127.0.0.1", port))
except OSError:
    print("none"); sys.exit(0)
finally:
    s.close()
def get(path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
            return r.status, json.loads(r.read() or b"null")
    except Exception:
        return 0, None
st, doc = get("/moto-api/data.json")
if st == 200 and isinstance(doc, dict):
    print("moto"); sys.exit(0)
st, doc = get("/_localstack/health")
if st == 200 and isinstance(doc, dict) and "services" in doc:
    print("localstack"); sys.exit(0)
print("other")
PY
}

# Seeded with the emulator's static credentials and region, never the user's own
# profile (SSO, a missing one) or region: the demo and the tests call us-east-1.
seed() {
  "$here/install.sh" &&
    env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN -u AWS_SECURITY_TOKEN \
      AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
      AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
      "$venv_py" "$here/seed.py" --endpoint-url "$url" --region us-east-1 --quiet
}

log_tail() { [ -f "$logfile" ] && { say "last lines of $logfile:"; tail -n 20 "$logfile" >&2; } || true; }

found="$(probe "$port")"
case "$found" in
  moto|localstack)
    say "$found already answers at $url; reusing it"
    seed
    exit 0;;
  other)
    die "port $port on 127.0.0.1 is taken by something that is neither moto nor LocalStack; free it or set SAGEMETER_EMULATOR_PORT to another port. Nothing was started.";;
esac

# Port is free. A pidfile left from a crashed run is stale now.
rm -f "$pidfile"

if [ "$mode" = auto ]; then
  # Without a token LocalStack cannot serve SageMaker: moto, even where Docker runs.
  if [ -n "${LOCALSTACK_AUTH_TOKEN:-}" ] && docker_answers; then
    mode=localstack
  else
    mode=moto
  fi
fi

mkdir -p "$state"

case "$mode" in
  localstack)
    [ -n "${LOCALSTACK_AUTH_TOKEN:-}" ] || die "LocalStack's SageMaker needs LOCALSTACK_AUTH_TOKEN; export it, or use the Docker-free path: SAGEMETER_EMULATOR=moto $0"
    docker_answers || die "no Docker engine answers (docker info failed); use SAGEMETER_EMULATOR=moto $0"
    if docker compose version >/dev/null 2>&1; then compose=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then compose=(docker-compose)
    else die "neither 'docker compose' nor 'docker-compose' is installed; use SAGEMETER_EMULATOR=moto $0"; fi
    export SAGEMETER_EMULATOR_PORT="$port"
    say "starting LocalStack (docker compose) on $url"
    "${compose[@]}" -f "$here/docker-compose.yml" up -d
    echo "$port" > "$composefile"
    wait_s="${SAGEMETER_EMULATOR_WAIT:-180}"
    ;;
  moto)
    "$here/install.sh"
    say "starting moto server on $url (log: $logfile)"
    # moto's server, one DynamoDB request at a time (see moto_server.py: atomic item updates).
    nohup "$root/.venv/bin/python" "$here/moto_server.py" -H 127.0.0.1 -p "$port" >"$logfile" 2>&1 </dev/null &
    echo $! > "$pidfile"
    wait_s="${SAGEMETER_EMULATOR_WAIT:-30}"
    ;;
esac

# Undo a half-start on any failure from here on.
started_ok=0
cleanup() { [ "$started_ok" = 1 ] || { say "stopping what was started"; SAGEMETER_EMULATOR_PORT="$port" "$here/down.sh" >/dev/null 2>&1 || true; }; }
trap cleanup EXIT

deadline=$(( $(date +%s) + wait_s ))
while :; do
  found="$(probe "$port")"
  [ "$found" = "$mode" ] && break
  if [ "$mode" = moto ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log_tail
    die "moto server exited before answering on $url"
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    log_tail
    die "$mode did not answer on $url within ${wait_s}s (probe saw: $found)"
  fi
  sleep 0.3
done

seed || { log_tail; die "seeding failed"; }
started_ok=1
say "local AWS is up at $url ($mode); stop it with localstack/down.sh"
