// JSON with byte strings: nlohmann's text for UTF-8, Python's surrogateescape for the rest, and
// json_parse() giving every byte string back. Python itself is the oracle of the escapes.
#include "../../tests/support/process.h"
#include "../../tests/support/test_paths.h"
#include "dior.h"
#include "dior_json.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <random>
#include <unistd.h>

using json = nlohmann::json;

namespace {

std::vector<std::string> byte_strings() {
    std::vector<std::string> out = { "",
                                     "caf\xe9.png",
                                     "caf\xc3\xa9.png",
                                     "\xff",
                                     "\xed\xa0\x80",      // an encoded surrogate
                                     "\xc0\xaf",          // an overlong '/'
                                     "\xf4\x90\x80\x80",  // past U+10FFFF
                                     "\xe2\x82",          // cut short
                                     "\xf4\x8f\xbf\xbf",  // U+10FFFF itself (json_parse's marker)
                                     "\xf4\x8f\xbf\xbf"
                                     "e9",  // ... followed by what a marker looks like
                                     "a\"b\\c\n\t\x01\x7f/",
                                     "\xf0\x9f\x98\x80 \xe4\xb8\xad" };
    std::mt19937             rng(7);
    for (int i = 0; i < 300; ++i) {
        std::string s(rng() % 12, '\0');
        for (char & c : s) {
            const unsigned r = rng() % 4;
            c                = (char)(r == 0   ? 0x80 + rng() % 0x80
                                      : r == 1 ? 0xc0 + rng() % 0x40
                                      : r == 2 ? 0x20 + rng() % 0x60
                                               : rng() % 0x100);
        }
        out.push_back(s);
    }
    for (int b = 0; b < 256; ++b) {
        out.push_back(std::string(1, (char)b) + "x");
    }
    return out;
}

}  // namespace

TEST(JsonText, EveryByteStringComesBack) {
    for (const auto & s : byte_strings()) {
        const json j = { { "path", s }, { s, json::array({ s, 1.5, nullptr, true }) } };
        for (int indent : { -1, 2 }) {
            const std::string text = dior::json_text(j, indent);
            for (size_t i = 0; i < text.size();) {  // the text is UTF-8 (nlohmann can read it, less the escapes)
                const size_t n = dior::utf8_length_at(text, i);
                ASSERT_GT(n, 0u) << text;
                i += n;
            }
            EXPECT_EQ(dior::json_parse(text), j) << text;
        }
    }
}

TEST(JsonText, Utf8IsWrittenAsNlohmannWritesIt) {
    const json j = { { "a", json::array() },
                     { "b", json::object() },
                     { "c", { { "d", { 1, 2.25, -3e-7, 1e300 } }, { "e", "caf\xc3\xa9 \"q\" \\ \x1f" } } },
                     { "f", { json::array({ json::object() }) } },
                     { "g", 18446744073709551615ull },
                     { "h", -5 } };
    for (int indent : { -1, 0, 1, 2, 4 }) {
        EXPECT_EQ(dior::json_text(j, indent), j.dump(indent)) << indent;
    }
}

TEST(JsonText, ParseRefusesWhatIsNotJson) {
    for (const char * bad :
         { R"(["\ud800"])", R"(["\udc00"])", R"(["\udcZZ"])", R"(["\u12"])", "[\"\xe9\"]", "[1,]" }) {
        EXPECT_THROW(dior::json_parse(bad), json::parse_error) << bad;
    }
    EXPECT_EQ(dior::json_parse(R"(["\ud83d\ude00", "\udbff\udfff", "\udce9\udcff"])"),
              json::array({ "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xe9\xff" }));
    // a pair's low half is never a byte, even when it is in U+DC80..U+DCFF
    EXPECT_EQ(dior::json_parse(R"(["\udbff\udc80"])"), json::array({ "\xf4\x8f\xb2\x80" }));
}

// Python's json.loads + os.fsencode read our text back to the same bytes, and what json.dumps
// writes of os.fsdecode'd names (as requests sends them) reads back to the same bytes here.
TEST(JsonText, PythonReadsAndWritesTheSameEscapes) {
    const auto all = byte_strings();
    const auto dir = std::filesystem::temp_directory_path() / ("dior_json_text_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    json list = json::array();
    for (const auto & s : all) {
        list.push_back(s);
    }
    std::ofstream(dir / "ours.json", std::ios::binary) << dior::json_text(list);
    const std::string script =
        "import json, os, sys\n"
        "d = sys.argv[1]\n"
        "xs = json.load(open(d + '/ours.json', encoding='utf-8'))\n"
        "open(d + '/bytes.txt', 'w').write('\\n'.join(os.fsencode(x).hex() for x in xs))\n"
        "open(d + '/theirs.json', 'w').write(json.dumps([os.fsdecode(os.fsencode(x)) for x in xs]))\n";
    std::ofstream(dir / "check.py") << script;
    const auto r =
        dior::test::run_shell(std::string(DIOR_TEST_PYTHON) + " " + (dir / "check.py").string() + " " + dir.string());
    ASSERT_EQ(r.status, 0) << r.output;
    std::ifstream hex(dir / "bytes.txt");
    std::string   line;
    for (const auto & s : all) {
        std::string want;
        for (unsigned char c : s) {
            char buf[3];
            std::snprintf(buf, sizeof(buf), "%02x", c);
            want += buf;
        }
        ASSERT_TRUE(std::getline(hex, line) || want.empty());
        EXPECT_EQ(line, want);
    }
    std::ifstream     theirs(dir / "theirs.json", std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(theirs)), std::istreambuf_iterator<char>());
    EXPECT_EQ(dior::json_parse(text), list);
    std::filesystem::remove_all(dir);
}
