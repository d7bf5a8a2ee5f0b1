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


# Qwen2-VL / Qwen2.5-VL's chat template (with its default system turn) and added special tokens
QWEN_VL_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] "
    "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content "
    "%}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}"
)
QWEN_VL_SPECIAL = ["<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
                "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
