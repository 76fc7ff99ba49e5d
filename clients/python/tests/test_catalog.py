"""The catalog, signing in, and the package as installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import client_root

import medlake


def test_datasets_come_with_your_access_level(aggregate, rows, large_dataset):
    levels = {dataset.id: dataset.access for dataset in aggregate.datasets()}
    assert levels == {"lab-results": "aggregate", large_dataset: "aggregate"}
    assert {dataset.id: dataset.access for dataset in rows.datasets()}["lab-results"] == "row"
    [demo] = [dataset for dataset in aggregate.datasets() if dataset.id == "lab-results"]
    assert demo.title == "Laboratory results"
    assert demo.data_use_terms


def test_the_dictionary_lists_columns_coverage_and_the_codes_searched_for(aggregate):
    everything = aggregate.dictionary("lab-results")
    cholesterol = aggregate.dictionary("lab-results", search="cholesterol")
    assert {"patient", "age", "sex", "code", "value", "collected_at"} <= {
        column.name for column in everything.columns
    }
    assert everything.hospitals == ["h01", "h02"]
    assert everything.months == ["2024-01", "2024-02", "2024-03"]
    assert everything.threshold == 11
    assert 0 < len(cholesterol.codes) < len(everything.codes)
    assert cholesterol.codes_matching == len(cholesterol.codes)
    assert all("cholesterol" in (code.label or "").lower() for code in cholesterol.codes)
    frame = cholesterol.to_pandas()
    assert list(frame.columns) == ["code", "label", "unit", "rows", "patients"]
    assert str(frame["patients"].dtype) == "Int64"


def test_the_address_and_token_may_come_from_the_environment(url, monkeypatch):
    monkeypatch.setenv("MEDLAKE_URL", url + "/")
    monkeypatch.setenv("MEDLAKE_TOKEN", os.environ["MEDLAKE_TEST_TOKEN_AGGREGATE"])
    with medlake.Client(progress=False) as client:
        assert client.url == url
        assert "lab-results" in [dataset.id for dataset in client.datasets()]
        assert os.environ["MEDLAKE_TOKEN"] not in repr(client)


def test_without_a_token_the_client_says_where_to_get_one(url, monkeypatch):
    monkeypatch.delenv("MEDLAKE_TOKEN", raising=False)
    with pytest.raises(medlake.MedlakeError, match="MEDLAKE_TOKEN"):
        medlake.Client(url)


def test_the_tests_run_the_installed_wheel_with_its_type_information():
    installed = Path(medlake.__file__).resolve().parent
    assert client_root not in installed.parents, "the tests must run the built wheel"
    assert (installed / "py.typed").is_file()
    pyproject = (client_root / "pyproject.toml").read_text()
    assert f'version = "{medlake.__version__}"' in pyproject
