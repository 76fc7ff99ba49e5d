#!/usr/bin/env bash
# The Python client's test environment (clients/python), from PyPI:
#   python-client-venv.sh   makes .test-services/python-client-venv when missing (or when
#                           clients/python/pyproject.toml or constraints.txt changed) with the
#                           client's dependencies and its test tools, then builds the client as
#                           a wheel and installs that into it, every time, so that the tests run
#                           what a researcher's `pip install` gets; prints the venv's python
# MEDLAKE_PYTHON picks the Python that makes the venv (3.10 or later; default python3).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
services="$root/.test-services"
venv="$services/python-client-venv"
client="$root/clients/python"
python="${MEDLAKE_PYTHON:-python3}"

log() { echo "python-client: $*" >&2; }

ensure_installed() {
  local wanted
  wanted="$(cat "$client/pyproject.toml" "$client/constraints.txt" | sha256sum | cut -d' ' -f1)"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements" 2> /dev/null)" = "$wanted" ]; then
    return 0
  fi
  command -v "$python" > /dev/null || { log "Python 3.10 or later is needed ($python not found)"; exit 1; }
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { log "the Python client needs Python 3.10 or later; $python is $("$python" --version)"; exit 1; }
  log "installing the Python client's dependencies and test tools from PyPI into $venv (once)"
  rm -rf "$venv"
  mkdir -p "$services"
  "$python" -m venv "$venv" >&2
  # The client's own dependencies and test extra, and hatchling to build its wheel offline.
  "$venv/bin/pip" install --quiet --disable-pip-version-check -c "$client/constraints.txt" \
    "$client[test]" hatchling >&2
  echo "$wanted" > "$venv/.requirements"
}

install_client() {
  local wheels
  wheels="$(mktemp -d)"
  trap 'rm -rf "$wheels"' RETURN
  "$venv/bin/pip" wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation \
    --wheel-dir "$wheels" "$client" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall \
    "$wheels"/medlake-*.whl >&2
}

ensure_installed
install_client
echo "$venv/bin/python"
