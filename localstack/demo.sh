#!/usr/bin/env bash
# The whole local demo in one command: start (or reuse) the local AWS emulator, seed
# it, run examples/quickstart.rs against it, and stop the emulator again (only if this
# script started it). Works from any cwd. Arguments go to the quickstart (calls per
# endpoint, default 5).
#
# `demo.sh --account` shows the account view instead: a few calls written to a ledger,
# then `sagemeter endpoints` (every endpoint's burn, invocations from CloudWatch, the
# idle one) and `sagemeter reconcile` (that ledger against the seeded Cost Explorer bill
# of yesterday and today). Needs the `cli` and `account` features (built here).
#
# Env: SAGEMETER_EMULATOR_PORT (default 4566), SAGEMETER_EMULATOR (auto: LocalStack when
#      LOCALSTACK_AUTH_TOKEN is set and Docker answers, else moto; moto; localstack),
#      AWS_ENDPOINT_URL_PRICING (default: the emulator, which has no Price List API, so
#      prices come from the bundled snapshot; see localstack/README.md).
set -euo pipefail
# The emulator is on loopback: never through a proxy the caller set (Python's urllib
# and boto3 honour http_proxy, and the probe would take a proxy's answer for a
# foreign server).
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
port="${SAGEMETER_EMULATOR_PORT:-4566}"
case "$port" in ''|*[!0-9]*) echo "demo.sh: SAGEMETER_EMULATOR_PORT must be a port number, got '$port'" >&2; exit 1;; esac

command -v cargo >/dev/null 2>&1 || { echo "demo.sh: cargo is required (install Rust from rustup)" >&2; exit 1; }

# Did something already listen there? Then up.sh reuses it (or refuses a foreign
# server) and this script leaves it running afterwards.
already_running=0
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then already_running=1; fi

stop() {
  if [ "$already_running" = 0 ]; then
    SAGEMETER_EMULATOR_PORT="$port" bash "$here/down.sh" || true
  fi
}
trap stop EXIT

SAGEMETER_EMULATOR_PORT="$port" bash "$here/up.sh"

# Static test credentials for the emulator; nothing from a real profile.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_DEFAULT_PROFILE
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

cd "$root"
# SAGEMETER_DEMO_CARGO_ARGS (e.g. --all-features) builds the quickstart with the same
# features as an earlier build, so that the AWS SDK crates are not compiled again.
if [ "${1:-}" = "--account" ]; then
  ledger_dir="$(mktemp -d)"
  trap 'rm -rf "$ledger_dir"; stop' EXIT
  # SAGEMETER_DEMO_BIN: a sagemeter binary built already (CI passes the one its test
  # build made; `cargo run --bin` would build the AWS SDK crates again, since a binary
  # alone does not unify the dev-dependencies' features as the test build does).
  sagemeter() {
    if [ -n "${SAGEMETER_DEMO_BIN:-}" ]; then
      "$SAGEMETER_DEMO_BIN" "$@"
      return
    fi
    # shellcheck disable=SC2086
    cargo run --quiet ${SAGEMETER_DEMO_CARGO_ARGS:-} --features cli,account --bin sagemeter -- "$@"
  }
  # The emulator has no Price List API: prices come from the bundled snapshot (the
  # PRICES column says so), and the library's WARN for each failed look-up is noise here.
  export RUST_LOG="${RUST_LOG:-error}"
  sagemeter invoke demo-realtime --body '{"inputs":"hello"}' -n 5 --ledger "$ledger_dir/calls.jsonl" >/dev/null
  echo "\$ sagemeter endpoints"
  sagemeter endpoints
  since="$(python3 -c 'import datetime as d; print(d.datetime.now(d.timezone.utc).date() - d.timedelta(days=1))')"
  until="$(python3 -c 'import datetime as d; print(d.datetime.now(d.timezone.utc).date() + d.timedelta(days=1))')"
  echo
  echo "\$ sagemeter reconcile calls.jsonl --since $since --until $until"
  sagemeter reconcile "$ledger_dir/calls.jsonl" --since "$since" --until "$until"
  exit 0
fi

# shellcheck disable=SC2086
cargo run --quiet ${SAGEMETER_DEMO_CARGO_ARGS:-} --example quickstart -- "$@"
