// The loopback hub of tests/support/fake_hub.h as a program, for tests that run dior and its
// scripts as a user would (the quick start):
//   dior-fake-hub --repo OWNER/NAME=DIR... --file NAME=PATH...
// serves each file of DIR (links followed) as an LFS file of the repository, and PATH under
// /files/NAME; prints its address on the first line of stdout and serves until SIGTERM or SIGINT.
#include "fake_hub.h"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

std::string read_all(const fs::path & p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + p.string());
    }
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

int main(int argc, char ** argv) {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // the server's threads inherit the mask
    try {
        dior::test::fake_hub hub;
        for (int i = 1; i + 1 < argc; i += 2) {
            const std::string what = argv[i], spec = argv[i + 1];
            const auto        eq = spec.find('=');
            if (eq == std::string::npos || (what != "--repo" && what != "--file")) {
                std::fprintf(stderr, "usage: dior-fake-hub --repo OWNER/NAME=DIR... --file NAME=PATH...\n");
                return 1;
            }
            auto l = hub.lock();
            if (what == "--repo") {
                auto & r = hub.repos[spec.substr(0, eq)];
                for (const auto & e : fs::directory_iterator(spec.substr(eq + 1))) {
                    if (e.is_regular_file()) {
                        r.files[e.path().filename().string()] = { read_all(e.path()) };
                    }
                }
            } else {
                hub.plain[spec.substr(0, eq)] = { read_all(spec.substr(eq + 1)) };
            }
        }
        std::printf("%s\n", hub.base().c_str());
        std::fflush(stdout);
        int sig = 0;
        sigwait(&stop, &sig);
    } catch (const std::exception & e) {
        std::fprintf(stderr, "dior-fake-hub: %s\n", e.what());
        return 1;
    }
    return 0;
}
