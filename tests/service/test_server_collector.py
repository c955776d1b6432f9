"""The served process's cyclic garbage collector (app/asgi.py's lifespan)."""

from __future__ import annotations

import gc

from app.asgi import YOUNG_COLLECTION_THRESHOLD


async def test_the_young_generation_is_collected_rarely_while_the_server_runs(app):
    before = gc.get_threshold()
    assert before[0] < YOUNG_COLLECTION_THRESHOLD
    # While the server runs, the young generation waits for many more allocations
    async with app.router.lifespan_context(app):
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:])
    # and once it stops, the process's collector is as it was
    assert gc.get_threshold() == before
