"""Benchmarks and their load generator: `socialwallet bench …`, not part of the running service.

Each benchmark works on an empty database named by DATABASE_URL, prints its figures and ends
with one JSON line. The package stands on top of `app` (it starts servers, mints dev tokens);
`app` never imports it: the CLI finds `bench` through the `socialwallet.commands` entry point.
"""
