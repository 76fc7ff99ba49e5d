"""One Arrow shape for a result, whether it came as JSON pages or as the Parquet export.

A suppressed figure is null, never the text the API shows for it ("suppressed"), so that a
numeric column stays numeric; the `suppressed` column of an aggregate result is True on a row
whose figures the server held back. Histogram bins are {bin, count, suppressed}, with a null
count where hidden. The result's summary (rules, threshold, key points) rides along in the
schema's metadata under `medlake.summary`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

histogram_type = pa.list_(
    pa.struct([("bin", pa.float64()), ("count", pa.int64()), ("suppressed", pa.bool_())])
)

# The result column types the server names (summary.columns[].type), as Arrow types. Integer
# columns are int64 whatever their width in the result file, except the smallints of the lake
# (age, birth_year), which stay int16 both ways.
arrow_types: dict[str, pa.DataType] = {
    "varchar": pa.string(),
    "integer": pa.int64(),
    "smallint": pa.int16(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "histogram": histogram_type,
}
_numeric = {"integer", "smallint", "bigint", "double"}


def column_names(columns: Sequence[dict[str, Any]], kind: str) -> list[str]:
    """The columns of a result table, in order: the result's, then `suppressed` for aggregates."""
    names = [column["name"] for column in columns]
    return [*names, "suppressed"] if kind == "aggregate" else names


def _cell(value: Any, type_name: str) -> Any:
    if type_name in _numeric and isinstance(value, str):
        return None  # "suppressed" (or "<N" from an older server): no figure
    if type_name == "histogram" and isinstance(value, list):
        return [
            {
                "bin": entry.get("bin"),
                "count": entry.get("count") if not isinstance(entry.get("count"), str) else None,
                "suppressed": isinstance(entry.get("count"), str),
            }
            for entry in value
        ]
    if type_name == "timestamp" and isinstance(value, str) and value.endswith("Z"):
        return value[:-1]  # the lake's timestamps carry no zone; the API may write UTC as Z
    return value


def _array(values: list[Any], type_name: str) -> pa.Array:
    arrow_type = arrow_types.get(type_name)
    if type_name in ("date", "timestamp"):
        # The API writes dates and timestamps as text; Arrow parses both ISO forms.
        return pa.array(values, pa.string()).cast(arrow_type)
    return pa.array(values, arrow_type)


def table_from_rows(
    rows: Iterable[dict[str, Any]], columns: Sequence[dict[str, Any]], kind: str
) -> pa.Table:
    """A result table from rows as the API's pages give them."""
    rows = list(rows)
    arrays: list[pa.Array] = []
    for column in columns:
        name, type_name = column["name"], column["type"]
        arrays.append(_array([_cell(row.get(name), type_name) for row in rows], type_name))
    if kind == "aggregate":
        arrays.append(pa.array([bool(row.get("suppressed", False)) for row in rows], pa.bool_()))
    return pa.Table.from_arrays(arrays, names=column_names(columns, kind))


def normalize_export(table: pa.Table, columns: Sequence[dict[str, Any]], kind: str) -> pa.Table:
    """The Parquet export in the same shape as table_from_rows gives: its columns in order,
    with the same types."""
    arrays: list[pa.Array | pa.ChunkedArray] = []
    for column in columns:
        values = table.column(column["name"])
        wanted = arrow_types.get(column["type"])
        arrays.append(values.cast(wanted) if wanted is not None else values)
    if kind == "aggregate":
        if "suppressed" in table.column_names:
            arrays.append(table.column("suppressed").cast(pa.bool_()).fill_null(False))
        else:
            arrays.append(pa.array([False] * table.num_rows, pa.bool_()))
    return pa.Table.from_arrays(arrays, names=column_names(columns, kind))


def with_summary(table: pa.Table, query_id: str, summary: dict[str, Any] | None) -> pa.Table:
    """The table with the query's id and summary in its schema's metadata."""
    metadata = dict(table.schema.metadata or {})
    metadata[b"medlake.query"] = query_id.encode()
    if summary is not None:
        metadata[b"medlake.summary"] = json.dumps(summary).encode()
    return table.replace_schema_metadata(metadata)


def to_pandas(table: pa.Table) -> Any:
    """A DataFrame of a result table: integers and booleans in pandas' nullable dtypes, so that
    a suppressed count is <NA> rather than turning its column into floats; doubles are float64
    with NaN; dates and timestamps datetime64."""
    try:
        import pandas as pd
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError(
            "to_pandas() needs pandas: pip install 'medlake[pandas]' (or pandas)"
        ) from error
    nullable = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    frame = table.to_pandas(types_mapper=nullable.get, date_as_object=False)
    metadata = table.schema.metadata or {}
    if b"medlake.summary" in metadata:
        frame.attrs["medlake"] = {
            "query": metadata.get(b"medlake.query", b"").decode(),
            "summary": json.loads(metadata[b"medlake.summary"]),
        }
    return frame
