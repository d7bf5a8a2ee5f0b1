// The settings dior starts with (dior::startup_environment): never one the user set, OpenBLAS's
// short spin with its own thread server (Debian's default build), and libgomp's short spin where
// ggml's OpenMP threads run, i.e. where libgomp is loaded (this test loads it itself, as linking
// ggml-cpu does for dior).
#include "dior.h"

#include <cblas.h>
#include <cstdlib>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <map>
#include <optional>
#include <string>

namespace {

const char * const k_variables[] = { "OPENBLAS_CORETYPE", "OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT",
                                     "OMP_WAIT_POLICY" };

// Puts the variables back as the test found them.
class saved_environment {
  public:
    saved_environment() {
        for (const char * name : k_variables) {
            const char * value = std::getenv(name);
            saved_[name]       = value ? std::optional<std::string>(value) : std::nullopt;
        }
    }

    ~saved_environment() {
        for (const auto & [name, value] : saved_) {
            value ? setenv(name.c_str(), value->c_str(), 1) : unsetenv(name.c_str());
        }
    }

  private:
    std::map<std::string, std::optional<std::string>> saved_;
};

std::map<std::string, std::string> as_map(const std::vector<std::pair<std::string, std::string>> & env) {
    std::map<std::string, std::string> m;
    for (const auto & [name, value] : env) {
        EXPECT_TRUE(m.emplace(name, value).second) << name << " twice";
    }
    return m;
}

TEST(StartupEnvironment, KeepsWhatTheUserSet) {
    saved_environment saved;
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    setenv("OPENBLAS_THREAD_TIMEOUT", "9", 1);
    setenv("GOMP_SPINCOUNT", "123", 1);
    EXPECT_TRUE(dior::startup_environment().empty());
}

TEST(StartupEnvironment, ShortSpinsWhereNothingIsSet) {
    saved_environment saved;
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    unsetenv("OPENBLAS_THREAD_TIMEOUT");
    unsetenv("GOMP_SPINCOUNT");
    unsetenv("OMP_WAIT_POLICY");
    const auto env = as_map(dior::startup_environment());

    EXPECT_EQ(env.count("OPENBLAS_CORETYPE"), 0u);
    if (openblas_get_parallel() == 1) {
        EXPECT_EQ(env.at("OPENBLAS_THREAD_TIMEOUT"), "4");
    } else {
        EXPECT_EQ(env.count("OPENBLAS_THREAD_TIMEOUT"), 0u);
    }
    const bool gomp_loaded = dlopen("libgomp.so.1", RTLD_LAZY | RTLD_NOLOAD) != nullptr;
    EXPECT_EQ(env.count("GOMP_SPINCOUNT"), gomp_loaded ? 1u : 0u);
}

TEST(StartupEnvironment, ShortOpenMpSpinOnceLibgompIsLoaded) {
    saved_environment saved;
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    setenv("OPENBLAS_THREAD_TIMEOUT", "9", 1);
    unsetenv("GOMP_SPINCOUNT");
    unsetenv("OMP_WAIT_POLICY");
    ASSERT_NE(dlopen("libgomp.so.1", RTLD_NOW), nullptr) << dlerror();  // stays loaded: as in dior
    const auto env = as_map(dior::startup_environment());
    ASSERT_EQ(env.size(), 1u);
    EXPECT_EQ(env.at("GOMP_SPINCOUNT"), "3000");
}

TEST(StartupEnvironment, AWaitPolicyTheUserChoseIsTheirs) {
    saved_environment saved;
    ASSERT_NE(dlopen("libgomp.so.1", RTLD_NOW), nullptr) << dlerror();
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    setenv("OPENBLAS_THREAD_TIMEOUT", "9", 1);
    unsetenv("GOMP_SPINCOUNT");
    for (const char * policy : { "active", "passive" }) {
        setenv("OMP_WAIT_POLICY", policy, 1);
        EXPECT_TRUE(dior::startup_environment().empty()) << policy;
    }
}

}  // namespace
