"""dior.cpp for Python: training-free conditional image embeddings (DIOR) on llama.cpp.

    import dior
    emb = dior.Embedder(hf="ggml-org/Qwen2.5-VL-3B-Instruct-GGUF")      # or model=..., mmproj=...
    x = emb.embed(["a.jpg", "b.jpg"], ["car color", None])            # (2, 2, width) float32

    # a whole folder into a store, resumable, as `dior embed` (progress bar, failures per image)
    r = dior.embed("photos/", ["car color"], store="e.db", model="text.gguf", mmproj="mmproj.gguf")
    df = dior.Store.open("e.db").to_pandas()                          # path, condition, vector, ...

    clip = dior.Clip("clip-f32.gguf")                                 # the baselines' models
    t = clip.embed_text("a photo of a red car"); i = clip.embed_image("a.jpg")
    s = dior.SentenceEncoder("all-MiniLM-L6-v2-f32.gguf").encode(["a red car"], normalize_embeddings=True)

The vectors are those of ``dior embed`` with the same options, bit for bit. Every computation
releases the GIL. Errors are ``dior.Error`` (a RuntimeError) with the messages of the command line.
"""
from __future__ import annotations

import os
import subprocess
import sys


_STARTUP_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT")


def _startup_environment() -> None:
    """OpenBLAS reads its kernel choice and thread spinning when it loads, libgomp (ggml's CPU
    threads) its spinning, so the settings the dior command starts with (see
    dior::startup_environment) are found by a short child process and set here, before this process
    loads the libraries: the same kernels, the same vectors, the same speed."""
    if os.environ.get("DIOR_STARTUP_PROBE") or all(v in os.environ for v in _STARTUP_VARIABLES):
        return
    try:
        out = subprocess.run([sys.executable, "-c", "from dior import _dior; "
                              "print('\\n'.join(k + '=' + v for k, v in _dior.startup_environment()))"],
                             env=dict(os.environ, DIOR_STARTUP_PROBE="1"), capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.SubprocessError):
        return
    for line in out.stdout.splitlines():
        key, _, value = line.partition("=")
        if key in _STARTUP_VARIABLES and value:
            os.environ.setdefault(key, value)


_startup_environment()

from . import _dior  # noqa: E402
from ._dior import Error, engine_version  # noqa: E402,F401
from ._embedder import DownloadBar, Embedder, evaluate  # noqa: E402,F401
from ._run import RunResult, embed  # noqa: E402,F401
from ._store import Store  # noqa: E402,F401
from ._text import Clip, SentenceEncoder  # noqa: E402,F401

__all__ = ["Clip", "DownloadBar", "Embedder", "Error", "RunResult", "SentenceEncoder", "Store", "embed", "evaluate",
           "engine_version"]
