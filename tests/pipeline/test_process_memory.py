"""What the memory limiter reads about the process: RSS and the allocator's free memory."""

from __future__ import annotations

import gc

from metricgate.pipeline.process_memory import (
    allocator_free,
    process_rss,
    total_memory,
    trim_allocator,
)


def test_freed_small_objects_show_as_free_allocator_memory_while_rss_stays() -> None:
    # Interleave survivors with garbage, so freed arenas cannot go back to the system.
    objects = [f"value-{i:08d}" * 3 for i in range(400_000)]
    survivors = objects[::50]
    gc.collect()
    free_before = allocator_free()
    del objects
    gc.collect()
    trim_allocator()
    free_after = allocator_free()
    assert free_after - free_before > 20 * 1024 * 1024, (free_before, free_after)
    assert process_rss() > free_after  # free memory is part of RSS
    assert len(survivors) == 8000


def test_rss_and_total_memory_are_plausible() -> None:
    assert 10 * 1024 * 1024 < process_rss() < total_memory()
