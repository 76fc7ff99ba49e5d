"""The connection to a medlake server, with a researcher's personal API token."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from ._progress import progress_bar
from .catalog import Dataset, Dictionary
from .errors import (
    MedlakeError,
    QueryCancelledError,
    QueryFailedError,
    ServerUnreachableError,
    WaitTimeoutError,
    api_error,
)
from .result import Result
from .spec import QuerySpec

try:
    __version__ = version("medlake")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

#: Seconds the server holds a status request open waiting for the query to finish: also how
#: often the progress bar moves.
POLL_SECONDS = 1.0
# GETs answered 429 (rate limit) or 503 (overloaded) are tried again this often, after the
# server's Retry-After.
_RETRIES = 3


def spec_body(spec: QuerySpec | Mapping[str, Any]) -> dict[str, Any]:
    """A query spec as the API takes it: a model's fields under their JSON names, or a dict
    as it is (the server checks it)."""
    if isinstance(spec, BaseModel):
        return spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(spec, Mapping):
        return dict(spec)
    raise TypeError(
        f"a query spec is a medlake.spec.QuerySpec or a dict, not {type(spec).__name__}"
    )


class Client:
    """A medlake server, used with your personal API token.

    >>> client = Client("http://127.0.0.1:8080", token="mlk_...")

    Without arguments, the address and token come from MEDLAKE_URL and MEDLAKE_TOKEN. Make a
    token on your profile page in the web app (or ask an administrator: `medlake users token`).
    Further keyword arguments go to httpx.Client (e.g. `verify=` for your CA bundle)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        progress: bool = True,
        **httpx_options: Any,
    ) -> None:
        url = url or os.environ.get("MEDLAKE_URL")
        token = token or os.environ.get("MEDLAKE_TOKEN")
        if not url:
            raise MedlakeError(
                "Which medlake server? Client(url, token), or set MEDLAKE_URL "
                "(e.g. http://127.0.0.1:8080, where `npm start` serves)"
            )
        if not token:
            raise MedlakeError(
                "medlake needs your API token: Client(url, token), or set MEDLAKE_TOKEN. Make "
                "one on your profile page in the web app (Personal API tokens)."
            )
        self.url = url.rstrip("/").removesuffix("/api")
        self.progress = progress
        self._http = httpx.Client(
            base_url=f"{self.url}/api",
            headers={
                "authorization": f"Bearer {token}",
                "user-agent": f"medlake-python/{__version__}",
            },
            timeout=httpx.Timeout(timeout, connect=10.0),
            **httpx_options,
        )

    def __repr__(self) -> str:
        return f"<medlake.Client {self.url}>"

    def close(self) -> None:
        """Closes the connections (a `with Client(...) as client:` block does it for you)."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # The catalog.

    def datasets(self) -> list[Dataset]:
        """Every dataset, with your access level (None: you may ask for access)."""
        return [Dataset.from_api(d) for d in self._get("/v1/datasets")["datasets"]]

    def dictionary(self, dataset: str, search: str | None = None) -> Dictionary:
        """A dataset's columns, hospitals, months and codes; `search` keeps the codes whose
        code or name contains it."""
        params = {"search": search} if search else None
        return Dictionary.from_api(self._get(f"/v1/datasets/{dataset}/dictionary", params=params))

    # Queries.

    def query(
        self,
        spec: QuerySpec | Mapping[str, Any],
        *,
        wait: bool = True,
        timeout: float | None = None,
        progress: bool | None = None,
    ) -> Result:
        """Runs a query spec (docs/query-spec.md) and waits for its result.

        `spec` is a medlake.spec.QuerySpec (checked as you build it) or a dict. A bad spec
        raises BadRequestError with the place in the spec (`error.path`). While waiting, a
        progress bar shows how far the engine got (`progress=False` hides it), and
        interrupting cancels the query on the server. With `wait=False` the query is returned
        as soon as it is queued."""
        job = self._post("/v1/queries", json=spec_body(spec))
        result = Result(self, job)
        if wait:
            self._wait(result, timeout, progress)
        return result

    def queries(self, page: int = 1, page_size: int = 20) -> list[Result]:
        """Your queries, newest first, a page at a time."""
        body = self._get("/v1/queries", params={"page": page, "pageSize": page_size})
        return [Result(self, job) for job in body["queries"]]

    def result(self, query_id: str) -> Result:
        """A query you ran before, by its id (e.g. after restarting the notebook's kernel)."""
        return Result(self, self._get(f"/v1/queries/{query_id}"))

    def _wait(self, result: Result, timeout: float | None, progress: bool | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        show = self.progress if progress is None else progress
        bar = (
            progress_bar(
                total=100,
                desc=f"medlake query {result.id[:8]}",
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
            )
            if show
            else None
        )
        try:
            while not result.done:
                if bar is not None:
                    # update() rather than refresh(): it keeps a quick query's bar unshown.
                    bar.set_postfix_str(result.status, refresh=False)
                    bar.update(max(0, min(100, int(result.progress or 0)) - bar.n))
                seconds = POLL_SECONDS
                if deadline is not None:
                    seconds = min(seconds, deadline - time.monotonic())
                    if seconds <= 0:
                        raise WaitTimeoutError(
                            f"query {result.id} is still {result.status} after {timeout} seconds; "
                            "it goes on running on the server",
                            result,
                        )
                result._update(self._get(f"/v1/queries/{result.id}", params={"wait": seconds}))
        except KeyboardInterrupt:
            self._cancel_after_interrupt(result)
            raise
        finally:
            if bar is not None:
                bar.close()
        if result.status == "failed":
            raise QueryFailedError(f"query {result.id} failed: {result.error}", result)
        if result.status == "cancelled":
            raise QueryCancelledError(f"query {result.id} was cancelled: {result.error}", result)

    def _cancel_after_interrupt(self, result: Result) -> None:
        """Stops on the server the query whose wait was interrupted, so that it does not go on
        using the server (and the queue) for nothing."""
        try:
            result.cancel()
        except MedlakeError as error:
            print(f"medlake: could not cancel query {result.id}: {error}", file=sys.stderr)
            return
        # A query that ended in the meantime stays as it ended; one that runs stops shortly.
        if result.status in ("succeeded", "failed"):
            print(f"medlake: query {result.id} had already {result.status}", file=sys.stderr)
        else:
            print(f"medlake: cancelled query {result.id} on the server", file=sys.stderr)

    # HTTP.

    def _request(self, method: str, path: str, **options: Any) -> httpx.Response:
        for attempt in range(_RETRIES + 1):
            try:
                response = self._http.request(method, path, **options)
            except httpx.TransportError as error:
                raise ServerUnreachableError(
                    f"could not reach the medlake server at {self.url}: {error}"
                ) from error
            if response.is_success:
                return response
            retry_after = _retry_after(response)
            if method == "GET" and response.status_code in (429, 503) and attempt < _RETRIES:
                time.sleep(min(retry_after or 1.0, 30.0))
                continue
            raise _error_of(response, retry_after)
        raise AssertionError("unreachable")  # pragma: no cover

    def _get(self, path: str, **options: Any) -> Any:
        return self._request("GET", path, **options).json()

    def _post(self, path: str, **options: Any) -> Any:
        return self._request("POST", path, **options).json()

    def _delete(self, path: str) -> Any:
        return self._request("DELETE", path).json()

    def _download(self, link: str, target: Path, size: int | None) -> None:
        """Writes the file behind a download link (relative to the server) to `target`, whole
        or not at all. The token goes along so that the audit log names you; httpx drops it
        when the server redirects to the object store (S3) elsewhere."""
        partial = target.with_name(target.name + ".part")
        try:
            with self._http.stream("GET", f"{self.url}{link}", follow_redirects=True) as response:
                if not response.is_success:
                    response.read()
                    raise _error_of(response, _retry_after(response))
                total = int(response.headers.get("content-length") or size or 0) or None
                with (
                    partial.open("wb") as out,
                    self._progress(total=total, desc=target.name, unit="B", unit_scale=True) as bar,
                ):
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        bar.update(len(chunk))
            partial.replace(target)
        except httpx.TransportError as error:
            raise ServerUnreachableError(
                f"the download from {self.url} broke off: {error}"
            ) from error
        finally:
            partial.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _progress(self, **options: Any) -> Iterator[Any]:
        """A progress bar if this client shows them, else something that ignores updates."""
        if not self.progress:
            yield _NoBar()
            return
        bar = progress_bar(**options)
        try:
            yield bar
        finally:
            bar.close()


class _NoBar:
    def update(self, _: float) -> None:
        pass


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _error_of(response: httpx.Response, retry_after: float | None) -> MedlakeError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return api_error(response.status_code, body, response.text, retry_after)
