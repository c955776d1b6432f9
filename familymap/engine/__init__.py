"""The engine that runs the rules: columns, shared intermediates, the two evaluation modes.

    population.py  Population: numpy columns, built from Family objects or straight from arrays
    dates.py       int32 day numbers and month arithmetic shared by both modes
    context.py     one evaluation: date, parameters in force, shared intermediates
    evaluate.py    evaluate_population (vectorised) and evaluate_family (explained)
    results.py     Decision / FamilyEvaluation and the columnar PopulationResult

Public names are re-exported lazily: the rules import engine modules, and the evaluator imports
the rules, so importing everything here eagerly would be circular.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the types of the lazy names below, for the type checker only
    # (`name as name`: re-exported)
    from familymap.engine.evaluate import (
        evaluate_family as evaluate_family,
    )
    from familymap.engine.evaluate import (
        evaluate_population as evaluate_population,
    )
    from familymap.engine.evaluate import (
        explain_population_family as explain_population_family,
    )
    from familymap.engine.population import (
        FAMILY_COLUMNS as FAMILY_COLUMNS,
    )
    from familymap.engine.population import (
        PERSON_COLUMNS as PERSON_COLUMNS,
    )
    from familymap.engine.population import (
        Population as Population,
    )
    from familymap.engine.population import (
        PopulationError as PopulationError,
    )
    from familymap.engine.results import (
        ConditionResult as ConditionResult,
    )
    from familymap.engine.results import (
        Decision as Decision,
    )
    from familymap.engine.results import (
        FamilyEvaluation as FamilyEvaluation,
    )
    from familymap.engine.results import (
        PopulationResult as PopulationResult,
    )
    from familymap.engine.results import (
        RuleColumns as RuleColumns,
    )

_EXPORTS = {
    "Population": "familymap.engine.population",
    "PopulationError": "familymap.engine.population",
    "PERSON_COLUMNS": "familymap.engine.population",
    "FAMILY_COLUMNS": "familymap.engine.population",
    "evaluate_population": "familymap.engine.evaluate",
    "evaluate_family": "familymap.engine.evaluate",
    "explain_population_family": "familymap.engine.evaluate",
    "Decision": "familymap.engine.results",
    "ConditionResult": "familymap.engine.results",
    "FamilyEvaluation": "familymap.engine.results",
    "PopulationResult": "familymap.engine.results",
    "RuleColumns": "familymap.engine.results",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module), name)
