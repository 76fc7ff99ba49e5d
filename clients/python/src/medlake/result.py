"""A query and its result: the job's state, its summary (the key points and the disclosure
rules that ran), and its rows as an Arrow table or a pandas DataFrame."""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from . import _tables
from .catalog import Rule
from .errors import MedlakeError, PendingReviewError

if TYPE_CHECKING:
    from .client import Client

#: The most rows one page of the API holds: results up to this size are read from the pages,
#: larger ones through the Parquet export.
PAGE_SIZE = 1000

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def _figure(value: Any) -> Any:
    """A figure of the summary, None where the server shows it suppressed ("suppressed", "<11")."""
    return None if isinstance(value, str) else value


@dataclass(frozen=True)
class ResultColumn:
    """A column of the result: a group, a measure (with its function) or a row-level column."""

    name: str
    kind: str
    type: str
    fn: str | None = None
    p: float | None = None


@dataclass(frozen=True)
class Summary:
    """The key points of a finished query, and what disclosure control did to it.

    Figures the server suppressed are None here (`total`, `matching_rows`,
    `matching_patients`); `raw` is the summary as the API gave it."""

    kind: str
    access_level: str
    columns: list[ResultColumn]
    row_count: int
    total: dict[str, Any] | None
    matching_rows: int | None
    matching_patients: int | None
    suppressed_groups: int
    withheld_groups: int
    threshold: int
    rules: list[Rule]
    release_count: int
    hospitals: list[str]
    months: list[str]
    key_points: list[str]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Summary:
        matching = body.get("matching") or {}
        total = body.get("total")
        releases = body.get("releases") or {}
        return cls(
            kind=body["kind"],
            access_level=body["accessLevel"],
            columns=[
                ResultColumn(c["name"], c["kind"], c["type"], c.get("fn"), c.get("p"))
                for c in body["columns"]
            ],
            row_count=int(body["rowCount"]),
            total={k: _figure(v) for k, v in total.items()} if total is not None else None,
            matching_rows=_figure(matching.get("rows")),
            matching_patients=_figure(matching.get("patients")),
            suppressed_groups=int(body.get("suppressedGroups", 0)),
            withheld_groups=int(body.get("withheldGroups", 0)),
            threshold=int(body["threshold"]),
            rules=[Rule.from_api(rule) for rule in body.get("rules", [])],
            release_count=int(releases.get("count", 0)),
            hospitals=list(releases.get("hospitals", [])),
            months=list(releases.get("months", [])),
            key_points=list(body.get("keyPoints", [])),
            raw=body,
        )


class Result:
    """A query on the server: its state and, once it has succeeded, its result.

    `Client.query()` gives one that has finished; `Client.query(spec, wait=False)` one that may
    still run (`wait()`, `cancel()`); `Client.result(id)` one made earlier."""

    def __init__(self, client: Client, job: dict[str, Any]) -> None:
        self._client = client
        self._table: pa.Table | None = None
        self._update(job)

    def _update(self, job: dict[str, Any]) -> None:
        self.job: dict[str, Any] = job
        self.id: str = job["id"]
        self.dataset: str = job["dataset"]
        self.status: Status = job["status"]
        self.spec: dict[str, Any] = job["spec"]
        self.engine: str = job["engine"]
        self.release_ids: list[str] | None = job.get("releaseIds")
        summary = job.get("summary")
        self.summary: Summary | None = Summary.from_api(summary) if summary else None

    @property
    def progress(self) -> float | None:
        """How far the engine got, in percent, while the query runs (when it can tell)."""
        progress = self.job.get("progress") or {}
        return progress.get("percent")

    @property
    def error(self) -> str | None:
        """Why the query failed, or that it was cancelled."""
        error = self.job.get("error")
        return error.get("message") if error else None

    @property
    def key_points(self) -> list[str]:
        """The result's key points in plain sentences (empty until it has succeeded)."""
        return self.summary.key_points if self.summary else []

    @property
    def done(self) -> bool:
        return self.status not in ("queued", "running")

    def refresh(self) -> Result:
        """Asks the server for the query's state now."""
        self._update(self._client._get(f"/v1/queries/{self.id}"))
        return self

    def wait(self, timeout: float | None = None, progress: bool | None = None) -> Result:
        """Waits for the query to finish, with a progress bar unless `progress=False`.

        Interrupting (Ctrl-C, or the notebook's stop button) cancels the query on the server.
        Raises QueryFailedError or QueryCancelledError when it did not succeed, and
        WaitTimeoutError (the query goes on) after `timeout` seconds."""
        self._client._wait(self, timeout, progress)
        return self

    def cancel(self) -> Result:
        """Cancels the query if it is still queued or running."""
        self._update(self._client._delete(f"/v1/queries/{self.id}"))
        return self

    @property
    def review(self) -> str | None:
        """On a dataset with an airlock: `not_needed`, `pending`, `approved` or `rejected`."""
        review = self.job.get("review")
        return review.get("state") if review else None

    def _succeeded(self) -> Summary:
        if self.status != "succeeded":
            raise MedlakeError(f"query {self.id} has no result: it is {self.status}")
        review = self.job.get("review")
        if self.summary is None and review and review.get("state") in ("pending", "rejected"):
            raise PendingReviewError(
                f"query {self.id}: {review.get('message') or 'its result waits for review'}",
                review=review["state"],
            )
        if self.summary is None:
            raise MedlakeError(f"query {self.id} has no result to show")
        return self.summary

    def page(
        self,
        number: int = 1,
        size: int = 100,
        sort: str | None = None,
        direction: Literal["asc", "desc"] = "asc",
    ) -> pa.Table:
        """One page of the result (`size` up to 1,000 rows), sorted on the server by `sort`."""
        summary = self._succeeded()
        params: dict[str, Any] = {"page": number, "pageSize": size}
        if sort:
            params.update(sort=sort, direction=direction)
        body = self._client._get(f"/v1/queries/{self.id}/results", params=params)
        table = _tables.table_from_rows(body["rows"], body["columns"], summary.kind)
        return _tables.with_summary(table, self.id, summary.raw)

    def to_arrow(self, via: Literal["auto", "pages", "export"] = "auto") -> pa.Table:
        """The whole result as an Arrow table: a suppressed figure is null, and `suppressed` is True
        on an aggregate's row whose figures were held back.

        `via="auto"` reads a result of up to 1,000 rows from the API's pages and a larger one
        through the Parquet export's download link; `pages` or `export` choose one way.
        The table is kept: a second call does not fetch it again."""
        summary = self._succeeded()
        if via == "auto" and self._table is not None:
            return self._table
        if via == "pages" or (via == "auto" and summary.row_count <= PAGE_SIZE):
            table = self._read_pages(summary)
        elif via in ("auto", "export"):
            table = self._read_export(summary)
        else:
            raise ValueError(f"via must be auto, pages or export, not {via!r}")
        table = _tables.with_summary(table, self.id, summary.raw)
        if via == "auto":
            self._table = table
        return table

    def to_pandas(self, via: Literal["auto", "pages", "export"] = "auto") -> Any:
        """The whole result as a pandas DataFrame (needs pandas).

        Suppressed counts are <NA> in nullable integer columns, suppressed or empty figures NaN
        in float columns; `suppressed` is True on an aggregate's row whose figures were held
        back. `df.attrs["medlake"]` holds the query id and its summary, rules included."""
        return _tables.to_pandas(self.to_arrow(via))

    def _read_pages(self, summary: Summary) -> pa.Table:
        columns = [vars(column) for column in summary.columns]
        pages = max(1, math.ceil(summary.row_count / PAGE_SIZE))
        rows: list[dict[str, Any]] = []
        with self._client._progress(
            total=pages, desc=f"medlake pages {self.id[:8]}", unit="page"
        ) as bar:
            for number in range(1, pages + 1):
                body = self._client._get(
                    f"/v1/queries/{self.id}/results", params={"page": number, "pageSize": PAGE_SIZE}
                )
                rows.extend(body["rows"])
                bar.update(1)
        return _tables.table_from_rows(rows, columns, summary.kind)

    def _read_export(self, summary: Summary) -> pa.Table:
        with tempfile.TemporaryDirectory(prefix="medlake-") as scratch:
            file = self.export("parquet", Path(scratch) / "result.parquet")
            table = pq.read_table(file)
        columns = [vars(column) for column in summary.columns]
        return _tables.normalize_export(table, columns, summary.kind)

    def export(
        self, format: Literal["csv", "parquet"], path: str | os.PathLike[str] | None = None
    ) -> Path:
        """Exports the result as CSV or Parquet and downloads it through its signed link.

        `path` is the file to write, or a folder for the server's file name (default: the
        current folder). CSV shows a suppressed count as the server writes it; Parquet keeps
        nulls and the `suppressed` column. Returns the file's path. Raises
        PendingReviewError when the dataset's airlock holds the export for review."""
        self._succeeded()
        if format not in ("csv", "parquet"):
            raise ValueError(f"format must be csv or parquet, not {format!r}")
        link = self._client._post(f"/v1/queries/{self.id}/exports", json={"format": format})
        if not link.get("url"):
            raise PendingReviewError(
                f"The export of query {self.id} has no download link: the dataset's airlock "
                f"holds it for an administrator's review ({link['review']}). The output check "
                "found: " + "; ".join(check["detail"] for check in link["report"]["checks"]),
                review=link["review"],
                report=link["report"],
                export_id=link["exportId"],
            )
        target = Path(path) if path is not None else Path.cwd()
        if target.is_dir():
            target = target / link["fileName"]
        self._client._download(link["url"], target, link.get("bytes"))
        return target

    def __repr__(self) -> str:
        shown = f"<medlake.Result {self.id} on {self.dataset}: {self.status}"
        if self.summary:
            shown += f", {self.summary.row_count} rows"
        elif self.review in ("pending", "rejected"):
            shown += f", review {self.review}"
        return shown + ">"

    def _repr_markdown_(self) -> str:
        lines = [f"**medlake query** `{self.id}` on `{self.dataset}`: {self.status}"]
        if self.error:
            lines.append(f"\n{self.error}")
        review = self.job.get("review") or {}
        if self.summary is None and review.get("message"):
            lines.append(f"\n{review['message']}")
        lines.extend(f"- {point}" for point in self.key_points)
        return "\n".join(lines)
