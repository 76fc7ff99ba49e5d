"""Errors carry the API's code, message and the place in the spec; expired tokens are refused."""

from __future__ import annotations

import os

import pydantic
import pytest

import medlake
from medlake.spec import Comparison, QuerySpec, Statistic


def test_a_bad_spec_names_its_place(aggregate):
    with pytest.raises(medlake.BadRequestError) as bad:
        aggregate.query(
            {
                "dataset": "lab-results",
                "where": {
                    "and": [
                        {"op": "code", "codes": ["2093-3"]},
                        {"column": "age", "op": "gte", "value": "old"},
                    ]
                },
                "measures": [{"fn": "patients"}],
            }
        )
    error = bad.value
    assert (error.status, error.code) == (400, "invalid_spec")
    assert error.path == "where.and[1].value"
    assert error.details[0].message == 'age holds numbers; "old" is not one'
    assert "where.and[1].value" in str(error)

    with pytest.raises(medlake.BadRequestError) as top_level:  # docs/python-client.md's example
        aggregate.query(
            {
                "dataset": "lab-results",
                "where": {"column": "age", "op": "gte", "value": "old"},
                "measures": [{"fn": "patients"}],
            }
        )
    assert top_level.value.path == "where.value"

    with pytest.raises(medlake.BadRequestError) as unknown:
        aggregate.query(
            {"dataset": "lab-results", "measures": [{"fn": "median", "column": "value"}]}
        )
    assert unknown.value.path == "measures[0]"


def test_the_typed_models_refuse_a_bad_spec_before_it_is_sent():
    with pytest.raises(pydantic.ValidationError, match="median"):
        Statistic(fn="median", column="value")
    with pytest.raises(pydantic.ValidationError):
        QuerySpec(dataset="Lab Results")
    with pytest.raises(pydantic.ValidationError):
        Comparison(column="age", op="older_than", value=3)


def test_an_expired_token_is_refused(url):
    with medlake.Client(url, os.environ["MEDLAKE_TEST_TOKEN_EXPIRED"], progress=False) as client:
        with pytest.raises(medlake.AuthenticationError) as refused:
            client.datasets()
        assert (refused.value.status, refused.value.code) == (401, "token_invalid")
        assert refused.value.message == "The API token is unknown, expired or revoked"
        with pytest.raises(medlake.AuthenticationError):
            client.query({"dataset": "lab-results", "measures": [{"fn": "patients"}]})


def test_an_unknown_dataset_and_an_unreachable_server(aggregate):
    with pytest.raises(medlake.NotFoundError) as missing:
        aggregate.dictionary("no-such-dataset")
    assert missing.value.code == "dataset_not_found"
    with pytest.raises(medlake.ServerUnreachableError):
        medlake.Client("http://127.0.0.1:9", "mlk_x", progress=False).datasets()


def test_a_spent_budget_and_a_full_queue_are_told_apart_from_a_rate_limit():
    from medlake.errors import api_error

    def refusal(code: str) -> medlake.ApiError:
        return api_error(429, {"error": {"code": code, "message": "refused"}}, "")

    assert type(refusal("budget_spent")) is medlake.BudgetSpentError
    assert type(refusal("lifetime_budget_spent")) is medlake.BudgetSpentError
    assert type(refusal("queue_full")) is medlake.QueueFullError
    assert type(refusal("rate_limited")) is medlake.RateLimitedError
    # Both are still rate limits, for scripts that catch those.
    assert isinstance(refusal("budget_spent"), medlake.RateLimitedError)
    # A code this client does not know is classed by its status.
    assert type(api_error(409, {"error": {"code": "new_cause", "message": "x"}}, "")) is (
        medlake.ConflictError
    )
