"""The screens benchmark sends the app's own citizen operations and reports each against
the baseline."""

from __future__ import annotations

from graphql import parse

from bench.screens import SCREENS, screen_requests, screens_summary
from bench.wallet import LoadResult


def test_each_screen_is_the_apps_own_read_operation_with_its_variables():
    # Given the request bodies the benchmark sends
    bodies = screen_requests()
    # Then there is one per screen and the baseline, each a single query operation
    assert set(bodies) == {"baseline", *SCREENS}
    for name, body in bodies.items():
        [operation] = parse(body["query"]).definitions
        assert operation.operation.value == "query"
        assert name == "baseline" or operation.name.value == name
    assert set(bodies["Spending"]["variables"]) == {"year"}


def test_the_summary_compares_each_screen_with_the_baseline():
    # Given the baseline at 100 requests a second and a screen at 25
    results = {name: LoadResult(25, 1.0, [10.0] * 24 + [90.0]) for name in SCREENS}
    results["baseline"] = LoadResult(100, 1.0, [2.0] * 100)
    statements = dict.fromkeys([*SCREENS, "baseline"], 3)
    # When the summary is made
    summary = screens_summary(
        results, statements, families=10, concurrency=8, database="postgresql"
    )
    # Then each screen has its median, p99, its ratio to the baseline and its statements
    wallet = summary["screens"]["Wallet"]
    assert (wallet["median_ms"], wallet["p99_ms"], wallet["ratio"]) == (10.0, 90.0, 0.25)
    assert wallet["sql_statements"] == 3 and summary["baseline"]["ratio"] == 1.0
