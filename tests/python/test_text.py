"""dior.Clip and dior.SentenceEncoder: the vectors of `dior embed-text` and `dior embed --method clip`,
bit for bit, in the habits of sentence-transformers' encode (batching, normalisation, progress)."""
import json
import os
import subprocess

import numpy as np
import pytest

import dior

TEXTS = ["a photo of a red car", "빨간 자동차", "cafe\u0301 crème", "[MASK] car", "<|endoftext|> inside", "🚗", ""]


@pytest.fixture(scope="module")
def clip_path():
    return os.path.join(os.environ["DIOR_TEST_DATA"], "hf-clip", "gelu", "f32.gguf")


@pytest.fixture(scope="module")
def sentence_path():
    return os.path.join(os.environ["DIOR_TEST_DATA"], "sentence-minilm", "f32.gguf")


def cli_vectors(dior_bin, *args):
    out = subprocess.run([dior_bin, "embed-text", "-t", "2", *args, *TEXTS], check=True, capture_output=True,
                         text=True).stdout
    return np.array([v["vector"] for v in json.loads(out)["vectors"]], dtype=np.float32)


def test_clip_text_and_image_features_are_the_commands(dior_bin, clip_path, images, tmp_path):
    clip = dior.Clip(clip_path, threads=2)
    x = clip.embed_text(TEXTS)
    assert x.shape == (len(TEXTS), clip.dim) and x.dtype == np.float32
    assert np.array_equal(x, cli_vectors(dior_bin, "--clip-model", clip_path))
    assert np.array_equal(clip.embed_text(TEXTS[1]), x[1])  # one str: one row, 1-D

    folder = tmp_path / "imgs"
    folder.mkdir()
    for p in images:
        os.symlink(p, folder / os.path.basename(p))
    db = str(tmp_path / "e.db")
    subprocess.run([dior_bin, "embed", "--method", "clip", "--clip-model", clip_path, "-t", "2", str(folder), "-o", db],
                   check=True, capture_output=True)
    st = dior.Store.open(db)
    stored, paths = st.vectors(st.settings()[0]["id"])
    mine = clip.embed_image([str(folder / os.path.basename(p)) for p in paths])
    assert np.array_equal(mine, stored)  # the 760 px image downscaled to 700 first, as dior embed does
    assert np.array_equal(clip.embed_image(str(folder / os.path.basename(paths[0]))), stored[0])


def test_sentence_encoder_is_the_command_in_sentence_transformers_shape(dior_bin, sentence_path):
    enc = dior.SentenceEncoder(sentence_path, threads=2)
    assert enc.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert enc.max_seq_length == 256 and enc.get_sentence_embedding_dimension() == enc.dim
    x = enc.encode(TEXTS)
    assert x.shape == (len(TEXTS), enc.dim) and x.dtype == np.float32
    assert np.array_equal(x, cli_vectors(dior_bin, "--sentence-model", sentence_path))
    assert np.array_equal(enc.encode(TEXTS, batch_size=1), x)  # batching changes nothing
    assert np.array_equal(enc.encode(TEXTS[0]), x[0])
    assert enc.encode([]).shape == (0, enc.dim)
    rows = enc.encode(TEXTS, convert_to_numpy=False)
    assert isinstance(rows, list) and all(np.array_equal(r, x[i]) for i, r in enumerate(rows))
    n = enc.encode(TEXTS, normalize_embeddings=True)
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-6)
    assert np.allclose(n, x / np.linalg.norm(x, axis=1, keepdims=True), atol=1e-7)
    ids = enc.tokenize("[MASK] car")
    assert ids[0] == enc.tokenize("")[0] and ids[-1] == enc.tokenize("")[-1] and len(ids) == 4  # [CLS] [MASK] car [SEP]


def test_progress_bar_and_mistakes(sentence_path, capsys):
    pytest.importorskip("tqdm")
    enc = dior.SentenceEncoder(sentence_path, threads=2)
    enc.encode(TEXTS, batch_size=2, show_progress_bar=True)
    assert "Batches" in capsys.readouterr().err
    with pytest.raises(dior.Error, match="not bytes"):
        enc.encode(b"bytes")
    with pytest.raises(dior.Error, match="text 1 is a int"):
        enc.encode(["ok", 3])
    with pytest.raises(dior.Error, match="no UTF-8 form"):
        enc.encode(["\ud800"])
    with pytest.raises(dior.Error, match="batch_size"):
        enc.encode(TEXTS, batch_size=0)
    with pytest.raises(dior.Error, match="not supported here: prompt_name"):
        enc.encode(TEXTS, prompt_name="query")
    with pytest.raises(dior.Error, match="not a dior CLIP model"):
        dior.Clip(sentence_path)
