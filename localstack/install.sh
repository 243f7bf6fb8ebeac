#!/usr/bin/env bash
# Creates <repo>/.venv (if missing or broken) and installs localstack/requirements.txt
# into it, every version as localstack/constraints.txt pins it. Idempotent: a venv that already satisfies the requirements is left alone.
# Works from any cwd. Env: PYTHON (interpreter to build the venv with, default python3;
# 3.11 or newer, the oldest the pinned versions install on).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$root/.venv"
req="$here/requirements.txt"
# Every version in the venv, as tested: moto's own dependencies float otherwise.
cons="$here/constraints.txt"
stamp="$venv/.sagemeter-requirements"
py="${PYTHON:-python3}"

# Serialise concurrent installs (up.sh, test binaries, CI) where flock(1) exists.
if command -v flock >/dev/null 2>&1; then
  mkdir -p "$root/target/localstack"
  exec 9>"$root/target/localstack/install.flock"
  flock -w 900 9 || { echo "install.sh: waited 900s for another install to finish" >&2; exit 1; }
fi

# A usable venv: its python runs *as a venv* rooted here (a venv whose pyvenv.cfg is
# gone runs as the base interpreter, and pip would then install globally), with pip
# (one made where python3-venv was missing has python but no pip, for good).
venv_ok() {
  [ -x "$venv/bin/python" ] && [ -f "$venv/pyvenv.cfg" ] &&
    "$venv/bin/python" - "$venv" >/dev/null 2>&1 <<'PY' &&
import os, sys
assert sys.prefix != sys.base_prefix
assert os.path.realpath(sys.prefix) == os.path.realpath(sys.argv[1])
PY
    new_enough "$venv/bin/python" &&
    "$venv/bin/python" -m pip --version >/dev/null 2>&1
}

# The pins in constraints.txt come from Python 3.11; several (networkx, regex,
# rpds-py, joserfc, pycparser) publish nothing for older interpreters, where pip
# would stop with "No matching distribution" and no word of why.
new_enough() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }

# Fast path: venv healthy, requirements unchanged since the last successful install,
# and the server entry point still there.
if venv_ok && [ -f "$stamp" ] && cat "$req" "$cons" | cmp -s - "$stamp" \
   && [ -x "$venv/bin/moto_server" ] \
   && "$venv/bin/python" -c 'import moto, boto3' >/dev/null 2>&1; then
  exit 0
fi

if ! venv_ok; then
  command -v "$py" >/dev/null 2>&1 || { echo "install.sh: '$py' not found; set PYTHON=/path/to/python3" >&2; exit 1; }
  new_enough "$py" || {
    echo "install.sh: '$py' is Python $("$py" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo '?'); the emulator needs 3.11 or newer: set PYTHON=/path/to/python3.11" >&2
    exit 1
  }
  echo "install.sh: creating virtualenv at $venv" >&2
  rm -rf "$venv"
  if ! "$py" -m venv "$venv"; then
    # Half made (python, no pip): gone, so that the next run makes it again.
    rm -rf "$venv"
    echo "install.sh: '$py -m venv' failed; on Debian/Ubuntu install python3-venv (apt-get install python3-venv)" >&2
    exit 1
  fi
fi

echo "install.sh: installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv" >&2
"$venv/bin/python" -m pip install --require-virtualenv --quiet --disable-pip-version-check \
  -r "$req" -c "$cons"
[ -x "$venv/bin/moto_server" ] || { echo "install.sh: moto_server missing after install" >&2; exit 1; }
cat "$req" "$cons" > "$stamp"
