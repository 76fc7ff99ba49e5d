"""The example notebook and the docs' three-line example run against the demo server."""

from __future__ import annotations

import os
import re

import nbformat
from conftest import client_root, repository_root
from nbclient import NotebookClient


def test_the_example_notebook_runs(url, monkeypatch, tmp_path):
    # As a researcher runs it against `npm start`: the address and token from the environment.
    monkeypatch.setenv("MEDLAKE_URL", url)
    monkeypatch.setenv("MEDLAKE_TOKEN", os.environ["MEDLAKE_TEST_TOKEN_NOTEBOOK"])
    notebook = nbformat.read(client_root / "examples" / "getting-started.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )
    assert "patients" in printed
    assert "where.and[1].value" in printed  # the bad spec's error
    assert sorted(path.suffix for path in tmp_path.iterdir()) == [".csv"]


def test_the_three_line_example_of_the_docs_runs(url):
    # Row access: the figures come as they are, whatever the notebook asked before.
    documented = (repository_root / "docs" / "python-client.md").read_text()
    example = re.search(
        r"<!-- three-line example -->\n+```python\n(.*?)\n```", documented, re.S
    ).group(1)
    assert len(example.splitlines()) == 3
    example = example.replace('"http://127.0.0.1:8080"', repr(url)).replace(
        '"mlk_…"', repr(os.environ["MEDLAKE_TEST_TOKEN_ROW"])
    )
    scope: dict = {}
    exec(example, scope)
    assert list(scope["df"].columns) == ["sex", "patients", "suppressed"]
    assert scope["df"]["patients"].sum() > 0
