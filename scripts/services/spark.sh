#!/usr/bin/env bash
# A local Spark Connect server for the tests and for development, from PyPI's pyspark wheel
# (which carries Spark's jars, the Spark Connect server among them) and the machine's Java 17.
#   spark.sh start   installs pyspark into .test-services/spark-venv when missing, starts a
#                    Spark Connect server (local[2]) on a free loopback port from 15002 on,
#                    waits until it answers and prints its sc:// URL on stdout
#   spark.sh stop    stops the server that `start` started
#   spark.sh home    installs pyspark when missing and prints SPARK_HOME
# MEDLAKE_PYSPARK_VERSION picks another pyspark 4.x.
# With MEDLAKE_SPARK_S3_URL=http://KEY:SECRET@host:port (an S3-compatible server, as s3.sh
# prints), the server also reads and writes s3a:// locations there: Hadoop's S3A file system
# (hadoop-aws, of Spark's Hadoop version) and the AWS SDK modules it needs come from Maven
# Central into .test-services/ivy, once, and the server holds the credentials, as a cluster's
# own S3A settings would.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
services="$root/.test-services"
venv="$services/spark-venv"
record="$services/spark.pid"
version="${MEDLAKE_PYSPARK_VERSION:-4.0.1}"

log() { echo "spark: $*" >&2; }
# shellcheck source=common.sh
source "$root/scripts/services/common.sh"

spark_home() {
  "$venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'
}

ensure_installed() {
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import pyspark, sys; sys.exit(pyspark.__version__ != '$version')" 2>/dev/null; then
    return 0
  fi
  command -v java > /dev/null || { log "Java 17 or later is needed to run Spark"; exit 1; }
  log "installing pyspark $version from PyPI into $venv (about 450 MB, once)"
  mkdir -p "$services"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "pyspark==$version" >&2
}

# S3A for Spark 4.0 (Hadoop 3.4.1), with the AWS SDK's modules rather than its 550 MB bundle.
s3a_packages="org.apache.hadoop:hadoop-aws:3.4.1,software.amazon.awssdk:s3:2.57.8,software.amazon.awssdk:s3-transfer-manager:2.57.8,software.amazon.awssdk:apache-client:2.57.8,org.wildfly.openssl:wildfly-openssl:1.1.3.Final"

# Writes the S3A settings for the server at $1 (http://KEY:SECRET@host:port) into the Spark
# properties file $2, readable by this user only.
write_s3a_properties() {
  (umask 077 && python3 -c '
import sys
from urllib.parse import unquote, urlsplit
url = urlsplit(sys.argv[1])
settings = {
    "spark.hadoop.fs.s3a.endpoint": f"{url.scheme}://{url.hostname}:{url.port}",
    "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
    "spark.hadoop.fs.s3a.path.style.access": "true",
    "spark.hadoop.fs.s3a.connection.ssl.enabled": str(url.scheme == "https").lower(),
    "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    "spark.hadoop.fs.s3a.access.key": unquote(url.username),
    "spark.hadoop.fs.s3a.secret.key": unquote(url.password),
}
for name, value in settings.items():
    print(name, value)
' "$1" > "$2")
}

start() {
  ensure_installed
  local home port dir pid
  home="$(spark_home)"
  port="$(free_port 15002 15102)"
  dir="$(mktemp -d /tmp/medlake-spark.XXXXXX)"
  local s3a=()
  if [ -n "${MEDLAKE_SPARK_S3_URL:-}" ]; then
    write_s3a_properties "$MEDLAKE_SPARK_S3_URL" "$dir/s3a.properties"
    s3a=(--properties-file "$dir/s3a.properties" --packages "$s3a_packages"
      --exclude-packages software.amazon.awssdk:bundle --conf "spark.jars.ivy=$services/ivy")
  fi
  # Everything the server writes (logs, scratch, the warehouse) stays in its own folder.
  (
    cd "$dir"
    SPARK_HOME="$home" SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_DIRS="$dir/scratch" \
      nohup "$home/bin/spark-submit" \
      --class org.apache.spark.sql.connect.service.SparkConnectServer \
      --master 'local[2]' \
      --name medlake-test-spark \
      --conf spark.connect.grpc.binding.address=127.0.0.1 \
      --conf "spark.connect.grpc.binding.port=$port" \
      --conf spark.driver.host=127.0.0.1 \
      --conf spark.driver.bindAddress=127.0.0.1 \
      --conf spark.ui.enabled=false \
      --conf "spark.sql.warehouse.dir=$dir/warehouse" \
      --conf spark.sql.session.timeZone=UTC \
      --driver-java-options "-Dderby.system.home=$dir" \
      "${s3a[@]}" \
      spark-internal > "$dir/server.log" 2>&1 &
    echo $! > "$dir/pid"
  )
  pid="$(cat "$dir/pid")"
  mkdir -p "$services"
  echo "$pid $dir" > "$record"
  for _ in $(seq 1 180); do
    if grep -q "Spark Connect server started" "$dir/server.log" 2>/dev/null; then
      log "started Spark Connect $version on 127.0.0.1:$port (log: $dir/server.log)"
      echo "sc://127.0.0.1:$port"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$dir/server.log" >&2
      log "the Spark Connect server stopped while starting"
      exit 1
    fi
    sleep 1
  done
  tail -n 40 "$dir/server.log" >&2
  log "the Spark Connect server did not start within 180 seconds"
  stop
  exit 1
}

stop() {
  stop_recorded "$record"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  home) ensure_installed; spark_home ;;
  *) echo "usage: $0 start|stop|home" >&2; exit 2 ;;
esac
