"""The benchmark functions the CLI wires up: fast generation and a consistent report."""

from __future__ import annotations

import numpy as np

from bench.eligibility import run_evaluation_benchmark
from familymap.engine.dates import to_day
from familymap.synthetic import REFERENCE_DATE, synthetic_population


def test_synthetic_population_is_deterministic_and_plausible():
    a, b = synthetic_population(20_000, seed=7), synthetic_population(20_000, seed=7)
    assert a.n_families == 20_000 and np.array_equal(a.person.birth_date, b.person.birth_date)
    assert 3.0 < a.n_persons / a.n_families < 3.6
    age_days = to_day(REFERENCE_DATE) - a.person.birth_date
    assert (age_days >= 0).all()
    assert 0.2 < (age_days < 18 * 365.25).mean() < 0.5  # children
    assert 0.01 < (age_days < 1.5 * 365.25).mean() < 0.05  # under 1.5 years


def test_the_benchmark_report():
    report = run_evaluation_benchmark(n_families=3_000, seed=1, single_family_samples=40)
    assert report["families"] == 3_000 and report["persons"] > 9_000
    assert report["evaluate_s"] > 0 and report["persons_per_s_evaluate"] > 0
    assert 0 < report["single_family_us_p50"] <= report["single_family_us_p99"]
    assert report["eligible_decisions"] > 0 and len(report["parameters_version"]) == 12
