"""medlake for Python: query a medlake server from a notebook or a script.

    from medlake import Client
    client = Client("http://127.0.0.1:8080", token="mlk_...")
    df = client.query({"dataset": "lab-results", "groupBy": [{"column": "sex"}],
                       "measures": [{"fn": "patients"}]}).to_pandas()

Query specs can be built with the typed models of medlake.spec (QuerySpec and its parts).
docs/python-client.md in the medlake repository has the whole story.
"""

from .catalog import Code, Dataset, Dictionary, DictionaryColumn, Rule
from .client import Client, __version__
from .errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    BudgetSpentError,
    ConflictError,
    ErrorDetail,
    MedlakeError,
    NotFoundError,
    PendingReviewError,
    PermissionDeniedError,
    QueryCancelledError,
    QueryFailedError,
    QueueFullError,
    RateLimitedError,
    ServerError,
    ServerUnreachableError,
    WaitTimeoutError,
)
from .result import PAGE_SIZE, Result, ResultColumn, Summary
from .spec import QuerySpec

__all__ = [
    "PAGE_SIZE",
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetSpentError",
    "Client",
    "Code",
    "ConflictError",
    "Dataset",
    "Dictionary",
    "DictionaryColumn",
    "ErrorDetail",
    "MedlakeError",
    "NotFoundError",
    "PendingReviewError",
    "PermissionDeniedError",
    "QueryCancelledError",
    "QueryFailedError",
    "QuerySpec",
    "QueueFullError",
    "RateLimitedError",
    "Result",
    "ResultColumn",
    "Rule",
    "ServerError",
    "ServerUnreachableError",
    "Summary",
    "WaitTimeoutError",
    "__version__",
]
