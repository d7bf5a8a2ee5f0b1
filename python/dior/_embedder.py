"""The Python layer over dior._dior: image kinds, the hub, label lists."""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Hashable, Iterable, Optional, Sequence, Union

import numpy as np

from . import _dior

Image = Union[str, bytes, np.ndarray, Any]  # a path, encoded bytes, an RGB array or a PIL image
Condition = Optional[str]


def _as_item(img: Any) -> Any:
    if isinstance(img, (str, bytes, np.ndarray)):
        if isinstance(img, np.ndarray):
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise _dior.Error(f"an image array must be uint8 of shape (height, width, 3), not {img.dtype} "
                                  f"{img.shape}")
            return np.ascontiguousarray(img)
        return img
    if hasattr(img, "__fspath__"):
        return str(img.__fspath__())
    if hasattr(img, "convert") and hasattr(img, "size"):  # a PIL image: RGB as PIL's convert("RGB")
        return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))
    raise _dior.Error(f"not an image: {type(img).__name__} (give a path, bytes, a PIL image or a uint8 array)")


Progress = Callable[[str, int, int], None]  # (file, bytes so far, bytes in all or 0)


class DownloadBar:
    """What ``dior embed -hf`` shows while it downloads, on stderr: a line per file, redrawn on a
    terminal (every 0.2 s), printed every 5 s otherwise; nothing for a file the cache had whole."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream or sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._file: Optional[str] = None
        self._open = self._ended = False
        self._start = 0
        self._t0 = self._last = 0.0

    def __call__(self, file: str, done: int, total: int) -> None:
        now = time.monotonic()
        if file != self._file:
            self._end_line()
            self._file, self._start, self._t0, self._last, self._ended = file, done, now, 0.0, False
        end = total > 0 and done >= total
        if self._ended or (end and done == self._start):
            self._ended = True
            return
        if not end and now - self._last < (0.2 if self._tty else 5.0):
            return
        self._last = now
        rate = (done - self._start) / max(now - self._t0, 1e-9) / 2**20
        text = f"{file} {done / 2**20:.1f}" + (f" / {total / 2**20:.1f}" if total else "") + f" MiB, {rate:.1f} MiB/s"
        if self._tty:
            self._stream.write("\r\033[K" + text)
            self._open = True
        else:
            self._stream.write("download: " + text + "\n")
        self._stream.flush()
        if end:
            self._end_line()
            self._ended = True

    def _end_line(self) -> None:
        if self._open:
            self._stream.write("\n")
            self._stream.flush()
            self._open = False


class Embedder:
    """A vision-language model that turns (image, condition) pairs into DIOR vectors.

    Args:
        model, mmproj: the GGUF text model and its projector; or
        hf: ``"owner/name[:QUANT]"`` of a Hugging Face repository, downloaded into its cache (as
            ``dior embed -hf``); ``hf_token`` and ``offline`` as ``--hf-token`` and ``--offline``;
            ``progress``: True shows each file's download on stderr (``DownloadBar``), False
            nothing, or a callable ``(file, done, total)`` of your own. Ctrl-C, or an exception
            the callable raises, stops the download; a later call resumes it.
        layer, token, prompt, image_max_size, threads, ...: as the options of ``dior embed``
            (``layer=-1``: the last hidden state; ``token=-1``: the last prompt token).
        image_batch: images evaluated together by one ``embed`` call (``"auto"``: one at a time
            on a CPU, up to 16 on a GPU), as ``dior embed --image-batch``.
    """

    def __init__(self, model: str = "", mmproj: str = "", *, hf: str = "", hf_token: str = "",
                 offline: bool = False, progress: Union[bool, Progress] = True, threads: int = 0, layer: int = -1, token: int = -1,
                 prompt: str = "describe", image_max_size: int = 700, ctx_size: int = 4096,
                 batch_size: int = 512, gpu_layers: int = -1, flash_attn: bool = False, kv_f16: bool = False,
                 vision_flash_attn: bool = True, image_processor: str = "fast", reuse_prefix: bool = True,
                 verbose: bool = False, image_batch: Union[int, str] = "auto") -> None:
        if hf:
            if model:
                raise _dior.Error(f"give model= or hf={hf!r}, not both")
            show = DownloadBar() if progress is True else (progress or None)
            model, fetched_mmproj = _dior.hub_fetch_model(hf, hf_token, offline, show)
            mmproj = mmproj or fetched_mmproj
        self._impl = _dior.Embedder(str(model), str(mmproj), threads, layer, token, prompt, image_max_size,
                                    ctx_size, batch_size, gpu_layers, flash_attn, kv_f16, vision_flash_attn,
                                    image_processor, reuse_prefix, verbose, str(image_batch))

    @property
    def n_embd(self) -> int:
        """The width of every vector."""
        return self._impl.n_embd

    def embed(self, images: Union[Image, Sequence[Image]],
              conditions: Union[Condition, Sequence[Condition]] = None, errors: str = "raise") -> Any:
        """Vectors of every image under every condition.

        ``images``: one image or a sequence (paths, bytes, PIL images, uint8 RGB arrays).
        ``conditions``: one condition (``None``: the prompt without one) or a sequence.
        Returns float32 of shape (images, conditions, width), dropping the dimensions given as
        single items: ``embed("a.jpg", "car color")`` has shape (width,).
        ``errors="raise"`` (default): the first image that cannot be read or embedded raises
        ``dior.Error``. ``errors="return"``: returns ``(vectors, failures)`` instead, the failed
        images' rows NaN and ``failures`` a list of ``(index, message)``, as ``dior embed``
        records a bad image and goes on.
        """
        if errors not in ("raise", "return"):
            raise _dior.Error(f"errors={errors!r}: use 'raise' or 'return'")
        keep_going = errors == "return"
        single_image = isinstance(images, (str, bytes, np.ndarray)) or not isinstance(images, Sequence)
        items, failures = [], []
        for i, img in enumerate([images] if single_image else images):
            try:
                items.append(_as_item(img))
            except _dior.Error as e:
                if not keep_going:
                    raise
                items.append(b"")  # refused by the module, reported below with its own message
                failures.append((i, str(e)))
        single_condition = conditions is None or isinstance(conditions, str)
        out, failed = self._impl.embed(items, conditions if single_condition else list(conditions), keep_going)
        if single_condition:
            out = out[:, 0, :]
        out = out[0] if single_image else out
        if not keep_going:
            return out
        given = {i for i, _ in failures}
        return out, sorted(failures + [(i, m) for i, m in failed if i not in given])


def evaluate(x: np.ndarray, labels: Iterable[Hashable], clustering: bool = True) -> dict:
    """pytorch-metric-learning's AccuracyCalculator (2.9, defaults) on raw vectors, as ``dior eval``:
    ``mean_average_precision_at_r``, ``precision_at_1`` and, with ``clustering``, ``NMI`` and ``AMI``
    (fractions), plus ``n_queries``. ``labels``: one hashable label per row."""
    ids: dict = {}
    codes = [ids.setdefault(label, len(ids)) for label in labels]
    return _dior.evaluate(np.ascontiguousarray(x, dtype=np.float32), codes, clustering)
