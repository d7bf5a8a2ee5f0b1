"""Test oracle: Hugging Face's CLIPTokenizerFast (what the reference's CLIPProcessor tokenizes with)
built from the real CLIP vocabulary, bpe_simple_vocab_16e6.txt.gz as the open-clip-torch package
ships it, on a few hundred strings: the reference's InDiReCT texts, DIOR prompts, unicode, emoji,
punctuation, numbers, contractions, special-token text, whitespace runs, over-long text.

Writes OUT_DIR/tokens.txt (the vocabulary in id order), OUT_DIR/merges.txt (one merge a line, rank
order) and OUT_DIR/cases.json ([{"text": ..., "ids": [...]}], truncated to 77 as the reference).
Usage: python clip_tokenizer.py DATA_REFERENCE_DIR OUT_DIR
"""
import gzip
import importlib.util
import json
import os
import sys

from transformers import CLIPTokenizerFast
from transformers.models.clip.tokenization_clip import bytes_to_unicode


def main(ref_dir, out):
    os.makedirs(out, exist_ok=True)
    pkg = os.path.dirname(importlib.util.find_spec("open_clip").origin)
    with gzip.open(os.path.join(pkg, "bpe_simple_vocab_16e6.txt.gz")) as f:
        lines = f.read().decode("utf-8").split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]  # as open_clip's SimpleTokenizer and OpenAI's CLIP read it
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.hf.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    tok = CLIPTokenizerFast(vocab_file=os.path.join(out, "vocab.json"), merges_file=os.path.join(out, "merges.hf.txt"))
    with open(os.path.join(out, "tokens.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(merges) + "\n")

    texts = []
    with open(os.path.join(ref_dir, "indirect_texts.json"), encoding="utf-8") as f:
        for c in json.load(f)["configs"]:
            texts += [c["template"].replace("{item}", item) for item in c["items"]]
    texts += [
        'Describe this image in one word regarding car color: "', "a photo of a Mercedes-Benz GLA 250 4MATIC",
        "It's a BIRD's nest; they'll say we'd've", "YOU'RE RIGHT, I'M SURE", "  leading   and trailing  ",
        "tabs\tand\nnewlines\r\nhere", "numbers 1234567 and 3.14159, 1st 2nd", "café crème brûlée naïve façade",
        "Ελληνικά και Кириллица", "日本語のテキストと中文文本", "한국어 텍스트", "العربية والعبرית", "emoji 😀👍🏽 🇯🇵 ❤️",
        "symbols !!! ??? ... --- *** @#$%^&()", "mixed<|endoftext|>inside", "<|startoftext|>both<|endoftext|>",
        "<|ENDOFTEXT|> upper", "don't'll 's 't", "x" * 300, " ".join(["word"] * 100), "", " ", "a", "A.B.C.",
        "e-mail: someone@example.com http://x.y/z?q=1", "ﬁ ligature and ½ fraction and ² superscript",
        "Ⅻ roman numeral and ٣ arabic digit", "ÀÉÎÕÜ ÇÑ ẞ", "zero\u200bwidth", "nbsp\u00a0space",
    ]
    cases = [{"text": t, "ids": tok(t, truncation=True, max_length=77)["input_ids"]} for t in texts]
    with open(os.path.join(out, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)
    print(f"wrote {len(cases)} CLIP tokenizer cases to {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
