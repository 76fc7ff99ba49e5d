#!/usr/bin/env bash
# A local S3-compatible server for the tests and for development: S3Proxy from Maven Central
# on the machine's Java 17, storing objects on local disk and checking every request's AWS
# Signature V4 (with multipart uploads and presigned URLs), as S3 does.
#   s3.sh start   downloads S3Proxy into .test-services/s3proxy when missing (checked against
#                 Maven Central's SHA-1), starts it on a free loopback port from 9100 on with a
#                 fresh key pair, waits until it answers and prints
#                 http://ACCESS_KEY:SECRET@127.0.0.1:PORT on stdout
#   s3.sh stop    stops the server that `start` started and deletes its objects
# MEDLAKE_S3PROXY_VERSION picks another S3Proxy release.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
services="$root/.test-services"
record="$services/s3.pid"
version="${MEDLAKE_S3PROXY_VERSION:-4.1.0}"
jar="$services/s3proxy/s3proxy-$version.jar"
url="https://repo1.maven.org/maven2/org/gaul/s3proxy/$version/s3proxy-$version-jar-with-dependencies.jar"

log() { echo "s3: $*" >&2; }
# shellcheck source=common.sh
source "$root/scripts/services/common.sh"

ensure_installed() {
  [ -f "$jar" ] && return 0
  command -v java > /dev/null || { log "Java 17 or later is needed to run S3Proxy"; exit 1; }
  log "downloading S3Proxy $version from Maven Central (about 40 MB, once)"
  mkdir -p "$(dirname "$jar")"
  curl -fsSL --retry 3 -o "$jar.part" "$url"
  local expected actual
  expected="$(curl -fsSL --retry 3 "$url.sha1" | cut -c1-40)"
  actual="$(sha1sum "$jar.part" | cut -c1-40)"
  if [ "$expected" != "$actual" ]; then
    rm -f "$jar.part"
    log "the download does not match Maven Central's checksum"
    exit 1
  fi
  mv "$jar.part" "$jar"
}

start() {
  ensure_installed
  local port dir pid identity credential
  port="$(free_port 9100 9200)"
  dir="$(mktemp -d /tmp/medlake-s3.XXXXXX)"
  identity="medlake$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  credential="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
  mkdir -p "$dir/data"
  # CORS for any origin: the web app's browser PUTs upload parts straight to the bucket (an
  # S3 bucket needs a CORS rule for the app's origin, as docs/operations/s3.md shows).
  cat > "$dir/s3proxy.conf" << EOF
s3proxy.endpoint=http://127.0.0.1:$port
s3proxy.authorization=aws-v4
s3proxy.identity=$identity
s3proxy.credential=$credential
jclouds.provider=filesystem
jclouds.filesystem.basedir=$dir/data
s3proxy.cors-allow-all=true
EOF
  (
    cd "$dir"
    nohup java -jar "$jar" --properties "$dir/s3proxy.conf" > "$dir/server.log" 2>&1 &
    echo $! > "$dir/pid"
  )
  pid="$(cat "$dir/pid")"
  mkdir -p "$services"
  echo "$pid $dir" > "$record"
  for _ in $(seq 1 60); do
    # Any HTTP answer (an unsigned request is refused) means it is up.
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
      log "started S3Proxy $version on 127.0.0.1:$port (log: $dir/server.log)"
      echo "http://$identity:$credential@127.0.0.1:$port"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$dir/server.log" >&2
      log "S3Proxy stopped while starting"
      exit 1
    fi
    sleep 1
  done
  tail -n 40 "$dir/server.log" >&2
  log "S3Proxy did not start within 60 seconds"
  stop
  exit 1
}

stop() {
  stop_recorded "$record"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
