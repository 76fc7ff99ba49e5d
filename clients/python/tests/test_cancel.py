"""A long query: progress while waiting, cancelled on the server when the wait is interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import medlake


def heavy(dataset):
    """Exact percentiles per code, age and sex over millions of rows: seconds of work."""
    return {
        "dataset": dataset,
        "groupBy": [{"column": "code"}, {"column": "age"}, {"column": "sex"}],
        "measures": [{"fn": "percentile", "column": "value", "p": p} for p in (0.1, 0.5, 0.9)]
        + [{"fn": "patients"}],
    }


def until(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} seconds")


def finished(client, query_id):
    result = client.result(query_id)
    return result if result.done else None


waiting_script = """
import json, sys
import medlake
client = medlake.Client(sys.argv[1], sys.argv[2])
client.query(json.loads(sys.argv[3]))
print("finished")
"""


def test_interrupting_the_wait_cancels_the_query_on_the_server(url, aggregate, large_dataset):
    before = {query.id for query in aggregate.queries()}
    waiting = subprocess.Popen(
        [
            sys.executable,
            "-c",
            waiting_script,
            url,
            os.environ["MEDLAKE_TEST_TOKEN_AGGREGATE"],
            json.dumps(heavy(large_dataset)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        query = until(
            lambda: next(
                (q for q in aggregate.queries() if q.id not in before and q.status == "running"),
                None,
            )
        )
        time.sleep(2.5)  # the progress bar shows after a second
        waiting.send_signal(signal.SIGINT)  # Ctrl-C, or a notebook's stop button
        out, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert "finished" not in out
    assert "KeyboardInterrupt" in err
    assert f"medlake query {query.id[:8]}" in err  # the progress bar, in a terminal
    assert f"cancelled query {query.id} on the server" in err
    cancelled = until(lambda: finished(aggregate, query.id), 30)
    assert cancelled.status == "cancelled"
    assert cancelled.error == "cancelled by the user"


def test_a_query_not_waited_for_can_be_waited_for_and_cancelled(aggregate, large_dataset):
    result = aggregate.query(heavy(large_dataset), wait=False)
    assert result.status in ("queued", "running")
    with pytest.raises(medlake.WaitTimeoutError):
        result.wait(timeout=0.5)
    result.cancel()
    with pytest.raises(medlake.QueryCancelledError) as cancelled:
        result.wait()
    assert cancelled.value.result.status == "cancelled"
    with pytest.raises(medlake.MedlakeError, match="cancelled"):
        result.to_arrow()
