"""The schema as clients see it, for `make schema` (strawberry export-schema) and the contract
tests. Built here, in the composition root, because building it needs the settings."""

from app.settings import Settings
from graphql_schema.schema import build_schema

schema = build_schema(Settings(environment="dev"))
