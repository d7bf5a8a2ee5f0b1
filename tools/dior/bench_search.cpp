// dior bench-search: search latency on a store of N random vectors (one setting), as `dior search`
// and `dior serve` run it: reading the setting from the store, indexing it, then single queries;
// next to it, faiss' exact flat index on the same vectors. Prints numbers; asserts nothing.
#include "commands.h"
#include "query.h"

#include <chrono>
#include <cstring>
#include <faiss/IndexFlat.h>
#include <filesystem>
#include <memory>
#include <random>
#include <unistd.h>

namespace fs = std::filesystem;

namespace dior::cli {
namespace {

struct bench_search_options {
    int         n = 10000, d = 2048, queries = 50, k = 10;
    std::string db;  // default: a temporary file, removed afterwards
};

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int run_bench_search(const bench_search_options & o) {
    const std::string db =
        o.db.empty() ? (fs::temp_directory_path() / ("dior-bench-search-" + std::to_string(getpid()) + ".db")).string()
                     : o.db;
    struct cleanup {
        std::string path;
        bool        remove;
        ~cleanup() {
            if (remove) {
                std::error_code ec;
                for (const char * suffix : { "", "-wal", "-shm" }) {
                    fs::remove(path + suffix, ec);
                }
            }
        }
    } clean{ db, o.db.empty() };

    std::mt19937                    rng(1);
    std::normal_distribution<float> g(0.0f, 1.0f);
    {
        auto    st = store::open(db);
        setting s;
        s.dataset        = "bench";
        s.model_id       = "random";
        s.prompt_type    = "describe";
        s.condition      = "car color";
        s.n_embd         = o.d;
        const int64_t id = st->add_setting(s);
        const auto    t0 = std::chrono::steady_clock::now();
        for (int i0 = 0; i0 < o.n; i0 += 1000) {
            std::vector<store::image_vectors> batch;
            for (int i = i0; i < std::min(o.n, i0 + 1000); ++i) {
                store::image_vectors iv;
                char                 name[32];
                std::snprintf(name, sizeof name, "img%07d.jpg", i);
                iv.image.path   = name;
                iv.image.sha256 = sha256_hex(name, std::strlen(name));
                std::vector<float> v((size_t)o.d);
                for (auto & x : v) {
                    x = g(rng);
                }
                iv.vectors.emplace_back(id, std::move(v));
                batch.push_back(std::move(iv));
            }
            st->put_all(batch);
        }
        std::printf("store of %d vectors of %d floats (%.0f MB): written in %.1f s\n", o.n, o.d,
                    (double)o.n * o.d * 4 / 1e6, ms_since(t0) / 1000);
    }
    auto       st   = store::open(db, true);
    const auto sets = st->settings();

    auto                     t0 = std::chrono::steady_clock::now();
    std::vector<std::string> paths;
    matrix                   x    = st->vectors(sets[0].id, &paths);
    const double             read = ms_since(t0);
    t0                            = std::chrono::steady_clock::now();
    vector_index l2(x, metric::l2);
    const double build = ms_since(t0);
    vector_index cosine(x, metric::cosine);
    std::printf("read the setting from the store     %9.1f ms\n", read);
    std::printf("index it (norms)                    %9.1f ms\n", build);

    std::vector<std::vector<float>> qs;
    for (int q = 0; q < o.queries; ++q) {
        qs.push_back(l2.vector(rng() % (unsigned)o.n));
    }
    for (const vector_index * ix : { &l2, &cosine }) {
        t0 = std::chrono::steady_clock::now();
        for (const auto & q : qs) {
            ix->search(q.data(), q.size(), (size_t)o.k);
        }
        std::printf("one query, %-6s, k = %d (dior)     %9.2f ms\n", metric_name(ix->kind()), o.k,
                    ms_since(t0) / o.queries);
    }
    // The alternative: faiss' exact flat index, as Debian builds it.
    faiss::IndexFlatL2 flat((faiss::Index::idx_t)o.d);
    t0 = std::chrono::steady_clock::now();
    flat.add((faiss::Index::idx_t)o.n, x.data.data());
    std::printf("faiss IndexFlatL2: add              %9.1f ms\n", ms_since(t0));
    std::vector<float>               d((size_t)o.k);
    std::vector<faiss::Index::idx_t> ids((size_t)o.k);
    t0 = std::chrono::steady_clock::now();
    for (const auto & q : qs) {
        flat.search(1, q.data(), o.k, d.data(), ids.data());
    }
    std::printf("one query, l2    , k = %d (faiss)    %9.2f ms\n", o.k, ms_since(t0) / o.queries);
    std::vector<float> all;
    for (const auto & q : qs) {
        all.insert(all.end(), q.begin(), q.end());
    }
    std::vector<float>               dd(qs.size() * (size_t)o.k);
    std::vector<faiss::Index::idx_t> ii(dd.size());
    t0 = std::chrono::steady_clock::now();
    flat.search((faiss::Index::idx_t)qs.size(), all.data(), o.k, dd.data(), ii.data());
    std::printf("%d queries at once (faiss, BLAS)    %9.2f ms a query\n", o.queries, ms_since(t0) / o.queries);
    return exit_ok;
}

}  // namespace

void register_bench_search(CLI::App & app, int & exit_code) {
    auto   o   = std::make_shared<bench_search_options>();
    auto * cmd = app.add_subcommand("bench-search", "search latency on a store of N random vectors");
    cmd->add_option("-n", o->n, "vectors")->default_str("10000");
    cmd->add_option("-d", o->d, "width (2048: Qwen2.5-VL-3B, 3584: 7B)")->default_str("2048");
    cmd->add_option("--queries", o->queries, "queries to average over")->default_str("50");
    cmd->add_option("-k", o->k, "neighbours per query")->default_str("10");
    cmd->add_option("--db", o->db, "write the store here and keep it (default: a temporary file)");
    cmd->callback([o, &exit_code] { exit_code = run_bench_search(*o); });
}

}  // namespace dior::cli
