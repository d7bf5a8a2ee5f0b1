#!/usr/bin/env python3
"""Converts a sentence-transformers model folder into one GGUF for dior.cpp: the transformer and its
pooling by llama.cpp's own converter (convert_hf_to_gguf.py of the pinned tree), plus what
sentence-transformers applies after the pooling:

    Dense       as llama.cpp's own sentence-transformers Dense tensors (dense_2.weight, .bias,
                {arch}.dense_2_feat_in/out, {arch}.embedding_length_out), which llama.cpp applies
                after the pooling in its graph (dior's patch 0002 loads them for T5 encoders and BERT)
    Normalize   recorded, applied by dior
    {arch}.feed_forward.gelu_erf   BERT / MPNet whose hidden_act is "gelu" (erf; dior's patch 0010)
    tokenizer.ggml.precompiled_by_grapheme   SentencePiece unigram: normalize as Hugging Face's fast
                                   tokenizer does (dior's patch 0011)
    dior.sentence.modules          the module types after Pooling, in order, comma-separated
    dior.sentence.max_seq_length   the truncation length of the Transformer module
    dior.sentence.id               the model's id (--id; default: the folder's name)

    python tools/convert-sentence/convert_sentence_to_gguf.py all-MiniLM-L6-v2/ --outfile minilm-f32.gguf \
        --outtype f32 --id sentence-transformers/all-MiniLM-L6-v2
    python tools/convert-sentence/convert_sentence_to_gguf.py sentence-t5-base/ --outfile st5-base-f16.gguf \
        --outtype f16 --id sentence-transformers/sentence-t5-base

Supported: BERT-family, MPNet (all-mpnet-base-v2: written here as BERT plus its relative position
bias, which dior's patch 0003 applies) and T5 encoder (sentence-t5) transformers; mean, CLS or
last-token pooling;
one Dense (identity activation) and Normalize after it. --llama-cpp DIR: the llama.cpp source tree
(default: the pinned tree in dior's cache).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile


def find_llama_cpp(explicit):
    if explicit:
        return explicit
    cache = os.environ.get("DIOR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "dior.cpp")
    found = sorted(glob.glob(os.path.join(cache, "install-*", "source")))
    if not found:
        sys.exit("error: llama.cpp source not found; run scripts/setup.sh or pass --llama-cpp DIR")
    return found[0]


def load_dense(path):
    """A sentence-transformers Dense module: (weight (out, in), bias or None) in float32."""
    import numpy as np
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    act = cfg.get("activation_function", "torch.nn.modules.linear.Identity")
    if not act.endswith("Identity"):
        sys.exit(f"error: Dense with activation {act} is not supported (sentence-t5 uses Identity)")
    st = os.path.join(path, "model.safetensors")
    if os.path.exists(st):
        from safetensors.numpy import load_file
        tensors = load_file(st)
    else:
        import torch
        tensors = {k: v.numpy() for k, v in torch.load(os.path.join(path, "pytorch_model.bin"),
                                                        map_location="cpu").items()}
    weight = np.ascontiguousarray(tensors["linear.weight"], dtype=np.float32)
    bias = tensors.get("linear.bias")
    if weight.shape != (cfg["out_features"], cfg["in_features"]):
        sys.exit(f"error: Dense weight {weight.shape} does not match its config")
    return weight, None if bias is None else np.ascontiguousarray(bias, dtype=np.float32)


def load_weights(model_dir):
    """The transformer's tensors as float32 numpy arrays (safetensors or pytorch_model.bin)."""
    import numpy as np
    st = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(st):
        from safetensors.numpy import load_file
        return {k: np.asarray(v, dtype=np.float32) for k, v in load_file(st).items()}
    import torch
    sd = torch.load(os.path.join(model_dir, "pytorch_model.bin"), map_location="cpu")
    return {k: v.float().numpy() for k, v in sd.items()}


def write_mpnet_as_bert(gguf, model_dir, outfile, outtype):
    """An MPNet checkpoint (all-mpnet-base-v2) as llama.cpp's BERT architecture: the same layers,
    no token types, positions from padding_idx + 1 (the table is written from there), and MPNet's
    relative position bias table as enc.blk.0.attn_rel_b with its bucket count (dior's patch 0003
    adds it to the attention scores of every layer, as MPNet does). WordPiece vocabulary in
    llama.cpp's form ("##" pieces bare, word starts marked with U+2581, special tokens as they are)."""
    import numpy as np
    from transformers import AutoTokenizer
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    w = load_weights(model_dir)
    w = {k[len("mpnet."):] if k.startswith("mpnet.") else k: v for k, v in w.items()}
    offset = int(cfg.get("pad_token_id", 1)) + 1
    n_layer = int(cfg["num_hidden_layers"])
    out = gguf.GGUFWriter(outfile, "bert")
    out.add_name(os.path.basename(os.path.normpath(model_dir)))
    out.add_context_length(int(cfg["max_position_embeddings"]) - offset)
    out.add_embedding_length(int(cfg["hidden_size"]))
    out.add_feed_forward_length(int(cfg["intermediate_size"]))
    out.add_block_count(n_layer)
    out.add_head_count(int(cfg["num_attention_heads"]))
    out.add_layer_norm_eps(float(cfg.get("layer_norm_eps", 1e-5)))
    out.add_relative_attn_buckets_count(int(cfg.get("relative_attention_num_buckets", 32)))
    out.add_causal_attention(False)
    out.add_file_type(gguf.LlamaFileType.ALL_F32 if outtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)

    tok = AutoTokenizer.from_pretrained(model_dir)
    vocab = tok.get_vocab()
    n_vocab = int(cfg["vocab_size"])
    by_id = {i: t for t, i in vocab.items()}
    special = set(tok.all_special_ids)
    tokens, types = [], []
    for i in range(n_vocab):
        t = by_id.get(i, f"[PAD{i}]")
        if i in special or i not in by_id:
            tokens.append(t)
            types.append(gguf.TokenType.CONTROL if i in special else gguf.TokenType.UNUSED)
        else:
            tokens.append(t[2:] if t.startswith("##") else "\u2581" + t)
            types.append(gguf.TokenType.NORMAL)
    out.add_tokenizer_model("bert")
    out.add_tokenizer_pre("default")
    out.add_token_list(tokens)
    out.add_token_types(types)
    out.add_token_type_count(1)
    out.add_bos_token_id(tok.cls_token_id)
    out.add_eos_token_id(tok.sep_token_id)
    out.add_sep_token_id(tok.sep_token_id)
    out.add_unk_token_id(tok.unk_token_id)
    out.add_pad_token_id(tok.pad_token_id)
    if tok.mask_token_id is not None:
        out.add_mask_token_id(tok.mask_token_id)
    out.add_add_bos_token(True)
    out.add_add_eos_token(True)
    out.add_bool("tokenizer.ggml.normalizer.lowercase", bool(getattr(tok, "do_lower_case", True)))

    def put(name, array, matrix=False):
        array = np.ascontiguousarray(array, dtype=np.float16 if matrix and outtype == "f16" else np.float32)
        out.add_tensor(name, array)

    e = "embeddings."
    put("token_embd.weight", w[e + "word_embeddings.weight"], True)
    put("position_embd.weight", w[e + "position_embeddings.weight"][offset:], True)
    put("token_embd_norm.weight", w[e + "LayerNorm.weight"])
    put("token_embd_norm.bias", w[e + "LayerNorm.bias"])
    for i in range(n_layer):
        p, b = f"encoder.layer.{i}.", f"blk.{i}."
        for ours, theirs in (("attn_q", "attention.attn.q"), ("attn_k", "attention.attn.k"),
                             ("attn_v", "attention.attn.v"), ("attn_output", "attention.attn.o"),
                             ("ffn_up", "intermediate.dense"), ("ffn_down", "output.dense")):
            put(b + ours + ".weight", w[p + theirs + ".weight"], True)
            put(b + ours + ".bias", w[p + theirs + ".bias"])
        for ours, theirs in (("attn_output_norm", "attention.LayerNorm"), ("layer_output_norm", "output.LayerNorm")):
            put(b + ours + ".weight", w[p + theirs + ".weight"])
            put(b + ours + ".bias", w[p + theirs + ".bias"])
    put("enc.blk.0.attn_rel_b.weight", w["encoder.relative_attention_bias.weight"])  # (buckets, heads)
    out.write_header_to_file()
    out.write_kv_data_to_file()
    out.write_tensors_to_file()
    out.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--outfile", required=True)
    ap.add_argument("--outtype", choices=["f32", "f16", "q8_0"], default="f32")
    ap.add_argument("--llama-cpp")
    ap.add_argument("--id", help="the model's id, recorded in settings (default: the folder's name)")
    a = ap.parse_args()
    src = find_llama_cpp(a.llama_cpp)
    sys.path.insert(0, os.path.join(src, "gguf-py"))
    import gguf  # noqa: E402

    with open(os.path.join(a.model_dir, "config.json")) as f:
        hf_config = json.load(f)
    model_type, hidden_act = hf_config.get("model_type", ""), hf_config.get("hidden_act", "gelu")
    if model_type == "mpnet" and a.outtype not in ("f32", "f16"):
        sys.exit("error: MPNet models convert to f32 or f16")
    with open(os.path.join(a.model_dir, "modules.json")) as f:
        modules = json.load(f)
    after, seen_pooling, pooling, dense = [], False, None, None
    for m in sorted(modules, key=lambda m: m["idx"]):
        kind = m["type"].rsplit(".", 1)[-1]
        path = os.path.join(a.model_dir, m.get("path", ""))
        if kind == "Pooling":
            seen_pooling = True
            with open(os.path.join(path, "config.json")) as f:
                pooling = json.load(f)
        elif seen_pooling:
            if kind == "Dense" and dense is None and not after:
                dense = load_dense(path)
            elif kind != "Normalize":
                sys.exit(f"error: module {kind} after the pooling is not supported (one Dense, then Normalize)")
            after.append(kind)
        elif kind != "Transformer":
            sys.exit(f"error: module {kind} before the pooling is not supported")
    modes = [k for k in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens",
                         "lasttoken") if pooling and pooling.get("pooling_mode_" + k)]
    if modes not in (["mean_tokens"], ["cls_token"], ["lasttoken"]):
        sys.exit(f"error: pooling {modes or 'none'} is not supported (mean, CLS or last token)")
    pooling_type = {"mean_tokens": 1, "cls_token": 2, "lasttoken": 3}[modes[0]]
    max_len = 0
    cfg = os.path.join(a.model_dir, "sentence_bert_config.json")
    if os.path.exists(cfg):
        with open(cfg) as f:
            max_len = int(json.load(f).get("max_seq_length") or 0)

    with tempfile.TemporaryDirectory() as tmp:
        plain = os.path.join(tmp, "model.gguf")
        if model_type == "mpnet":  # llama.cpp has no MPNet: written here as BERT + relative position bias
            write_mpnet_as_bert(gguf, a.model_dir, plain, a.outtype)
        else:
            run = subprocess.run([sys.executable, os.path.join(src, "convert_hf_to_gguf.py"), a.model_dir,
                                  "--outfile", plain, "--outtype", a.outtype], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            if run.returncode != 0:
                tail = "\n".join(run.stderr.strip().splitlines()[-5:])
                sys.exit(f"error: llama.cpp's converter failed on {a.model_dir}:\n{tail}")
        r = gguf.GGUFReader(plain)
        arch_field = r.fields["general.architecture"]
        arch = bytes(arch_field.parts[arch_field.data[0]]).decode()
        if dense is not None and arch not in ("t5encoder", "bert"):
            sys.exit(f"error: a Dense module after the pooling is supported for T5 encoders and BERT, not {arch}")
        w = gguf.GGUFWriter(a.outfile, arch)
        ours = {f"{arch}.pooling_type", f"{arch}.feed_forward.gelu_erf", "tokenizer.ggml.precompiled_by_grapheme", f"{arch}.dense_2_feat_in", f"{arch}.dense_2_feat_out",
                f"{arch}.embedding_length_out", f"{arch}.attention.causal"}
        for name, field in r.fields.items():
            if name.startswith("GGUF.") or name == "general.architecture" or name in ours:
                continue
            vtype = field.types[0]
            if vtype == gguf.GGUFValueType.ARRAY:
                sub = field.types[-1]
                vals = [bytes(field.parts[i]).decode("utf-8") if sub == gguf.GGUFValueType.STRING
                        else field.parts[i].tolist()[0] for i in field.data]
                w.add_key_value(name, vals, vtype, sub_type=sub)
            elif vtype == gguf.GGUFValueType.STRING:
                w.add_key_value(name, bytes(field.parts[field.data[0]]).decode("utf-8"), vtype)
            else:
                w.add_key_value(name, field.parts[field.data[0]].tolist()[0], vtype)
        w.add_uint32(f"{arch}.pooling_type", pooling_type)  # as the Pooling module says
        # Sentence encoders attend both ways. llama.cpp reads this flag at load; without it a T5
        # encoder defaults to causal, and a graph reserved causal is reused by llama_decode.
        w.add_bool(f"{arch}.attention.causal", False)
        tok_field = r.fields.get("tokenizer.ggml.model")
        if tok_field is not None and bytes(tok_field.parts[tok_field.data[0]]).decode() == "t5":
            # SentencePiece unigram (sentence-t5): sentence-transformers runs the fast tokenizer,
            # whose Precompiled normalizer goes grapheme by grapheme (dior's patch 0011 reads this)
            w.add_bool("tokenizer.ggml.precompiled_by_grapheme", True)
        if arch == "bert":  # BERT and MPNet: Hugging Face's "gelu" is erf's (dior's patch 0010 reads this)
            if hidden_act == "gelu":
                w.add_bool(f"{arch}.feed_forward.gelu_erf", True)
            elif hidden_act not in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
                sys.exit(f"error: BERT with hidden_act {hidden_act!r}: llama.cpp's BERT has GELU only")
        if dense is not None:  # llama.cpp's own names for a sentence-transformers Dense
            weight, bias = dense
            w.add_uint32(f"{arch}.dense_2_feat_in", weight.shape[1])
            w.add_uint32(f"{arch}.dense_2_feat_out", weight.shape[0])
            w.add_uint32(f"{arch}.embedding_length_out", weight.shape[0])
        w.add_string("dior.sentence.modules", ",".join(after))
        w.add_uint32("dior.sentence.max_seq_length", max_len)
        w.add_string("dior.sentence.id", a.id or os.path.basename(os.path.normpath(a.model_dir)))
        for t in r.tensors:
            w.add_tensor(t.name, t.data, raw_shape=list(reversed([int(d) for d in t.shape])), raw_dtype=t.tensor_type)
        if dense is not None:  # kept in float32: a small matrix, applied once per sentence
            w.add_tensor("dense_2.weight", weight)
            if bias is not None:
                w.add_tensor("dense_2.bias", bias)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    print(f"wrote {a.outfile}: {arch}, pooling {modes[0]}, modules after pooling {after}, max_seq_length {max_len}")


if __name__ == "__main__":
    main()
