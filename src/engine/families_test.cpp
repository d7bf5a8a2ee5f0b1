// Parity with transformers for every LVLM family dior supports: tiny random models of each family,
// converted by llama.cpp's converter (tests/oracle/hf_families.py writes the models, the images, the
// cases with the processor's input ids, and transformers' vectors). Per family: the prompt's tokens
// equal the processor's, and every vector is within the bound at every layer and token.
#include "../../tests/support/test_paths.h"
#include "../../tests/support/vector_stats.h"
#include "dior.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

namespace fs = std::filesystem;

namespace {

using dior::test::compare;
using dior::test::stats;

std::string group_of(const nlohmann::json & c) {
    const int layer = c["layer"].get<int>();
    if (c["token"].get<int>() >= 0) {
        return "token " + std::to_string(c["token"].get<int>());
    }
    if (c["prompt_type"] != "describe") {
        return "prompt types";
    }
    return "layer " + std::to_string(layer);
}

// Every case of a family's oracle through dior with one projector file; per group of cases the worst
// cosine and relative L2 distance to transformers. Token sequences are compared first.
std::map<std::string, stats> run_cases(const fs::path & dir, const std::string & mmproj, const char * family) {
    std::ifstream        cf(dir / "cases.json");
    const nlohmann::json cases = nlohmann::json::parse(cf);
    const dior::matrix   want  = dior::read_npy((dir / "vectors.npy").string());
    EXPECT_EQ(want.rows, cases.size());

    dior::model_params mp;  // the strict F32 path: no flash attention, F32 KV cache
    mp.vision_flash_attn = false;
    mp.model_path        = (dir / "text.gguf").string();
    mp.mmproj_path       = (dir / mmproj).string();
    mp.n_threads         = 2;
    const auto m         = dior::model::load(mp);
    EXPECT_EQ((size_t)m->n_embd(), want.cols);

    std::map<std::string, stats> groups;
    int                          token_mismatches = 0;
    for (size_t i = 0; i < cases.size() && i < want.rows; ++i) {
        const auto &                     c = cases[i];
        const std::optional<std::string> cond =
            c["condition"].is_null() ? std::nullopt : std::optional<std::string>(c["condition"].get<std::string>());
        const auto        type = *dior::parse_prompt_type(c["prompt_type"].get<std::string>());
        const dior::image img  = dior::load_image((dir / "images" / c["image"].get<std::string>()).string());

        const auto ids = c["ids"].get<std::vector<int32_t>>();
        const auto got = m->prompt_tokens(img, dior::instruction(type, cond), false);
        if (got != ids && token_mismatches++ == 0) {
            ADD_FAILURE() << family << " case " << i << ": dior's tokens differ from the processor's\n  dior "
                          << nlohmann::json(got).dump() << "\n  hf   " << nlohmann::json(ids).dump();
        }

        dior::embed_params ep;
        ep.prompt   = type;
        ep.layers   = { c["layer"].get<int>() };
        ep.token    = c["token"].get<int>();
        ep.position = c["positions"] == "native" ? dior::positions::native : dior::positions::sequential;
        // Two conditions per call, so that prefix reuse is exercised; the case's own is the second.
        const auto res = m->embed(img, { std::string("a different condition"), cond }, ep);
        double     cos = 0, rel = 0;
        compare(res[1].vectors[0], &want.data[i * want.cols], want.cols, cos, rel);
        const std::string pos = c["positions"].get<std::string>();
        groups[group_of(c) + " / " + pos].add(cos, rel);
        groups["all / " + pos].add(cos, rel);
        if ((cos < 0.99999 || rel > 1e-3) && std::getenv("DIOR_TEST_VERBOSE")) {
            std::printf("  case %zu: layer %d token %d %s: cos %.6f rel %.2e\n", i, c["layer"].get<int>(),
                        c["token"].get<int>(), pos.c_str(), cos, rel);
        }
    }
    EXPECT_EQ(token_mismatches, 0) << "cases whose tokens differ";
    return groups;
}

void print(const std::string & title, const std::map<std::string, stats> & groups) {
    std::printf("%s\n  %-28s %5s %12s %12s\n", title.c_str(), "group / positions", "cases", "worst cos",
                "worst rel L2");
    for (const auto & [k, v] : groups) {
        std::printf("  %-28s %5d %12.8f %12.3e\n", k.c_str(), v.n, v.worst_cos, v.worst_rel);
    }
}

class Family : public testing::TestWithParam<const char *> {};

TEST_P(Family, TokensAndVectorsMatchTransformers) {
    const fs::path dir = fs::path(DIOR_TEST_DATA_DIR) / "hf-families" / GetParam();
    ASSERT_TRUE(fs::exists(dir / "cases.json")) << dir << ": run tests/oracle/hf_families.py (fixture)";
    std::ifstream        ff(dir / "family.json");
    const nlohmann::json family = nlohmann::json::parse(ff);
    const std::string    title  = std::string(GetParam()) + " (" + family["model_class"].get<std::string>() + ", " +
                              family["image_processor_class"].get<std::string>() + ")";

    const auto groups = run_cases(dir, "mmproj.gguf", GetParam());
    print(title + ", f32 weights", groups);
    for (const auto & [k, v] : groups) {
        EXPECT_GE(v.worst_cos, 0.99999) << GetParam() << " " << k;
        EXPECT_LE(v.worst_rel, 1e-3) << GetParam() << " " << k;
    }
    // Where the converter keeps tensors in F16 whatever --outtype says (Gemma 3's projection), its
    // own file too: ggml rounds the image activations to F16 for those products. Stated bound:
    // relative L2 5e-3, still well under the reference's own bf16 noise.
    if (fs::exists(dir / "mmproj-converter.gguf")) {
        const auto conv = run_cases(dir, "mmproj-converter.gguf", GetParam());
        print(title + ", the converter's --outtype f32 projector (F16 tensors kept)", conv);
        for (const auto & [k, v] : conv) {
            EXPECT_GE(v.worst_cos, 0.9999) << GetParam() << " converter's projector " << k;
            EXPECT_LE(v.worst_rel, 5e-3) << GetParam() << " converter's projector " << k;
        }
    }
}

// The pixels the vision tower sees: dior resizes as the family's processor does (model::
// processor_input) and mtmd normalizes ((x / 255 - mean) / std in float32), against the processor's
// own pixel_values. Stated bound: a few float32 ulps (max |diff| <= 1e-6). SmolVLM's tiles are
// mtmd's own (its Lanczos port of the slow Idefics3 processor): checked through the image-token
// vectors above, not pixel by pixel.
TEST_P(Family, ImagesReachTheEncoderAsTheProcessorMakesThem) {
    const fs::path       dir = fs::path(DIOR_TEST_DATA_DIR) / "hf-families" / GetParam();
    std::ifstream        pf(dir / "pixels.json");
    const nlohmann::json px = nlohmann::json::parse(pf);
    EXPECT_EQ(px["images"].empty(), std::string(GetParam()) == "smolvlm");
    float mean[3], sd[3];
    for (int k = 0; k < 3; ++k) {
        mean[k] = px["image_mean"][k].get<float>();
        sd[k]   = px["image_std"][k].get<float>();
    }
    dior::model_params mp;
    mp.model_path  = (dir / "text.gguf").string();
    mp.mmproj_path = (dir / "mmproj.gguf").string();
    mp.n_threads   = 2;
    const auto m   = dior::model::load(mp);
    for (const auto & e : px["images"]) {
        const std::string  name = e["image"].get<std::string>();
        const dior::image  r    = m->processor_input(dior::load_image((dir / "images" / name).string()));
        const dior::matrix want = dior::read_npy((dir / "pixels" / (name + ".npy")).string());
        ASSERT_EQ(r.width, e["width"].get<int>()) << GetParam() << " " << name;
        ASSERT_EQ(r.height, e["height"].get<int>()) << GetParam() << " " << name;
        ASSERT_EQ(want.data.size(), (size_t)3 * r.width * r.height);
        double worst = 0;
        for (int y = 0; y < r.height; ++y) {
            for (int x = 0; x < r.width; ++x) {
                for (int k = 0; k < 3; ++k) {
                    const float v = ((float)r.rgb[((size_t)y * r.width + x) * 3 + k] / 255.0f - mean[k]) / sd[k];
                    worst = std::max(worst, (double)std::fabs(v - want.data[((size_t)k * r.height + y) * r.width + x]));
                }
            }
        }
        std::printf("  %s %-18s %4dx%-4d max |pixel diff| %.2e\n", GetParam(), name.c_str(), r.width, r.height, worst);
        EXPECT_LE(worst, 1e-6) << GetParam() << " " << name;
    }
}

INSTANTIATE_TEST_SUITE_P(Families, Family,
                         testing::Values("qwen2_vl", "qwen3_vl", "gemma3", "smolvlm", "glm4v", "mistral3"),
                         [](const testing::TestParamInfo<const char *> & p) { return std::string(p.param); });

}  // namespace
