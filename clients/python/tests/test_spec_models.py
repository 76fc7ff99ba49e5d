"""The typed spec models are generated from the server's own JSON Schema, and kept in sync."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

from conftest import client_root, repository_root

import medlake.spec
from medlake.client import spec_body

schema_file = client_root / "codegen" / "query-spec.schema.json"
models_file = client_root / "src" / "medlake" / "spec.py"
regenerate = (
    "npx medlake query --schema > clients/python/codegen/query-spec.schema.json && "
    "python clients/python/codegen/generate.py (in a venv with the client's [test] extra)"
)


def server_schema():
    command = shlex.split(os.environ["MEDLAKE_TEST_CLI"]) + ["query", "--schema"]
    printed = subprocess.run(
        command, capture_output=True, text=True, check=True, cwd=repository_root
    )
    return json.loads(printed.stdout)


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "generate", client_root / "codegen" / "generate.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_schema_is_the_one_the_server_prints():
    assert json.loads(schema_file.read_text()) == server_schema(), f"out of date: {regenerate}"


def test_the_committed_models_are_generated_from_it(tmp_path):
    generated = load_generator().generate(server_schema())
    assert generated == models_file.read_text(), f"out of date: {regenerate}"
    # And the wheel carries them.
    assert Path(medlake.spec.__file__).read_text() == generated


def test_the_models_take_the_documented_example_as_the_server_does(rows):
    documented = (repository_root / "docs" / "query-spec.md").read_text()
    example = json.loads(re.search(r"```json\n(.*?)\n```", documented, re.S).group(1))
    model = medlake.spec.QuerySpec.model_validate(example)
    # The server normalises a spec before hashing it: the same hash means the same query.
    assert rows.query(spec_body(model)).job["specSha256"] == rows.query(example).job["specSha256"]
