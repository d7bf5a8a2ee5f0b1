"""dior.cpp for Python: training-free conditional image embeddings (DIOR) on llama.cpp.

    import dior
    emb = dior.Embedder(hf="ggml-org/Qwen2.5-VL-3B-Instruct-GGUF")      # or model=..., mmproj=...
    x = emb.embed(["a.jpg", "b.jpg"], ["car color", None])            # (2, 2, width) float32

The vectors are those of ``dior embed`` with the same options, bit for bit. Every computation
releases the GIL. Errors are ``dior.Error`` (a RuntimeError) with the messages of the command line.
"""
from __future__ import annotations

import os
import subprocess
import sys


def _openblas_environment() -> None:
    """OpenBLAS reads its kernel choice and thread spinning when it loads, so the settings the dior
    command starts with (see dior::openblas_environment) are found by a short child process and set
    here, before this process loads the library: the same kernels, the same vectors."""
    if os.environ.get("DIOR_OPENBLAS_PROBE") or (
            "OPENBLAS_CORETYPE" in os.environ and "OPENBLAS_THREAD_TIMEOUT" in os.environ):
        return
    try:
        out = subprocess.run([sys.executable, "-c", "from dior import _dior; "
                              "print('\\n'.join(k + '=' + v for k, v in _dior.openblas_environment()))"],
                             env=dict(os.environ, DIOR_OPENBLAS_PROBE="1"), capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.SubprocessError):
        return
    for line in out.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.startswith("OPENBLAS_") and value:
            os.environ.setdefault(key, value)


_openblas_environment()

from . import _dior  # noqa: E402
from ._dior import Error, Store, engine_version  # noqa: E402,F401
from ._embedder import Embedder, evaluate  # noqa: E402,F401

__all__ = ["Embedder", "Error", "Store", "evaluate", "engine_version"]
