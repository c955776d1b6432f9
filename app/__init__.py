"""Composition root: settings, database, auth, logging, the ASGI app and the CLI."""
