#!/usr/bin/env python3
"""Converts a sentence-transformers model folder into one GGUF for dior.cpp: the transformer and its
pooling by llama.cpp's own converter (convert_hf_to_gguf.py of the pinned tree), plus what
sentence-transformers applies after the pooling, recorded as metadata:

    dior.sentence.modules          the module types after Pooling, in order, comma-separated ("Normalize")
    dior.sentence.max_seq_length   the truncation length of the Transformer module

    python tools/convert-sentence/convert_sentence_to_gguf.py all-MiniLM-L6-v2/ --outfile minilm-f32.gguf --outtype f32

Supported after the pooling: Normalize. A Dense module (sentence-t5) is refused for now with a
clear message. --llama-cpp DIR: the llama.cpp source tree (default: the pinned tree in dior's cache).
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--outfile", required=True)
    ap.add_argument("--outtype", choices=["f32", "f16", "q8_0"], default="f32")
    ap.add_argument("--llama-cpp")
    a = ap.parse_args()
    src = find_llama_cpp(a.llama_cpp)
    sys.path.insert(0, os.path.join(src, "gguf-py"))
    import gguf  # noqa: E402

    with open(os.path.join(a.model_dir, "modules.json")) as f:
        modules = json.load(f)
    after, seen_pooling = [], False
    for m in sorted(modules, key=lambda m: m["idx"]):
        kind = m["type"].rsplit(".", 1)[-1]
        if kind == "Pooling":
            seen_pooling = True
        elif seen_pooling:
            if kind != "Normalize":
                sys.exit(f"error: module {kind} after the pooling is not supported yet (only Normalize)")
            after.append(kind)
        elif kind != "Transformer":
            sys.exit(f"error: module {kind} before the pooling is not supported")
    max_len = 0
    cfg = os.path.join(a.model_dir, "sentence_bert_config.json")
    if os.path.exists(cfg):
        with open(cfg) as f:
            max_len = int(json.load(f).get("max_seq_length") or 0)

    with tempfile.TemporaryDirectory() as tmp:
        plain = os.path.join(tmp, "model.gguf")
        subprocess.run([sys.executable, os.path.join(src, "convert_hf_to_gguf.py"), a.model_dir, "--outfile", plain,
                        "--outtype", a.outtype], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = gguf.GGUFReader(plain)
        arch = r.fields["general.architecture"]
        w = gguf.GGUFWriter(a.outfile, bytes(arch.parts[arch.data[0]]).decode())
        for name, field in r.fields.items():
            if name.startswith("GGUF.") or name == "general.architecture":
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
        w.add_string("dior.sentence.modules", ",".join(after))
        w.add_uint32("dior.sentence.max_seq_length", max_len)
        for t in r.tensors:
            w.add_tensor(t.name, t.data, raw_shape=list(reversed([int(d) for d in t.shape])), raw_dtype=t.tensor_type)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    print(f"wrote {a.outfile}: modules after pooling {after}, max_seq_length {max_len}")


if __name__ == "__main__":
    main()
