"""Test oracle data: texts in many scripts and the Unicode cases tokenizers get wrong, shared by the
CLIP and sentence-encoder oracles (issue 25). Every string is valid UTF-8 (the C++ side reads them
from JSON).

hard_texts() returns a few hundred strings: per script a handful of phrases (colours, objects,
genres, as conditions and answers read), precomposed and decomposed forms of the same words,
case mappings that change length or depend on the language, ligatures, emoji sequences, control
and format characters, whitespace that is not ASCII, special-token literals of CLIP, BERT, MPNet
and T5, over-long words and texts, and the empty text.
"""

SCRIPTS = {
    "hangul": ["빨간 자동차", "드라마", "파란 하늘과 흰 구름", "코미디 영화", "검은색 고양이", "자동차 색깔: 빨강"],
    "devanagari": ["लाल गाड़ी", "नीला आसमान", "हास्य फ़िल्म", "काली बिल्ली", "रंग: हरा", "क्षत्रिय ज्ञान"],
    "thai": ["รถสีแดง", "ท้องฟ้าสีฟ้า", "ภาพยนตร์ตลก", "แมวดำ", "สีเขียว น้ำเงิน", "กรุงเทพมหานคร"],
    "arabic": ["سيارة حمراء", "السماء الزرقاء", "فيلم كوميدي", "قطة سوداء", "اللون: أخضر", "مُحَمَّد ﷺ"],
    "hebrew": ["מכונית אדומה", "שמיים כחולים", "סרט קומדיה", "חתול שחור", "צבע: ירוק", "בְּרֵאשִׁית"],
    "cjk": ["红色的汽车", "藍色の空", "喜剧电影", "黒い猫", "颜色：绿色", "𠀀𪚥 extension B"],
    "japanese": ["赤い車", "コメディ映画", "ひらがなとカタカナ", "ｶﾀｶﾅ 半角", "東京タワー", "アニメ"],
    "cyrillic": ["красная машина", "СИНЕЕ НЕБО", "комедия", "чёрная кошка", "Ёлка", "цвет: зелёный"],
    "greek": ["κόκκινο αυτοκίνητο", "ΟΔΟΣ ΣΟΦΙΑΣ", "ταινία κωμωδίας", "ΐ ΰ ά", "Σίσυφος", "ΑΣ ΑΣ."],
    "tamil": ["சிவப்பு கார்", "நீல வானம்", "நகைச்சுவை படம்"],
    "bengali": ["লাল গাড়ি", "নীল আকাশ", "কৌতুক চলচ্চিত্র"],
    "khmer": ["ឡានក្រហម", "មេឃពណ៌ខៀវ"],
    "georgian": ["წითელი მანქანა", "ლურჯი ცა"],
    "ethiopic": ["ቀይ መኪና", "ሰማያዊ ሰማይ"],
    "vietnamese": ["xe ô tô màu đỏ", "bầu trời xanh", "phim hài", "Nguyễn Thị Ngọc Ánh", "TIẾNG VIỆT"],
    "latin": ["café crème brûlée", "naïve façade", "Ångström Øresund Æsir", "Straße STRASSE ẞ", "ǅemal ǈubljana"],
    "turkish": ["İstanbul", "ISPARTA ıspanak", "İİİ ııı", "DİYARBAKIR", "i̇ dotted", "Iı İi"],
}

# The same words precomposed (NFC) and decomposed (NFD), and sequences of several marks.
DECOMPOSED = [
    "cafe\u0301", "caf\u00e9", "e\u0301\u0301 two marks", "a\u0323\u0302 dot below then circumflex",
    "a\u0302\u0323 circumflex then dot below", "\u1100\u1161\u11a8 hangul jamo", "\u1112\u1161\u11ab\u1100\u1173\u11af",
    "A\u030a ngstrom", "\u212b angstrom sign", "\u2126 ohm sign", "\u00c5 precomposed", "o\u0308\u0304 two",
    "\u0915\u093c \u0958 nukta", "\u0e01\u0e34\u0e4d thai marks", "\u05e9\u05c1\u05bc hebrew points",
    "n\u0303o", "\u00f1o", "Z\u0301\u0327", "\u1e9b\u0323 long s dot", "\u0344 combining greek dialytika tonos",
]

CASES = [
    # case mappings: length-changing, title case, final sigma, dotted / dotless i
    "ﬁ ﬂ ﬀ ﬃ ligatures", "ﬆ ﬅ and ﬓ armenian", "ß ẞ ss SS", "ΣΊΣΥΦΟΣ", "Ǆ ǅ ǆ", "ŉ apostrophe n", "İ̇ double dot",
    "K KELVIN SIGN Ω", "ＡＢＣ fullwidth ａｂｃ", "𝐁𝐨𝐥𝐝 math", "Ⅻ roman ⅻ", "①②③ circled", "½ ¼ ² ³",
    # emoji: modifiers, ZWJ sequences, flags, keycaps, variation selectors
    "👍🏽 thumbs", "👩‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "🇯🇵🇫🇷 flags", "1️⃣ keycap", "❤️ ❤ heart", "🧑🏿‍🚀 astronaut",
    "😀😃😄😁 faces", "🚗🚕🚙 cars red🚗", "emoji at end 🎬",
    # control and format characters, whitespace that is not ASCII
    "tab\there", "line\nfeed", "cr\r\nlf", "vertical\x0btab", "form\x0cfeed", "next\x85line", "nul\x00char",
    "bell\x07char", "esc\x1b[0m", "unit\x1fsep", "del\x7fchar", "zero\u200bwidth", "zw\u200cnon\u200djoiner",
    "soft\u00adhyphen", "bom\ufeffmark", "bidi\u202eoverride\u202c", "lrm\u200emark", "line\u2028sep",
    "para\u2029sep", "nbsp\u00a0space", "ideographic\u3000space", "thin\u2009space", "ogham\u1680space",
    "narrow\u202fnbsp", "private\ue000use", "unassigned\u0378x", "noncharacter\ufdd0x", "replacement\ufffdchar",
    "tag\U000e0041chars", "variation\ufe0fselector",
    # punctuation and symbols from many blocks
    "«quotes» „German“ 「Japanese」", "em—dash en–dash", "ellipsis… bullet•", "¿Spanish? ¡yes!", "§ ¶ † ‡",
    "€ £ ¥ ₹ ₩", "math ∑ ∫ ≤ ≥ ≠", "arrows → ← ↔", "box ─│┌┐", "°C ‰ ′″",
    # special-token literals of CLIP, BERT, MPNet and T5 (tokenize as special where the tokenizer does)
    "[CLS]", "[SEP]", "[UNK]", "[MASK] car", "red [PAD] car", "[cls] lower", "a [SEP] b [SEP] c", "[MASK][MASK]",
    "<s> start", "</s> end", "<pad>", "<unk>", "red <mask> car", "a  <mask>  b", "<mask>", "x</s>y<s>z",
    "<|endoftext|>", "mixed<|endoftext|>inside", "<|startoftext|>both<|endoftext|>", "<|ENDOFTEXT|> upper",
    "[unused0] [unused1]",
    # mixed scripts in one text
    "red 빨간 लाल สีแดง أحمر אדום 红色 赤 красный κόκκινο", "Tokyo 東京 とうきょう トウキョウ", "A1 β2 γ3 δ4",
    "car: 자동차, colour: 색깔", "mañana 明日 завтра", "ABCabc123 ١٢٣ ١٢٣ ۱۲۳ ๑๒๓ १२३",
    # long and degenerate texts
    "a" * 99, "b" * 100, "c" * 101, "é" * 101, "supercalifragilisticexpialidocious" * 4, "x " * 300,
    " ".join(["red car"] * 200), "한국어 " * 150, "", " ", "  \t\n  ", ".", "...", "a",
]

PHRASES = ["a photo of a {} car", "The color of the car is {}.", "{}", "Describe {} in one word: {}"]
WORDS = ["red", "blue", "comedy", "drama", "cat", "mountain", "sunset", "Mercedes-Benz", "1970s", "jazz"]


def hard_texts():
    out = []
    for texts in SCRIPTS.values():
        out += texts
    out += DECOMPOSED + CASES
    # the scripts inside the sentences the reference embeds (answers after a DIOR-like prompt)
    for k, texts in enumerate(SCRIPTS.values()):
        out.append(PHRASES[k % len(PHRASES)].format(texts[0], texts[-1]))
    for k, w in enumerate(WORDS):
        out.append(PHRASES[k % len(PHRASES)].format(w, w.upper()))
    seen, unique = set(), []
    for t in out:
        if t not in seen:
            seen.add(t)
            unique.append(t)
    return unique


if __name__ == "__main__":
    print(len(hard_texts()))
