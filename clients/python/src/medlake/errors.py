"""What the client raises. Every error is a MedlakeError; an answer of the API that is not a
success is an ApiError (or one of its subclasses, by the API's error code) that carries the
code, the message and, for a bad query spec, where in the spec the problem is. The codes, one
per cause, are listed with what to do about each in docs/errors.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .result import Result


class MedlakeError(Exception):
    """Anything that went wrong talking to medlake."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ErrorDetail:
    """Where an input error is: a path in the query spec (e.g. `where.and[1].value`) or a field."""

    path: str
    message: str


class ApiError(MedlakeError):
    """The API answered with an error: `code` is its error code (e.g. invalid_spec),
    `status` the HTTP status, `details` where the problem is, for input errors."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[ErrorDetail] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details or []
        self.retry_after = retry_after

    @property
    def path(self) -> str | None:
        """The spec path of the (first) problem of a 400, e.g. `where.and[1].value`."""
        return self.details[0].path if self.details else None

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        # The message often says the details already; those it does not are added.
        extra = [f"{d.path}: {d.message}" for d in self.details if d.message not in self.message]
        return text + "".join(f"\n  {line}" for line in extra)


class BadRequestError(ApiError):
    """400: the request or the query spec is not valid (e.g. invalid_spec, too_many_groups)."""


class AuthenticationError(ApiError):
    """401: the API token is missing, unknown, expired or revoked (e.g. token_invalid)."""


class PermissionDeniedError(ApiError):
    """403: your access does not allow this, e.g. rows with aggregate access (rule_refused)."""


class NotFoundError(ApiError):
    """404: no such dataset or query, or not one of yours (e.g. dataset_not_found)."""


class ConflictError(ApiError):
    """409: not in this state, e.g. exporting a query that has not succeeded (result_not_ready)."""


class RateLimitedError(ApiError):
    """429: too many requests or queries at once; `retry_after` says when to try again."""


class QueueFullError(RateLimitedError):
    """429 queue_full: as many of your queries are queued or running as one user may; wait
    for one to finish, or cancel one, then submit again."""


class BudgetSpentError(RateLimitedError):
    """429 budget_spent or lifetime_budget_spent: the privacy budget on the dataset is spent.
    Waiting for more requests does not help; a question answered before is free, and a
    window's budget frees up on the date the message gives (the lifetime one never does)."""


class ServerError(ApiError):
    """500 or 503: the server could not answer (e.g. internal, overloaded)."""


# Codes a script is likely to handle on their own; every other code is told apart by `code`,
# and its class follows the HTTP status.
_by_code: dict[str, type[ApiError]] = {
    "queue_full": QueueFullError,
    "budget_spent": BudgetSpentError,
    "lifetime_budget_spent": BudgetSpentError,
}
_by_status: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitedError,
}


def api_error(status: int, body: Any, text: str, retry_after: float | None = None) -> ApiError:
    """The error for an API answer: its `{"error": {code, message, details}}` body, or (from
    something in between, such as a proxy) the status and the start of its text."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code = error["code"]
        message = str(error.get("message", ""))
        details = [
            ErrorDetail(str(d.get("path", "")), str(d.get("message", "")))
            for d in error.get("details") or []
            if isinstance(d, dict)
        ]
    else:
        code = f"HTTP_{status}"
        message = text.strip()[:500] or f"the server answered {status}"
        details = []
    kind = (
        _by_code.get(code) or _by_status.get(status) or (ServerError if status >= 500 else ApiError)
    )
    return kind(status, code, message, details, retry_after)


class ServerUnreachableError(MedlakeError):
    """The server could not be reached (wrong address, not running, network)."""


class QueryFailedError(MedlakeError):
    """The query ran and failed (e.g. it ran past the server's time limit); `result` is it."""

    def __init__(self, message: str, result: Result) -> None:
        super().__init__(message)
        self.result = result


class QueryCancelledError(MedlakeError):
    """The query was cancelled (by you, from here or elsewhere) before it finished."""

    def __init__(self, message: str, result: Result) -> None:
        super().__init__(message)
        self.result = result


class WaitTimeoutError(MedlakeError, TimeoutError):
    """The query did not finish within the time you were willing to wait; it goes on running
    on the server (`result.wait()` again, or `result.cancel()`)."""

    def __init__(self, message: str, result: Result) -> None:
        super().__init__(message)
        self.result = result


class PendingReviewError(MedlakeError):
    """The dataset has an airlock and it holds this result or export for an administrator's
    review (`review` is `pending`), or the review refused it (`rejected`): nothing of it can be
    read or downloaded until it is approved. `report` is the output check's findings, when the
    server tells them."""

    def __init__(
        self,
        message: str,
        review: str,
        report: dict[str, Any] | None = None,
        export_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.review = review
        self.report = report
        self.export_id = export_id
