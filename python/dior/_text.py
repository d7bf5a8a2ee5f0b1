"""The baselines' models for Python: CLIP (image and text features) and sentence encoders (in the
shape of sentence-transformers' ``encode``). The vectors are those of ``dior embed --method clip``
and ``dior embed-text``, bit for bit: the same library calls."""
from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from . import _dior
from ._embedder import Image, _as_item

Texts = Union[str, Sequence[str]]


def _texts(texts: Texts, what: str) -> tuple[list[str], bool]:
    """(the texts as a list, whether one str was given)."""
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, (bytes, bytearray)):
        raise _dior.Error(f"{what}: give str, not bytes (decode them first)")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise _dior.Error(f"{what}: text {i} is a {type(t).__name__}, not a str")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError:
            raise _dior.Error(f"{what}: text {i} {t!r} has no UTF-8 form (a lone surrogate?)") from None
    return out, False


class Clip:
    """A CLIP model (a GGUF from tools/convert-clip): ``get_image_features`` and
    ``get_text_features`` of Hugging Face's CLIPModel, unnormalised, with the reference's
    preprocessing (images downscaled to ``image_max_size`` first, as ``dior embed`` does).

        clip = dior.Clip("clip-vit-base-patch32-f32.gguf")
        img = clip.embed_image(["a.jpg", "b.png"])        # (2, dim) float32
        txt = clip.embed_text("a photo of a red car")     # (dim,)
    """

    def __init__(self, path: str, threads: int = 0, gpu: bool = True, image_max_size: int = 700) -> None:
        self._m = _dior.ClipModel(str(path), threads, gpu, image_max_size)

    @property
    def dim(self) -> int:
        return self._m.dim

    @property
    def name(self) -> str:
        return self._m.name

    def embed_image(self, images: Union[Image, Iterable[Image]]) -> np.ndarray:
        """Image features: (N, dim) for a list, (dim,) for one image (a path, bytes, a PIL image
        or a uint8 (height, width, 3) array)."""
        one = isinstance(images, (str, bytes, np.ndarray)) or hasattr(images, "__fspath__") or hasattr(images, "convert")
        items = [_as_item(images)] if one else [_as_item(i) for i in images]
        out = self._m.embed_images(items)
        return out[0] if one else out

    def embed_text(self, texts: Texts) -> np.ndarray:
        """Text features: (N, dim) for a list, (dim,) for one str (tokenized as CLIPTokenizerFast,
        truncated to 77 tokens)."""
        items, one = _texts(texts, "embed_text")
        out = self._m.embed_texts(items)
        return out[0] if one else out

    def tokenize(self, text: str) -> list[int]:
        return self._m.tokenize(_texts(text, "tokenize")[0][0])


class SentenceEncoder:
    """A sentence-transformers model (a GGUF from tools/convert-sentence) with the habits of
    ``SentenceTransformer.encode``:

        enc = dior.SentenceEncoder("all-MiniLM-L6-v2-f32.gguf")
        x = enc.encode(["a red car", "a blue bird"], batch_size=32, normalize_embeddings=True)
    """

    def __init__(self, path: str, threads: int = 0, gpu_layers: int = -1, verbose: bool = False) -> None:
        self._m = _dior.SentenceModel(str(path), threads, gpu_layers, verbose)

    @property
    def dim(self) -> int:
        return self._m.dim

    def get_sentence_embedding_dimension(self) -> int:
        return self._m.dim

    @property
    def max_seq_length(self) -> int:
        return self._m.max_seq_length

    @property
    def name(self) -> str:
        return self._m.name

    def tokenize(self, text: str) -> list[int]:
        """The token ids the model sees (special tokens added, truncated to max_seq_length)."""
        return self._m.tokenize(_texts(text, "tokenize")[0][0])

    def encode(self, sentences: Texts, batch_size: int = 32, show_progress_bar: Optional[bool] = None,
               convert_to_numpy: bool = True, normalize_embeddings: bool = False, **unused: Any) -> Any:
        """(N, dim) float32 for a list, (dim,) for one str; ``normalize_embeddings`` divides each
        row by its L2 norm (max(norm, 1e-12)); ``show_progress_bar`` draws a tqdm bar over the
        batches (None: no bar, as sentence-transformers when logging is not verbose).
        ``convert_to_numpy=False`` returns a list of 1-D arrays. The GIL is released per batch."""
        if unused:
            raise _dior.Error(f"encode: options not supported here: {', '.join(sorted(unused))}")
        if batch_size < 1:
            raise _dior.Error("encode: batch_size must be at least 1")
        items, one = _texts(sentences, "encode")
        starts = range(0, len(items), batch_size)
        if show_progress_bar:
            from tqdm.auto import tqdm  # an optional import, as in sentence-transformers
            starts = tqdm(starts, desc="Batches")
        parts = [self._m.encode(items[s:s + batch_size]) for s in starts]
        out = np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)
        if normalize_embeddings:
            norms = np.linalg.norm(out.astype(np.float64), axis=1, keepdims=True)
            out = (out / np.maximum(norms, 1e-12)).astype(np.float32)
        if one:
            return out[0]
        return out if convert_to_numpy else list(out)
