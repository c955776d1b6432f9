"""The settings the GraphQL layer reads, declared here so that it never imports the app.

`app.settings.Settings` satisfies this protocol (a test checks it); the app passes its
settings to `build_schema` and puts them in every request's context.
"""

from __future__ import annotations

from typing import Protocol


class SchemaSettings(Protocol):
    """What the schema and its resolvers read of the service's configuration."""

    @property
    def is_prod(self) -> bool:
        """Production: no field suggestions, no introspection for strangers."""
        ...

    @property
    def audit_key(self) -> bytes:
        """The key the audit trail hashes IINs and chains records with."""
        ...

    @property
    def offer_days(self) -> int:
        """How long a proactive offer waits for an answer."""
        ...

    @property
    def qr_token_ttl_seconds(self) -> int:
        """How long a parent's meal QR code stays valid."""
        ...

    @property
    def graphql_max_depth(self) -> int: ...

    @property
    def graphql_max_aliases(self) -> int: ...

    @property
    def graphql_max_tokens(self) -> int: ...

    @property
    def graphql_max_selections(self) -> int: ...
