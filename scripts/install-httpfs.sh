#!/usr/bin/env bash
# Installs DuckDB's httpfs extension, which lets the DuckDB engine read and write a lake on S3
# (MEDLAKE_STORAGE=s3). The npm build of DuckDB does not carry it, and DuckDB's own INSTALL
# fetches it from extensions.duckdb.org, which locked-down servers cannot reach; PyPI carries
# the same signed binary as the wheel duckdb-extension-httpfs. DuckDB checks the extension's
# signature when medlake loads it, so a binary that is not DuckDB's own is refused.
#   install-httpfs.sh [DIRECTORY]
# installs into DIRECTORY (default: MEDLAKE_DUCKDB_EXTENSIONS, else DuckDB's own
# ~/.duckdb/extensions), under the version and platform folders DuckDB looks in, and prints
# the directory. Point MEDLAKE_DUCKDB_EXTENSIONS at it when it is not DuckDB's default.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
directory="${1:-${MEDLAKE_DUCKDB_EXTENSIONS:-$HOME/.duckdb/extensions}}"

log() { echo "httpfs: $*" >&2; }

# The extension must match the DuckDB build medlake runs, to the patch version and platform.
read -r version platform < <(
  cd "$root/server" && node --input-type=module -e '
    import { DuckDBInstance } from "@duckdb/node-api";
    const connection = await (await DuckDBInstance.create(":memory:")).connect();
    const reader = await connection.runAndReadAll("SELECT version(), (SELECT platform FROM pragma_platform())");
    console.log(reader.getRows()[0].join(" "));
  '
)
target="$directory/$version/$platform/httpfs.duckdb_extension"
if [ -f "$target" ]; then
  echo "$directory"
  exit 0
fi

log "downloading httpfs for DuckDB $version ($platform) from PyPI"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
  --dest "$scratch" "duckdb-extension-httpfs==${version#v}" >&2
python3 - "$scratch" "$version" "$target" << 'EOF'
import glob, os, sys, zipfile
scratch, version, target = sys.argv[1:]
[wheel] = glob.glob(os.path.join(scratch, "*.whl"))
with zipfile.ZipFile(wheel) as archive:
    member = f"duckdb_extension_httpfs/extensions/{version}/httpfs.duckdb_extension"
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with archive.open(member) as source, open(target + ".part", "wb") as out:
        out.write(source.read())
os.replace(target + ".part", target)
EOF
log "installed $target"
echo "$directory"
