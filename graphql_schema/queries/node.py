"""Relay's `node(id:)`: refetch any object that implements `Node` by its global id.

Every Node type is found through the same resolver as the field that lists it (the caller's
`me` wallet), so `node` shows exactly what those fields show: an id the caller may not see,
of another family, of a type that is no Node, or made up, answers NOT_FOUND, never FORBIDDEN,
so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from familymap.access import Role
from graphql_schema.context import Context
from graphql_schema.errors import NOT_FOUND, ApiError
from graphql_schema.permissions import require_principal, requires
from graphql_schema.types.wallet import CitizenWallet

Finder = Callable[[CitizenWallet, Info[Context, Any]], Awaitable[list[Any] | None]]

# Each Node type: the wallet's list it belongs to, and how its node id is read.
FINDERS: dict[str, tuple[Finder, Callable[[Any], str]]] = {
    "Entitlement": (lambda w, info: w.visible_entitlements(info), lambda n: n.key),
    "Offer": (lambda w, info: w.visible_offers(info), lambda n: n.offer_id),
    "Notification": (lambda w, info: w.visible_notifications(info), lambda n: n.notification_id),
    "WalletVoucher": (lambda w, info: w.visible_vouchers(info), lambda n: n.key),
    "BenefitPayment": (lambda w, info: w.visible_payments(info), lambda n: n.transfer_id),
}


class NodeNotFound(ApiError):
    code = NOT_FOUND

    def __init__(self) -> None:
        super().__init__("No object with that id is yours to see.")


@strawberry.type
class NodeQueries:
    @strawberry.field(
        description="Any object implementing Node, refetched by its global id; NOT_FOUND for "
        "an id the caller may not see (the same rules as the fields that list it).",
        extensions=requires(),
    )
    async def node(self, info: Info[Context, Any], id: strawberry.ID) -> relay.Node:
        principal = require_principal(info)
        # Parsed here, not as strawberry's GlobalID scalar: that one answers an id that is
        # not base64 "Type:id" with an unexpected error.
        try:
            global_id = relay.GlobalID.from_id(id)
        except (relay.GlobalIDValueError, ValueError, TypeError):
            raise NodeNotFound() from None
        finder = FINDERS.get(global_id.type_name)
        if finder is None or not principal.has_any({Role.CITIZEN}):
            raise NodeNotFound()
        find, node_id = finder
        wallet = CitizenWallet(citizen_iin=principal.subject, language_code=info.context.language)
        for node in await find(wallet, info) or ():
            if node_id(node) == global_id.node_id:
                return node
        raise NodeNotFound()
