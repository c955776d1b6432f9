"""The schema's mutations, composed from the per-area modules."""

from __future__ import annotations

import strawberry

from graphql_schema.mutations.life_events import LifeEventMutations
from graphql_schema.mutations.offers import OfferMutations
from graphql_schema.mutations.vouchers import VoucherMutations


@strawberry.type
class Mutation(LifeEventMutations, OfferMutations, VoucherMutations):
    """Every mutation of the API."""
