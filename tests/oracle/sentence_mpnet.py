"""Test oracle: a tiny random MPNet sentence encoder in all-mpnet-base-v2's layout (MPNet with its
relative position bias, mean pooling, Normalize), with MPNet's WordPiece tokenizer over the BERT
uncased vocabulary (from the all-MiniLM-L6-v2 package) and MPNet's special tokens; saved as a
sentence-transformers folder, encoded by sentence-transformers 5.1.0 and converted with
tools/convert-sentence (f32, f16).

Writes OUT_DIR/{f32,f16}.gguf, OUT_DIR/sentences.json, OUT_DIR/vectors.npy.
Usage: python sentence_mpnet.py DATA_REFERENCE_DIR LLAMA_CPP_SOURCE OUT_DIR
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_cpu  # noqa: E402,F401  (before transformers)
from all_minilm_l6_v2 import extract_model  # noqa: E402
from sentence_transformers import SentenceTransformer, models  # noqa: E402
from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast  # noqa: E402

REF, SRC, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.argv = sys.argv[:1] + [REF, SRC, OUT]
from sentence_minilm import sentences, write_fixture  # noqa: E402  (the same 200+ real sentences)


def build(model_dir):
    os.makedirs(model_dir, exist_ok=True)
    # MPNet's vocabulary layout: <s> <pad> </s> <unk>, BERT's uncased WordPiece pieces, <mask> last
    with open(os.path.join(str(extract_model(os.path.join(OUT, "minilm"))), "tokenizer.json"), encoding="utf-8") as f:
        pieces = json.load(f)["model"]["vocab"]  # WordPiece: token -> id
    bert = sorted(pieces, key=pieces.get)
    vocab = ["<s>", "<pad>", "</s>", "<unk>"] + bert + ["<mask>"]
    with open(os.path.join(model_dir, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    tok = MPNetTokenizerFast(vocab_file=os.path.join(model_dir, "vocab.txt"), do_lower_case=True, unk_token="[UNK]")
    tok.save_pretrained(model_dir)
    cfg = MPNetConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=66, relative_attention_num_buckets=32,
                      hidden_act="gelu", layer_norm_eps=1e-5, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0, torch_dtype="float32")
    torch.manual_seed(0)
    model = MPNetModel(cfg, add_pooling_layer=False).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)
            elif "relative_attention_bias" in name:
                p.normal_(0.0, 1.0)  # large enough to move the attention visibly
            else:
                p.normal_(0.0, 1.0 if "embeddings" in name else 0.3)
    model.save_pretrained(model_dir, safe_serialization=True)
    word = models.Transformer(model_dir, max_seq_length=64)
    pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    st = SentenceTransformer(modules=[word, pool, models.Normalize()], device="cpu")
    st.save(os.path.join(OUT, "st"))
    return os.path.join(OUT, "st")


def check(model):
    assert type(model[0].auto_model).__name__ == "MPNetModel", type(model[0].auto_model)
    assert model.tokenize(["Red"])["input_ids"][0].tolist()[0] == 0  # <s> first, as MPNet's template


def main():
    os.makedirs(OUT, exist_ok=True)
    write_fixture(build(os.path.join(OUT, "hf")), "tiny/mpnet", sentences(), "a tiny MPNet", check)


if __name__ == "__main__":
    main()
