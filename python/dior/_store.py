"""The store as Python sees it: settings, vectors, and rows for dataframes and Arrow tables."""
from __future__ import annotations

import os
from typing import Any, Optional, Union

import numpy as np

from . import _dior


class Store:
    """A store written by ``dior embed`` or ``dior.embed``: one SQLite file.

    ``settings()`` lists what it holds, ``vectors(id)`` gives one setting's matrix (rows ordered by
    image path) and the paths; ``to_pandas()`` / ``to_arrow()`` give rows of (setting, image, vector)
    for any dataframe or vector database (pandas / pyarrow, imported only when asked for)."""

    def __init__(self, impl: Any) -> None:
        self._impl = impl

    @staticmethod
    def open(path: Union[str, os.PathLike], read_only: bool = True) -> "Store":
        return Store(_dior.Store.open(os.fspath(path), read_only))

    def settings(self) -> list[dict[str, Any]]:
        return self._impl.settings()

    def vectors(self, setting_id: int) -> tuple[np.ndarray, list[str]]:
        return self._impl.vectors(setting_id)

    def merge(self, other_path: Union[str, os.PathLike]) -> None:
        self._impl.merge(os.fspath(other_path))

    def _rows(self, setting_id: Optional[int]) -> tuple[dict[str, list], list[np.ndarray]]:
        settings = self.settings()
        if setting_id is not None:
            settings = [s for s in settings if s["id"] == setting_id]
            if not settings:
                raise _dior.Error(f"the store has no setting {setting_id} (Store.settings() lists them)")
        cols: dict[str, list] = {k: [] for k in ("setting_id", "setting", "condition", "layer", "path")}
        vectors: list[np.ndarray] = []
        for s in settings:
            x, paths = self.vectors(s["id"])
            for path, v in zip(paths, x):
                cols["setting_id"].append(s["id"])
                cols["setting"].append(s["name"])
                cols["condition"].append(s["condition"])
                cols["layer"].append(s["layer"])
                cols["path"].append(path)
                vectors.append(v)
        return cols, vectors

    def to_pandas(self, setting_id: Optional[int] = None) -> Any:
        """A pandas DataFrame, one row per stored vector (of one setting, or of all): columns
        setting_id, setting (the reference's folder name), condition (None: no condition), layer,
        path, vector (a float32 array)."""
        import pandas as pd

        cols, vectors = self._rows(setting_id)
        return pd.DataFrame(dict(cols, vector=vectors))

    def to_arrow(self, setting_id: Optional[int] = None) -> Any:
        """A pyarrow Table with the columns of ``to_pandas``; vector is a fixed-size list of float32
        when every row has the same width (a list of float32 otherwise)."""
        import pyarrow as pa

        cols, vectors = self._rows(setting_id)
        widths = {len(v) for v in vectors}
        flat = pa.array(np.concatenate(vectors) if vectors else np.zeros(0, np.float32), type=pa.float32())
        if len(widths) <= 1:
            vector = pa.FixedSizeListArray.from_arrays(flat, widths.pop() if widths else 0)
        else:
            offsets = np.concatenate([[0], np.cumsum([len(v) for v in vectors])]).astype(np.int32)
            vector = pa.ListArray.from_arrays(pa.array(offsets), flat)
        return pa.table({
            "setting_id": pa.array(cols["setting_id"], type=pa.int64()),
            "setting": pa.array(cols["setting"], type=pa.string()),
            "condition": pa.array(cols["condition"], type=pa.string()),
            "layer": pa.array(cols["layer"], type=pa.int32()),
            "path": pa.array(cols["path"], type=pa.string()),
            "vector": vector,
        })
