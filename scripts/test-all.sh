#!/usr/bin/env bash
# The full test suite: starts the services the tests need (PostgreSQL, an S3-compatible server,
# a Spark Connect server that reaches it; DuckDB's httpfs extension and Chromium are installed
# if missing), runs every test against them, and stops what it started, pass or fail.
# A PostgreSQL URL already in MEDLAKE_TEST_POSTGRES_URL is used as it is (it must allow
# CREATE DATABASE), and so are an S3 URL (http://KEY:SECRET@host:port) in MEDLAKE_TEST_S3_URL
# and a Spark Connect URL in MEDLAKE_TEST_SPARK_URL (whose Spark must reach that S3 server
# through S3A); nothing is started for them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=()
stop_services() {
  for service in "${started[@]}"; do bash "scripts/services/$service.sh" stop || true; done
}
trap stop_services EXIT

if [ -z "${MEDLAKE_TEST_POSTGRES_URL:-}" ]; then
  MEDLAKE_TEST_POSTGRES_URL="$(bash scripts/services/postgres.sh start)"
  started+=(postgres)
fi
export MEDLAKE_TEST_POSTGRES_URL
export MEDLAKE_TEST_REQUIRE_POSTGRES=1
if [ -z "${MEDLAKE_TEST_S3_URL:-}" ]; then
  MEDLAKE_TEST_S3_URL="$(bash scripts/services/s3.sh start)"
  started+=(s3)
fi
export MEDLAKE_TEST_S3_URL
# Spark reaches the same S3 server through S3A, with the credentials of its own.
if [ -z "${MEDLAKE_TEST_SPARK_URL:-}" ]; then
  MEDLAKE_TEST_SPARK_URL="$(MEDLAKE_SPARK_S3_URL="$MEDLAKE_TEST_S3_URL" bash scripts/services/spark.sh start)"
  started+=(spark)
fi
export MEDLAKE_TEST_SPARK_URL
# DuckDB's httpfs extension, for the DuckDB engine on S3: from PyPI into .test-services, once.
if [ -z "${MEDLAKE_TEST_DUCKDB_EXTENSIONS:-}" ]; then
  MEDLAKE_TEST_DUCKDB_EXTENSIONS="$(bash scripts/install-httpfs.sh "$PWD/.test-services/duckdb-extensions")"
fi
export MEDLAKE_TEST_DUCKDB_EXTENSIONS
if [ -z "${MEDLAKE_TEST_CHROMIUM:-}" ]; then
  MEDLAKE_TEST_CHROMIUM="$(bash scripts/services/chromium.sh path)"
fi
export MEDLAKE_TEST_CHROMIUM
export MEDLAKE_TEST_REQUIRE_CHROMIUM=1

report="$(mktemp)"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# One plain closing line, the same whatever the runner prints above it.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
' "$report" || true
rm -f "$report"
exit "$status"
