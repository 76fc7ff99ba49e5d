#!/usr/bin/env bash
# The browser for the end-to-end tests: Debian's Chromium, installed if missing.
#   chromium.sh path    installs Chromium if needed and prints the path of its executable
# Nothing runs in the background: each test starts and stops its own headless browser.
set -euo pipefail

log() { echo "chromium: $*" >&2; }

find_chromium() {
  local candidate
  for candidate in /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

case "${1:-}" in
  path)
    if ! find_chromium > /dev/null; then
      if [ "$(id -u)" != 0 ]; then
        log "Chromium is not installed. Install Debian's 'chromium' package (as root), then retry."
        exit 1
      fi
      log "installing Chromium from Debian's packages"
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
    fi
    find_chromium || { log "the chromium package installed no browser"; exit 1; }
    ;;
  *)
    echo "usage: $0 path" >&2
    exit 2
    ;;
esac
