"""The Digital Family Map: registry, source-system facts, welfare and eligibility.

Imports no other package of ours; the wallet and the vouchers stand on it.
"""
