"""Test oracle: Hugging Face's CLIPTokenizerFast (what the reference's CLIPProcessor tokenizes with)
built from the real CLIP vocabulary, bpe_simple_vocab_16e6.txt.gz as the open-clip-torch package
ships it, on a few hundred strings: the reference's InDiReCT texts, DIOR prompts, unicode, emoji,
punctuation, numbers, contractions, special-token text, whitespace runs, over-long text, and
hard_texts.py's cases (every script, precomposed and decomposed text, case mappings, controls).

Writes OUT_DIR/tokens.txt (the vocabulary in id order), OUT_DIR/merges.txt (one merge a line, rank
order) and OUT_DIR/cases.json ([{"text": ..., "ids": [...]}], truncated to 77 as the reference).
Usage: python clip_tokenizer.py DATA_REFERENCE_DIR OUT_DIR
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_cpu  # noqa: E402,F401  (before transformers)
from clip_vocab import clip_vocab, write_hf_files  # noqa: E402
from hard_texts import hard_texts  # noqa: E402
from transformers import CLIPTokenizerFast  # noqa: E402


def main(ref_dir, out):
    os.makedirs(out, exist_ok=True)
    vocab, merges = clip_vocab()
    vocab_file, merges_file = write_hf_files(out)
    os.replace(merges_file, os.path.join(out, "merges.hf.txt"))
    tok = CLIPTokenizerFast(vocab_file=vocab_file, merges_file=os.path.join(out, "merges.hf.txt"))
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
    texts += [t for t in hard_texts() if t not in texts]  # every script, NFC / NFD, case mappings, controls
    cases = [{"text": t, "ids": tok(t, truncation=True, max_length=77)["input_ids"]} for t in texts]
    with open(os.path.join(out, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)
    print(f"wrote {len(cases)} CLIP tokenizer cases to {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
