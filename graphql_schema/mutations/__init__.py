"""The schema's mutations, composed from the per-area modules."""

from __future__ import annotations

import strawberry

from graphql_schema.mutations.life_events import LifeEventMutations
from graphql_schema.mutations.offers import OfferMutations


@strawberry.type
class Mutation(LifeEventMutations, OfferMutations):
    """Every mutation of the API."""
