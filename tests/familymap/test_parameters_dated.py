"""Laws as data: dated parameter files, their validation and version."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from familymap.parameters import ParameterError, default_parameters, load_parameters

OVERLAPPING = """
mrp:
  values:
    - {valid_from: 2024-01-01, valid_to: 2024-12-31, value: 369200, source: "budget law 2024"}
    - {valid_from: 2024-12-01, valid_to: null, value: 393200, source: "budget law 2025"}
"""

OPEN_ENDED_THEN_LATER = """
mrp:
  values:
    - {valid_from: 2024-01-01, valid_to: null, value: 369200, source: "budget law 2024"}
    - {valid_from: 2025-01-01, valid_to: null, value: 393200, source: "budget law 2025"}
"""

WITH_A_GAP = """
mrp:
  description: MRP
  unit: tiyn
  values:
    - {valid_from: 2024-01-01, valid_to: 2024-06-30, value: 369200, source: "budget law 2024"}
    - {valid_from: 2025-01-01, valid_to: 2025-12-31, value: 393200, source: "budget law 2025"}
"""

NO_SOURCE = """
mrp:
  values:
    - {valid_from: 2024-01-01, valid_to: null, value: 369200}
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "general.yaml").write_text(text)
    return tmp_path


def test_the_shipped_files_load_and_pick_the_value_in_force():
    ps = default_parameters()
    assert ps.get("mrp", date(2024, 12, 31)) == 369_200
    assert ps.get("mrp", date(2025, 1, 1)) == 393_200
    assert ps.get("mrp", date(2026, 3, 1)) == 432_500
    assert ps.get("subsistence_minimum", date(2025, 6, 1)) == 4_622_800
    assert ps.get("subsistence_minimum", date(2026, 6, 1)) == 5_085_100
    assert ps.get("pension_age_months", date(2025, 6, 1)) == {"M": 756, "F": 732}
    assert ps.get("large_family.four_children_mrp", date(2025, 6, 1)) == 16.03


def test_every_shipped_value_cites_a_source():
    ps = default_parameters()
    for name in ps.names():
        for entry in ps.parameter(name).values:
            assert entry.source.strip(), name


def test_school_meal_prices_cover_every_region():
    from familymap.situation import REGIONS

    prices = default_parameters().get("school_meals.meal_price_tiyn", date(2025, 9, 1))
    assert set(prices) == set(REGIONS)
    assert all(isinstance(v, int) and v > 0 for v in prices.values())


def test_overlapping_periods_are_refused(tmp_path):
    with pytest.raises(ParameterError) as error:
        load_parameters(write(tmp_path, OVERLAPPING))
    assert error.value.code == "PARAMETER_OVERLAP"
    assert error.value.name == "mrp"


def test_an_open_ended_period_followed_by_another_overlaps(tmp_path):
    with pytest.raises(ParameterError) as error:
        load_parameters(write(tmp_path, OPEN_ENDED_THEN_LATER))
    assert error.value.code == "PARAMETER_OVERLAP"


def test_a_date_in_a_gap_or_before_the_first_value_is_missing(tmp_path):
    ps = load_parameters(write(tmp_path, WITH_A_GAP))
    assert ps.get("mrp", date(2024, 6, 30)) == 369_200
    assert ps.get("mrp", date(2025, 1, 1)) == 393_200
    for on in (date(2024, 7, 1), date(2023, 12, 31), date(2026, 1, 1)):
        with pytest.raises(ParameterError) as error:
            ps.get("mrp", on)
        assert error.value.code == "PARAMETER_MISSING"


def test_an_unknown_name_is_missing():
    with pytest.raises(ParameterError) as error:
        default_parameters().get("no_such.parameter", date(2025, 1, 1))
    assert error.value.code == "PARAMETER_MISSING"


def test_an_entry_without_a_source_is_invalid(tmp_path):
    with pytest.raises(ParameterError) as error:
        load_parameters(write(tmp_path, NO_SOURCE))
    assert error.value.code == "PARAMETER_INVALID"


def test_the_version_is_a_content_hash(tmp_path):
    first = load_parameters(write(tmp_path, WITH_A_GAP))
    again = load_parameters(tmp_path)
    assert first.version == again.version and len(first.version) == 12
    (tmp_path / "general.yaml").write_text(WITH_A_GAP.replace("393200", "393300"))
    assert load_parameters(tmp_path).version != first.version
