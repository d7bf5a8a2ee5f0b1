"""The real Qwen2 BPE tokenizer, rebuilt from llama.cpp's models/ggml-vocab-qwen2.gguf: the test
oracles' tokenizer for every tiny model (its pre-tokenizer is one llama.cpp's converter knows)."""
import json
import os

from transformers import Qwen2TokenizerFast

N_BASE = 151643  # the byte-level BPE vocabulary; added tokens follow from this id on


def write_vocab(src, model_dir):
    """vocab.json and merges.txt of the Qwen2 tokenizer into model_dir; returns their paths."""
    import sys
    sys.path.insert(0, os.path.join(src, "gguf-py"))
    from gguf import GGUFReader
    r = GGUFReader(os.path.join(src, "models", "ggml-vocab-qwen2.gguf"))
    toks = r.fields["tokenizer.ggml.tokens"]
    merges = r.fields["tokenizer.ggml.merges"]
    vocab = {bytes(toks.parts[toks.data[i]]).decode("utf-8"): i for i in range(N_BASE)}
    os.makedirs(model_dir, exist_ok=True)
    vocab_file = os.path.join(model_dir, "vocab.json")
    merges_file = os.path.join(model_dir, "merges.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(merges_file, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for i in range(len(merges.data)):
            f.write(bytes(merges.parts[merges.data[i]]).decode("utf-8") + "\n")
    return vocab_file, merges_file


def qwen2_tokenizer(src, model_dir, **kwargs):
    """A Qwen2TokenizerFast over the real vocabulary; kwargs as Qwen2TokenizerFast takes them."""
    vocab_file, merges_file = write_vocab(src, model_dir)
    return Qwen2TokenizerFast(vocab_file=vocab_file, merges_file=merges_file, **kwargs)
