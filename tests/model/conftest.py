"""The model tests' fixture: a database of their own (tests/model/database.py)."""

from tests.model.database import database

__all__ = ["database"]
