"""The tests run against a real `medlake serve` on the demo data, which
server/src/clients/python-client.test.ts starts (with researchers and their tokens) before it
runs pytest: `npx vitest run server/src/clients/python-client.test.ts`, or `npm run test:all`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import medlake

#: The client's folder in the repository (the tests run the installed wheel, not this source).
client_root = Path(__file__).resolve().parent.parent
repository_root = client_root.parent.parent


def setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: these tests need the server that "
            "server/src/clients/python-client.test.ts starts; run them through it "
            "(npx vitest run server/src/clients/python-client.test.ts)",
            pytrace=False,
        )
    return value


@pytest.fixture(scope="session")
def url() -> str:
    return setting("MEDLAKE_TEST_URL")


@pytest.fixture(scope="session")
def large_dataset() -> str:
    return setting("MEDLAKE_TEST_LARGE_DATASET")


def connect(url: str, token_variable: str) -> Iterator[medlake.Client]:
    with medlake.Client(url, setting(token_variable), progress=False) as client:
        yield client


@pytest.fixture(scope="session")
def aggregate(url: str) -> Iterator[medlake.Client]:
    """A researcher with aggregate access to the demo data."""
    yield from connect(url, "MEDLAKE_TEST_TOKEN_AGGREGATE")


@pytest.fixture(scope="session")
def rows(url: str) -> Iterator[medlake.Client]:
    """A researcher with row access to the demo data."""
    yield from connect(url, "MEDLAKE_TEST_TOKEN_ROW")


@pytest.fixture(scope="session")
def second(url: str) -> Iterator[medlake.Client]:
    """Another researcher with aggregate access, whose release ledger only one test uses."""
    yield from connect(url, "MEDLAKE_TEST_TOKEN_SECOND")
