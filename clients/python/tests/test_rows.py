"""Row-level results larger than a page: read through the Parquet export, exported to files."""

from __future__ import annotations

import csv
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import medlake

every_row = {
    "dataset": "lab-results",
    "select": ["patient", "age", "sex", "collected_at", "code", "value", "hospital", "month"],
}


@pytest.fixture(scope="module")
def requests_seen(url):
    """A row-level client that notes the path of every request it makes."""
    seen: list[str] = []
    client = medlake.Client(
        url,
        os.environ["MEDLAKE_TEST_TOKEN_ROW"],
        progress=False,
        event_hooks={"request": [lambda request: seen.append(request.url.path)]},
    )
    yield client, seen
    client.close()


def test_a_result_larger_than_a_page_comes_through_the_parquet_export(requests_seen):
    client, seen = requests_seen
    result = client.query(every_row)
    assert result.summary.kind == "rows"
    assert result.summary.row_count > medlake.PAGE_SIZE

    seen.clear()
    table = result.to_arrow()
    assert any(path.startswith("/api/v1/downloads/") for path in seen)
    assert not any(path.endswith("/results") for path in seen)
    assert table.num_rows == result.summary.row_count
    assert table.column_names == every_row["select"]
    assert table.schema.field("age").type == pa.int16()
    assert table.schema.field("collected_at").type == pa.timestamp("us")
    assert set(table.column("hospital").to_pylist()) == {"h01", "h02"}

    # The same rows, in the same order, as the API's pages give them.
    assert result.to_arrow(via="pages").equals(table)
    # A second call does not fetch the result again.
    seen.clear()
    assert result.to_arrow() is table and seen == []


def test_a_small_result_is_read_from_one_page(requests_seen):
    client, seen = requests_seen
    result = client.query({**every_row, "limit": 50})
    seen.clear()
    assert result.to_pandas().shape == (50, len(every_row["select"]))
    assert [path for path in seen if "/downloads/" in path or path.endswith("/exports")] == []


def test_exports_are_written_to_files(rows, tmp_path):
    result = rows.query(every_row)
    written = result.export("csv", tmp_path)
    assert written.parent == tmp_path and written.suffix == ".csv"
    with written.open(newline="") as file:
        lines = list(csv.reader(file))
    assert lines[0] == every_row["select"]
    assert len(lines) == result.summary.row_count + 1

    parquet = result.export("parquet", tmp_path / "rows.parquet")
    assert pq.read_table(parquet).num_rows == result.summary.row_count
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [written.name, "rows.parquet"]
    )


def test_aggregate_access_gets_no_rows(aggregate):
    with pytest.raises(medlake.PermissionDeniedError) as refused:
        aggregate.query(every_row)
    assert refused.value.code == "rule_refused"
    assert refused.value.path == "select"
