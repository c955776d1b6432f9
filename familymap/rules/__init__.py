"""Rules as code: one class per programme (11 benefits, 2 vouchers, 4 notices).

`RULES` is the registry in evaluation order; `RULES_BY_CODE` finds one by its stable code.
See rules/base.py for how one definition serves one family and the whole population.
"""

from familymap.rules.base import BENEFIT, FAMILY, NOTICE, PERSON, VOUCHER, Award, Condition, Rule
from familymap.rules.benefits import BENEFITS
from familymap.rules.notices import NOTICES
from familymap.rules.vouchers import VOUCHERS

RULES: tuple[type[Rule], ...] = BENEFITS + VOUCHERS + NOTICES
RULES_BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in RULES}
RULE_CODES: tuple[str, ...] = tuple(RULES_BY_CODE)

__all__ = [
    "BENEFIT",
    "FAMILY",
    "NOTICE",
    "PERSON",
    "RULES",
    "RULES_BY_CODE",
    "RULE_CODES",
    "VOUCHER",
    "Award",
    "Condition",
    "Rule",
]
