"""Suppressed cells: null (never a string in a numeric column), with the row's `suppressed`
flag and the summary's rules attached."""

from __future__ import annotations

import csv

import pyarrow as pa

code = "2093-3"  # total cholesterol


def patients_by_sex(where_more=None):
    where = {"op": "code", "codes": [code]}
    if where_more:
        where = {"and": [where, where_more]}
    return {
        "dataset": "lab-results",
        "where": where,
        "groupBy": [{"column": "sex"}],
        "measures": [{"fn": "patients"}, {"fn": "count"}, {"fn": "mean", "column": "value"}],
    }


def value_leaving_out_a_few(rows):
    """A value from which on fewer than 11 (but some) patients of one sex have all their
    cholesterol results: leaving out the rows from that value on takes just those patients out
    of that group. Found with row access, so that the test does not hang on the demo data."""
    table = rows.query(
        {
            "dataset": "lab-results",
            "where": {"op": "code", "codes": [code]},
            "select": ["patient", "sex", "value"],
        }
    ).to_arrow()
    lowest: dict[tuple[str, str], float] = {}
    for patient, sex, value in zip(
        *(table.column(n).to_pylist() for n in ("patient", "sex", "value")), strict=True
    ):
        if value is not None:
            lowest[(patient, sex)] = min(value, lowest.get((patient, sex), value))
    for value in sorted(set(lowest.values()), reverse=True):
        for sex in ("F", "M"):
            left_out = sum(1 for (_, s), low in lowest.items() if s == sex and low >= value)
            if 0 < left_out < 11:
                return value
    raise AssertionError("no value leaves out between 1 and 10 patients")


def test_a_group_held_back_is_null_with_its_suppressed_flag_and_the_rules(second, rows, tmp_path):
    value = value_leaving_out_a_few(rows)
    first = second.query(patients_by_sex())
    assert not any(first.to_arrow().column("suppressed").to_pylist())
    # The same groups without a few patients: their difference would tell about those few.
    result = second.query(patients_by_sex({"column": "value", "op": "lt", "value": value}))

    summary = result.summary
    assert "release_ledger" in {rule.rule for rule in summary.rules}
    assert summary.suppressed_groups > 0
    table = result.to_arrow()
    assert table.schema.field("patients").type == pa.int64()
    assert table.schema.field("rows").type == pa.int64()
    held = [row for row in table.to_pylist() if row["suppressed"]]
    assert len(held) == summary.suppressed_groups
    for row in held:
        assert row["patients"] is None and row["rows"] is None and row["value_mean"] is None
    assert result.to_arrow(via="export").equals(table)

    frame = result.to_pandas()
    assert str(frame["patients"].dtype) == "Int64"
    assert frame.loc[frame["suppressed"], "patients"].isna().all()
    assert frame.attrs["medlake"]["summary"]["rules"] == summary.raw["rules"]
    # The summary's figures that were held back are None too.
    assert summary.total["patients"] is None

    with result.export("csv", tmp_path).open(newline="") as file:
        exported = list(csv.DictReader(file))
    for row in exported:
        if row["suppressed"] == "true":
            assert not row["patients"].isdigit()


def test_small_groups_are_left_out_and_small_histogram_bins_hidden(second):
    result = second.query(
        {
            "dataset": "lab-results",
            "where": {"op": "code", "codes": ["8302-2"]},
            "groupBy": [{"column": "age"}],
            "measures": [
                {"fn": "patients"},
                {"fn": "histogram", "column": "value", "binWidth": 5},
                {"fn": "percentile", "column": "value", "p": 0.5},
            ],
        }
    )
    summary = result.summary
    assert summary.withheld_groups > 0
    rules = {rule.rule: rule for rule in summary.rules}
    assert rules["small_cell"].affected == summary.withheld_groups
    assert rules["small_histogram_bin"].affected > 0

    table = result.to_arrow()
    assert all(count >= summary.threshold for count in table.column("patients").to_pylist())
    bins = [
        entry
        for histogram in table.column("value_histogram").to_pylist()
        for entry in histogram or []
    ]
    hidden = [entry for entry in bins if entry["suppressed"]]
    assert hidden and all(entry["count"] is None for entry in hidden)
    assert all(entry["count"] >= summary.threshold for entry in bins if not entry["suppressed"])
