"""The dev schema as a module attribute, for `strawberry export-schema graphql_schema.export:schema`."""

from app.settings import Settings
from graphql_schema.schema import build_schema

schema = build_schema(Settings(environment="dev"))
