"""Runs into a store (the library's run, as ``dior embed``): resume, progress, per-image failures."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

from . import _dior
from ._embedder import DownloadBar

Condition = Optional[str]
RunProgress = Callable[[int, int, str], None]  # (images done, images in all, the image's path)


@dataclass
class RunResult:
    """What a run did. ``failures`` lists this run's failed images as (path, reason); the store keeps
    them too (``dior status``). ``settings``: id, name (the reference's folder name), condition and
    layer of each setting the run filled."""

    store: str
    images: int = 0
    embedded: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    settings: list[dict[str, Any]] = field(default_factory=list)
    width: int = 0
    seconds: float = 0.0


def print_stderr(line: str) -> None:
    print(line, file=sys.stderr)


class _TqdmProgress:
    """A tqdm bar over the run's images (tqdm.auto: a widget in notebooks), messages written above it."""

    def __init__(self, tqdm: Any) -> None:
        self._tqdm = tqdm
        self._bar: Any = None

    def __call__(self, done: int, total: int, path: str) -> None:
        if self._bar is None:
            self._bar = self._tqdm(total=total, unit="img", desc="dior", file=sys.stderr)
        if path:
            self._bar.set_postfix_str(os.path.basename(path), refresh=False)
        self._bar.update(done - self._bar.n)

    def message(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            print_stderr(line)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _LineProgress:
    """Without tqdm: a line every few seconds on stderr, as ``dior embed`` prints when not on a terminal."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self, done: int, total: int, path: str) -> None:
        now = time.monotonic()
        if done and (done == total or now - self._last >= 5.0):
            print(f"progress: {done}/{total} images", file=sys.stderr)
            self._last = now

    message = staticmethod(print_stderr)

    def close(self) -> None:
        pass


def _default_progress() -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _LineProgress()
    return _TqdmProgress(tqdm)


def embed(images: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]] = (),
          conditions: Union[Condition, Sequence[Condition], None] = None, *, store: Union[str, os.PathLike] = "embeddings.db",
          model: str = "", mmproj: str = "", hf: str = "", hf_token: str = "", offline: bool = False,
          method: str = "dior", layers: Union[int, str, Sequence[Union[int, str]]] = (),
          progress: Union[bool, RunProgress] = True, **options: Any) -> RunResult:
    """Embeds images into a store, as ``dior embed`` does, and returns what happened.

    The store (SQLite, created if missing) keeps every image's vectors as soon as they are computed:
    a run that stops (Ctrl-C, an exception in ``progress``, a killed process) and is started again
    with the same arguments embeds only what is missing, and stores exactly what one whole run
    stores. A bad image does not stop the run: it is reported in ``RunResult.failures``.

    Args:
        images: image files and folders (their image files, sorted), or a list of them; or none
            with ``dataset=`` and ``datasets_dir=`` (one of the reference's datasets).
        conditions: a condition, a list of them (``None`` in it: the prompt without a condition),
            or ``None`` for the default: a dataset's aspects, else the prompt without a condition.
        store: the SQLite file.
        model, mmproj / hf, hf_token, offline: the model, as for ``Embedder``.
        method: ``dior`` (default), ``clip``, ``indirect`` or ``generative``.
        layers: hidden-state indices (``-1``: the last; ``"all"``).
        progress: True: a tqdm bar when tqdm is installed (else a line every few seconds), False:
            quiet, or a callable ``(done, total, path)``.
        options: the other options of ``dior embed`` under their Python names: ``list_file``,
            ``dataset``, ``datasets_dir``, ``shard`` ("I/N"), ``name``, ``threads``, ``ctx_size``,
            ``batch_size``, ``image_batch``, ``gpu_layers``, ``flash_attn``, ``kv_f16``, ``vision_flash_attn``,
            ``image_processor``, ``verbose``, ``model_id``, ``prompt``, ``token``,
            ``image_max_size``, ``positions``, ``reuse_prefix``, ``parse_special``, ``source``,
            ``max_new_tokens``, ``temperature``, ``do_sample``, ``top_k``, ``top_p``, ``seed``,
            ``repeat_penalty``, ``text_encoder``, ``text_encoder_id``, ``embed_text``,
            ``clip_model``, ``indirect_texts``, ``components``, ``indirect_seed``,
            ``max_file_size``, ``max_image_pixels``.

    Raises ``dior.Error`` for bad options, an unloadable model or a store that cannot be written
    (before anything is written, or keeping what was committed), and the exception that stopped
    the run (KeyboardInterrupt for Ctrl-C) after committing the image being embedded.
    """
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    if conditions is not None and (isinstance(conditions, str) or not isinstance(conditions, Sequence)):
        conditions = [conditions]
    if isinstance(layers, (int, str)):
        layers = [layers]
    if hf:
        if model:
            raise _dior.Error(f"give model= or hf={hf!r}, not both")
        model, fetched_mmproj = _dior.hub_fetch_model(hf, hf_token, offline, DownloadBar() if progress else None)
        mmproj = mmproj or fetched_mmproj
    run_options = dict(options, inputs=[os.fspath(p) for p in images], store=os.fspath(store), method=method,
                       model=str(model), mmproj=str(mmproj), layers=[str(layer) for layer in layers],
                       conditions=None if conditions is None else list(conditions))
    shown = _default_progress() if progress is True else None
    call: Optional[RunProgress] = shown if shown is not None else (progress or None)  # type: ignore[assignment]
    message = shown.message if shown is not None else (None if progress is False else print_stderr)
    try:
        r = _dior.run_embed(run_options, call, message)
    finally:
        if shown is not None:
            shown.close()
    return RunResult(store=os.fspath(store), images=r["images"], embedded=r["embedded"], skipped=r["skipped"],
                     failed=r["failed"], failures=list(r["failures"]), settings=list(r["settings"]),
                     width=r["width"], seconds=r["seconds"])
