"""Authorisation at the edge of every field: who may call it at all.

Ownership (may this citizen see *this* family?) is checked by the resolver against the
object it loads; this module only answers "is there a caller, and has it one of the roles".
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

from familymap.access import Principal, Role
from familymap.i18n import Refusal
from graphql_schema.context import Context
from graphql_schema.errors import Forbidden, Unauthenticated


def require_principal(info: Info[Context, Any]) -> Principal:
    """The verified caller, or UNAUTHENTICATED (with the reason a token was refused)."""
    principal = info.context.principal
    if principal is None:
        reason = info.context.auth_rejection or Refusal("error.token.required")
        # The reason is a refusal of its own, said in the same language as the frame.
        raise Unauthenticated("error.unauthenticated", values={"reason": reason})
    return principal


class RoleRequired(BasePermission):
    """Lets the field run only for a caller holding one of `roles`."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    def has_permission(self, source: Any, info: Info[Context, Any], **kwargs: Any) -> bool:
        principal = require_principal(info)
        if self.roles and not principal.has_any(self.roles):
            allowed = ", ".join(sorted(self.roles))
            raise Forbidden("error.needs_role", values={"allowed": allowed})
        return True


def requires(*roles: Role) -> list[PermissionExtension]:
    """Field extensions for `@strawberry.field(extensions=requires(Role.X))`.

    With no roles, any authenticated caller may call the field.
    """
    return [PermissionExtension(permissions=[RoleRequired(*roles)], use_directives=False)]
