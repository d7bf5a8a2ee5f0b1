#!/usr/bin/env python3
"""Converts a Hugging Face CLIP checkpoint into one GGUF file for dior.cpp: both towers, both
projections, the tokenizer and the image preprocessing parameters.

    python tools/convert-clip/convert_clip_to_gguf.py CLIP_DIR --outfile clip-vit-large-patch14-f16.gguf \
        --outtype f16 --model-id openai/clip-vit-large-patch14

CLIP_DIR is a folder as published on Hugging Face: config.json, model.safetensors (or
pytorch_model.bin, which needs torch), vocab.json + merges.txt (or tokenizer.json) and
preprocessor_config.json. --outtype: f32, f16 (matrices in f16, the rest f32) or q8_0 (matrices in
Q8_0). The GGUF writer is llama.cpp's own gguf-py, from the pinned tree: --gguf-py DIR, or found in
dior's cache (scripts/setup.sh puts it there).
"""
import argparse
import glob
import json
import os
import sys

import numpy as np

ARCH = "dior-clip"


def find_gguf_py(explicit):
    if explicit:
        return explicit
    cache = os.environ.get("DIOR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "dior.cpp")
    found = sorted(glob.glob(os.path.join(cache, "install-*", "source", "gguf-py")))
    if not found:
        sys.exit("error: gguf-py not found; run scripts/setup.sh or pass --gguf-py LLAMA_CPP/gguf-py")
    return found[0]


def load_tensors(d):
    st = os.path.join(d, "model.safetensors")
    if os.path.exists(st):
        from safetensors.numpy import load_file
        return load_file(st)
    bins = os.path.join(d, "pytorch_model.bin")
    if os.path.exists(bins):
        import torch
        return {k: v.float().numpy() for k, v in torch.load(bins, map_location="cpu", weights_only=True).items()}
    sys.exit(f"error: {d}: no model.safetensors or pytorch_model.bin")


def load_tokenizer(d):
    vocab_file, merges_file, tok_file = (os.path.join(d, f) for f in ("vocab.json", "merges.txt", "tokenizer.json"))
    if os.path.exists(vocab_file) and os.path.exists(merges_file):
        with open(vocab_file, encoding="utf-8") as f:
            vocab = json.load(f)
        with open(merges_file, encoding="utf-8") as f:
            merges = [m for m in f.read().split("\n") if m and not m.startswith("#version")]
    elif os.path.exists(tok_file):
        with open(tok_file, encoding="utf-8") as f:
            model = json.load(f)["model"]
        vocab = model["vocab"]
        merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    else:
        sys.exit(f"error: {d}: no vocab.json + merges.txt or tokenizer.json")
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    if any(t is None for t in tokens):
        sys.exit("error: the vocabulary's ids are not 0..N-1")
    return tokens, merges


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--outfile", required=True)
    ap.add_argument("--outtype", choices=["f32", "f16", "q8_0"], default="f16")
    ap.add_argument("--model-id", help="the model's name, e.g. openai/clip-vit-large-patch14 (names exports)")
    ap.add_argument("--gguf-py", help="llama.cpp's gguf-py folder (default: the pinned tree in dior's cache)")
    a = ap.parse_args()
    sys.path.insert(0, find_gguf_py(a.gguf_py))
    import gguf  # noqa: E402

    with open(os.path.join(a.model_dir, "config.json")) as f:
        cfg = json.load(f)
    tc, vc = cfg["text_config"], cfg["vision_config"]
    pp_path = os.path.join(a.model_dir, "preprocessor_config.json")
    pp = json.load(open(pp_path)) if os.path.exists(pp_path) else {}
    tensors = load_tensors(a.model_dir)
    tokens, merges = load_tokenizer(a.model_dir)

    w = gguf.GGUFWriter(a.outfile, ARCH)
    w.add_name(a.model_id or os.path.basename(os.path.normpath(a.model_dir)))
    w.add_string(f"{ARCH}.model_id", a.model_id or os.path.basename(os.path.normpath(a.model_dir)))
    w.add_uint32(f"{ARCH}.projection_dim", int(cfg.get("projection_dim", 512)))
    for tower, c in (("vision", vc), ("text", tc)):
        w.add_uint32(f"{ARCH}.{tower}.hidden_size", int(c["hidden_size"]))
        w.add_uint32(f"{ARCH}.{tower}.intermediate_size", int(c["intermediate_size"]))
        w.add_uint32(f"{ARCH}.{tower}.num_hidden_layers", int(c["num_hidden_layers"]))
        w.add_uint32(f"{ARCH}.{tower}.num_attention_heads", int(c["num_attention_heads"]))
        w.add_float32(f"{ARCH}.{tower}.layer_norm_eps", float(c.get("layer_norm_eps", 1e-5)))
        act = c.get("hidden_act", "quick_gelu")
        if act not in ("quick_gelu", "gelu"):
            sys.exit(f"error: {tower} activation {act} is not supported (quick_gelu, gelu)")
        w.add_string(f"{ARCH}.{tower}.hidden_act", act)
    w.add_uint32(f"{ARCH}.vision.image_size", int(vc["image_size"]))
    w.add_uint32(f"{ARCH}.vision.patch_size", int(vc["patch_size"]))
    w.add_uint32(f"{ARCH}.text.max_position_embeddings", int(tc.get("max_position_embeddings", 77)))
    w.add_uint32(f"{ARCH}.text.vocab_size", int(tc["vocab_size"]))
    # The text feature is pooled at the first end-of-text token; the legacy configs (eos_token_id 2)
    # take argmax(input_ids), which is the same token with CLIP's vocabulary (<|endoftext|> has the
    # largest id).
    eos = len(tokens) - 1 if "<|endoftext|>" not in tokens else tokens.index("<|endoftext|>")
    w.add_uint32(f"{ARCH}.text.eos_token_id", eos)

    size = pp.get("size", {"shortest_edge": vc["image_size"]})
    crop = pp.get("crop_size", {"height": vc["image_size"], "width": vc["image_size"]})
    if isinstance(size, int):
        size = {"shortest_edge": size}
    if isinstance(crop, int):
        crop = {"height": crop, "width": crop}
    if "shortest_edge" not in size:
        sys.exit(f"error: preprocessor size {size}: only shortest_edge resizing is supported")
    w.add_uint32(f"{ARCH}.preprocess.shortest_edge", int(size["shortest_edge"]))
    w.add_bool(f"{ARCH}.preprocess.do_center_crop", bool(pp.get("do_center_crop", True)))
    w.add_uint32(f"{ARCH}.preprocess.crop_height", int(crop["height"]))
    w.add_uint32(f"{ARCH}.preprocess.crop_width", int(crop["width"]))
    w.add_uint32(f"{ARCH}.preprocess.resample", int(pp.get("resample", 3)))
    w.add_float32(f"{ARCH}.preprocess.rescale_factor", float(pp.get("rescale_factor", 1 / 255)))
    w.add_array(f"{ARCH}.preprocess.image_mean", [float(v) for v in pp.get("image_mean", [0.48145466, 0.4578275, 0.40821073])])
    w.add_array(f"{ARCH}.preprocess.image_std", [float(v) for v in pp.get("image_std", [0.26862954, 0.26130258, 0.27577711])])
    w.add_string("tokenizer.ggml.model", "clip-bpe")
    w.add_array("tokenizer.ggml.tokens", tokens)
    w.add_array("tokenizer.ggml.merges", merges)

    n = 0
    for name in sorted(tensors):
        if name.endswith("position_ids") or name == "logit_scale":
            continue
        t = np.ascontiguousarray(tensors[name], dtype=np.float32)
        matrix = t.ndim == 2 and not name.endswith("embedding.weight")
        conv = name.endswith("patch_embedding.weight")
        # The patch convolution stays f32: ggml's im2col takes the kernel's type, so an f16 kernel
        # would round the pixels themselves to f16.
        if a.outtype == "f32" or conv or not matrix:
            w.add_tensor(name, t)
        elif a.outtype == "f16" or t.shape[-1] % 32 != 0:
            w.add_tensor(name, t.astype(np.float16))
        else:
            q = gguf.quants.quantize(t, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        n += 1
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {a.outfile}: {n} tensors ({a.outtype}), vocabulary {len(tokens)}, merges {len(merges)}")


if __name__ == "__main__":
    main()
