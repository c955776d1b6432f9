"""The schema's mutations, composed from the per-area modules."""

from __future__ import annotations

import strawberry

from graphql_schema.mutations.life_events import LifeEventMutations
from graphql_schema.mutations.vouchers import VoucherMutations


@strawberry.type
class Mutation(LifeEventMutations, VoucherMutations):
    """Every mutation of the API."""
