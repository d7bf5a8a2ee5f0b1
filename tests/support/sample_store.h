// A small store for the tests of search, report and serve: n generated images under the real
// deepfashion file names (so that the reference's labels apply), embedded by the tiny model under
// two conditions, and evaluated.
#pragma once

#include "process.h"
#include "test_images.h"
#include "test_paths.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace dior::test {

struct sample_store {
    std::filesystem::path    dir, images, db, eval;
    std::vector<std::string> paths;  // the images, as stored
};

inline std::string tiny_model_args() {
    return "-m " + tiny_dir() + "/text.gguf --mmproj " + tiny_dir() + "/mmproj.gguf -t 2";
}

inline sample_store make_sample_store(const std::filesystem::path & dir, int n,
                                      const std::string & conditions = "-c 'texture type' -c 'fabric type'") {
    sample_store s;
    s.dir    = dir;
    s.images = dir / "datasets" / "deepfashion";
    s.db     = dir / "e.db";
    s.eval   = dir / "eval";
    std::filesystem::create_directories(s.images);
    std::ifstream meta(std::string(DIOR_TEST_SOURCE_DIR) + "/data/reference/deepfashion_metadata.csv");
    std::string   line;
    std::getline(meta, line);
    for (int i = 0; i < n && std::getline(meta, line); ++i) {
        const std::string file = line.substr(0, line.find(','));
        const int         w    = 40 + 4 * i;
        write_bmp((s.images / file).string(), w, 48, pattern_rgb(w, 48, i % 7));
        s.paths.push_back((s.images / file).string());
    }
    std::sort(s.paths.begin(), s.paths.end());
    const std::string bin = dior_bin();
    auto              r   = run_shell(bin + " embed " + tiny_model_args() + " --dataset deepfashion --datasets-dir " +
                                      (dir / "datasets").string() + " " + conditions + " -o " + s.db.string());
    if (r.status != 0) {
        throw std::runtime_error("dior embed failed: " + r.output);
    }
    r = run_shell(bin + " eval --db " + s.db.string() + " -o " + s.eval.string() + " --metadata-dir " +
                  DIOR_TEST_SOURCE_DIR + "/data/reference");
    if (r.status != 0) {
        throw std::runtime_error("dior eval failed: " + r.output);
    }
    return s;
}

}  // namespace dior::test
