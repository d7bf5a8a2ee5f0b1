"""Ray Data batch inference with dior: the embedder is a stateful class for ``map_batches``, so each
worker loads the model once and keeps it.

    import ray, dior.ray
    ds = ray.data.from_items([{"path": p} for p in paths])
    out = dior.ray.embed_dataset(ds, model="text.gguf", mmproj="mmproj.gguf",
                                 conditions=[None, "car color"], concurrency=4)
    out.write_parquet("vectors/")          # one row per (image, condition): path, condition, vector

Each batch goes through ``Embedder.embed``, and so through the library's batch step
(``dior::embed_batch``) that ``dior embed`` and ``dior.embed`` use. To write a store with resume
instead, run ``dior.embed(..., shard="I/N")`` on each worker and join the stores with ``dior merge``.

Exactly once: Ray Data runs a batch again when its worker dies, and keeps only the output of
batches that finished, so every (image, condition) appears once in ``out`` (tests/python/test_ray.py
kills a worker mid-run). A batch is a pure function of its paths, so a retry gives the same bits.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ._embedder import Embedder


class DiorBatchEmbedder:
    """For ``ds.map_batches(DiorBatchEmbedder, fn_constructor_kwargs=..., concurrency=N)``: a batch
    with a ``path_column`` of image paths in, one row per (image, condition) out, with columns
    ``path``, ``condition`` ("" for none) and ``vector`` (float32 list)."""

    def __init__(self, conditions: Sequence[Optional[str]] = (None,), path_column: str = "path",
                 **embedder_options: Any) -> None:
        self.conditions = list(conditions)
        self.path_column = path_column
        self.embedder = Embedder(**embedder_options)

    def __call__(self, batch: dict) -> dict:
        paths = [str(p) for p in batch[self.path_column]]
        x = self.embedder.embed(paths, self.conditions) if paths else np.zeros((0, len(self.conditions), 0), np.float32)
        k = len(self.conditions)
        return {
            "path": np.repeat(np.array(paths, dtype=object), k),
            "condition": np.array([c or "" for c in self.conditions] * len(paths), dtype=object),
            "vector": list(x.reshape(len(paths) * k, -1)),
        }


def embed_dataset(ds: Any, conditions: Sequence[Optional[str]] = (None,), path_column: str = "path",
                  concurrency: int = 1, batch_size: int = 8, num_cpus: float = 1, max_restarts: int = -1,
                  **embedder_options: Any) -> Any:
    """``ds`` (a Ray Dataset with image paths) embedded by ``concurrency`` workers; each worker is
    restarted when it dies (``max_restarts``) and its unfinished batches run again.

    ``num_cpus`` is the share Ray reserves for each worker, ``threads`` (an Embedder option) the
    threads it computes with. Reserve less than all of a node's CPUs for the workers: Ray Data's
    own tasks need some, and a node whose CPUs are all held by workers stalled for ~20 s at a time
    here (docs/scale-out.md)."""
    return ds.map_batches(
        DiorBatchEmbedder,
        fn_constructor_kwargs=dict(conditions=list(conditions), path_column=path_column, **embedder_options),
        batch_size=batch_size,
        concurrency=concurrency,
        num_cpus=num_cpus,
        batch_format="numpy",
        max_restarts=max_restarts,
        max_task_retries=-1,
    )
