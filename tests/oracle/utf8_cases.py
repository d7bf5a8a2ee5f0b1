"""Test oracle: Python's bytes.decode("utf-8", "replace") (what Hugging Face's decoders do to
invalid UTF-8 in generated text) on hand-picked and random byte strings.
Writes OUT_DIR/utf8.txt: "INPUT_HEX EXPECTED_HEX" lines ("-" for an empty string).
Usage: python utf8_cases.py OUT_DIR
"""
import os
import random
import sys

OUT = sys.argv[1]
cases = [b"", b"plain ascii", "caf\u00e9 \u4e2d\u6587 \U0001f600".encode(), b"\xff", b"\x80", b"\xc0\xaf",
         b"\xc2", b"\xe2\x82", b"\xe2\x82\xac", b"\xed\xa0\x80", b"\xed\x9f\xbf", b"\xe0\x80\x80", b"\xe0\xa0\x80",
         b"\xf0\x8f\xbf\xbf", b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
         b"\xf0\x9f\x98", b"\xf0\x9f\x98A", b"a\xe2\x82\xe2\x82\xacb", b"\xfe\xfe\xff\xff", b"\x00\x7f"]
rng = random.Random(7)
alphabet = [0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef,
            0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff]
for _ in range(3000):
    cases.append(bytes(rng.choice(alphabet) if rng.random() < 0.8 else rng.randrange(256)
                       for _ in range(rng.randrange(1, 12))))
os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "utf8.txt"), "w") as f:
    for c in cases:
        out = c.decode("utf-8", "replace").encode("utf-8")
        f.write(f"{c.hex() or '-'} {out.hex() or '-'}\n")
print(f"wrote {len(cases)} UTF-8 cases to {OUT}")
