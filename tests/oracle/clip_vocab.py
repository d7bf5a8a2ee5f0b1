"""The real CLIP BPE vocabulary as OpenAI's CLIP (and open_clip's SimpleTokenizer) builds it from
bpe_simple_vocab_16e6.txt.gz, which the open-clip-torch package ships."""
import gzip
import importlib.util
import json
import os

from transformers.models.clip.tokenization_clip import bytes_to_unicode


def clip_vocab():
    """(tokens in id order, merges in rank order)."""
    pkg = os.path.dirname(importlib.util.find_spec("open_clip").origin)
    with gzip.open(os.path.join(pkg, "bpe_simple_vocab_16e6.txt.gz")) as f:
        lines = f.read().decode("utf-8").split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408
    return vocab, merges


def write_hf_files(out):
    """vocab.json and merges.txt as Hugging Face's CLIP repositories have them; returns their paths."""
    tokens, merges = clip_vocab()
    vocab_file, merges_file = os.path.join(out, "vocab.json"), os.path.join(out, "merges.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(tokens)}, f, ensure_ascii=False)
    with open(merges_file, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return vocab_file, merges_file
