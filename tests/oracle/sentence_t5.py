"""Test oracle: a tiny random sentence-T5 (T5 encoder + mean pooling + Dense + Normalize, the layout
of sentence-transformers/sentence-t5-base) saved as a sentence-transformers folder, with a real
SentencePiece unigram tokenizer trained here on the test sentences; encoded by sentence-transformers
5.1.0 and converted with tools/convert-sentence (f32, f16).

Writes OUT_DIR/{f32,f16}.gguf, OUT_DIR/sentences.json, OUT_DIR/vectors.npy.
Usage: python sentence_t5.py DATA_REFERENCE_DIR LLAMA_CPP_SOURCE OUT_DIR
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_cpu  # noqa: E402,F401  (before transformers)
import sentencepiece as spm  # noqa: E402
from sentence_transformers import SentenceTransformer, models  # noqa: E402
from transformers import T5Config, T5EncoderModel, T5TokenizerFast  # noqa: E402

REF, SRC, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.argv = sys.argv[:1] + [REF, SRC, OUT]
from hard_texts import hard_texts  # noqa: E402
from sentence_minilm import sentences, write_fixture  # noqa: E402  (the same 200+ real sentences)


HARD = set(hard_texts())


def build(model_dir, texts):
    os.makedirs(model_dir, exist_ok=True)
    corpus = os.path.join(OUT, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        for t in texts + ["The quick brown fox jumps over the lazy dog.", "0123456789 !?.,;:'\"()[]{}<>-_/\\\\@#$%&*+="]:
            if t.strip():
                f.write(t.strip() + "\n")
    # T5's ids: pad 0, </s> 1, <unk> 2, no <s>
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=os.path.join(model_dir, "spiece"), vocab_size=1000, hard_vocab_limit=False,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   character_coverage=1.0, minloglevel=2)
    # add_prefix_space: SentencePiece's dummy prefix, as the real sentence-t5 tokenizer.json has it
    # (Metaspace, prepend always); converted from the .model alone, transformers would leave it out
    tok = T5TokenizerFast(vocab_file=os.path.join(model_dir, "spiece.model"), extra_ids=0, legacy=True,
                          add_prefix_space=True)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "spiece.model"))
    # the fast tokenizer (what sentence-transformers runs, and dior is compared with) is SentencePiece
    # itself, plus </s>, on the real sentences; on hard_texts.py's its precompiled normalizer differs
    # from SentencePiece's own on some marks (e + two combining acutes), its Viterbi breaks ties
    # otherwise on runs of one letter, and it parses special-token literals
    differ = 0
    for t in texts:
        if any(s in t for s in ("</s>", "<pad>", "<unk>")):
            continue
        same = tok(t)["input_ids"] == sp.encode(t) + [1]
        assert same or t in HARD, (t, tok(t)["input_ids"], sp.encode(t))
        differ += not same
    print(f"the fast tokenizer differs from SentencePiece on {differ} of {len(texts)} texts (hard_texts.py's)")
    tok.save_pretrained(model_dir)
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2,
                   relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="relu",
                   dropout_rate=0.0, layer_norm_epsilon=1e-6, torch_dtype="float32")
    torch.manual_seed(0)
    model = T5EncoderModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(1.0, 0.1) if "layer_norm" in name else p.normal_(0.0, 1.0 if "shared" in name else 0.3)
    model.save_pretrained(model_dir, safe_serialization=True)
    word = models.Transformer(model_dir, max_seq_length=64)  # sentence-t5's loader path (T5EncoderModel)
    pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    dense = models.Dense(32, 24, bias=False, activation_function=torch.nn.Identity())
    with torch.no_grad():
        dense.linear.weight.normal_(0.0, 0.3)
    st = SentenceTransformer(modules=[word, pool, dense, models.Normalize()], device="cpu")
    st.save(os.path.join(OUT, "st"))
    return os.path.join(OUT, "st")


def check(model):
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Dense", "Normalize"], model
    assert type(model[0].auto_model).__name__ == "T5EncoderModel", type(model[0].auto_model)


def main():
    os.makedirs(OUT, exist_ok=True)
    texts = sentences()
    write_fixture(build(os.path.join(OUT, "hf"), texts), "tiny/sentence-t5", texts, "a tiny sentence-T5", check)


if __name__ == "__main__":
    main()
