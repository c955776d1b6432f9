"""Alembic migrations: the only way a schema is created, in tests too."""
