"""Aggregate results: typed specs, key points, Arrow and pandas, pages and the export."""

from __future__ import annotations

import pyarrow as pa

import medlake
from medlake.client import spec_body
from medlake.spec import (
    AgeBands,
    Codes,
    Column,
    Count,
    Histogram,
    Order,
    Percentile,
    QuerySpec,
    Statistic,
)

cholesterol_by_sex_and_age = QuerySpec(
    dataset="lab-results",
    where=Codes(codes=["2093-3"]),
    groupBy=[Column(column="sex"), AgeBands(column="age", bands=[18, 45, 65])],
    measures=[
        Count(fn="patients"),
        Statistic(fn="mean", column="value"),
        Percentile(column="value", p=0.9),
        Histogram(column="value", binWidth=25),
    ],
    orderBy=[Order(by="sex"), Order(by="age_band")],
)


def test_a_typed_spec_is_sent_under_the_apis_names():
    body = spec_body(cholesterol_by_sex_and_age)
    assert body["where"] == {"op": "code", "codes": ["2093-3"]}
    assert body["groupBy"][1] == {"column": "age", "bands": [18, 45, 65]}
    assert body["measures"][2] == {"fn": "percentile", "column": "value", "p": 0.9}
    assert "releases" not in body and "limit" not in body


def test_an_aggregate_query_gives_key_points_and_a_typed_table(aggregate):
    result = aggregate.query(cholesterol_by_sex_and_age)
    assert result.status == "succeeded"
    summary = result.summary
    assert summary.kind == "aggregate" and summary.access_level == "aggregate"
    assert result.key_points and all(
        isinstance(point, str) and point for point in result.key_points
    )
    assert summary.threshold == 11
    assert "small_cell" in {rule.rule for rule in summary.rules}

    table = result.to_arrow()
    assert table.column_names == [
        "sex",
        "age_band",
        "patients",
        "value_mean",
        "value_p90",
        "value_histogram",
        "suppressed",
    ]
    assert table.num_rows == summary.row_count > 0
    assert table.schema.field("patients").type == pa.int64()
    assert table.schema.field("value_p90").type == pa.float64()
    assert table.schema.field("suppressed").type == pa.bool_()
    shown = [count for count in table.column("patients").to_pylist() if count is not None]
    assert shown and min(shown) >= summary.threshold

    frame = result.to_pandas()
    assert str(frame["patients"].dtype) == "Int64"
    assert str(frame["suppressed"].dtype) == "boolean"
    assert frame.attrs["medlake"]["query"] == result.id
    assert frame.attrs["medlake"]["summary"]["rules"] == summary.raw["rules"]
    assert list(frame["sex"]) == sorted(frame["sex"])


def test_pages_and_the_parquet_export_give_the_same_table(aggregate):
    result = aggregate.query(cholesterol_by_sex_and_age)
    from_pages = result.to_arrow(via="pages")
    from_export = result.to_arrow(via="export")
    assert from_pages.schema == from_export.schema
    assert from_pages.equals(from_export)


def test_a_query_can_be_found_again_by_its_id(aggregate):
    result = aggregate.query(cholesterol_by_sex_and_age)
    again = aggregate.result(result.id)
    assert again.summary == result.summary
    assert result.id in [query.id for query in aggregate.queries()]
    assert isinstance(again, medlake.Result)
