// Running the dior binary from tests: in the foreground (output captured) or in the background
// (so that a test can signal it).
#pragma once

#include <array>
#include <cstdio>
#include <fcntl.h>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <vector>

extern char ** environ;

namespace dior::test {

struct run_result {
    int         status = -1;  // exit status, or 128 + signal
    std::string output;       // stdout and stderr
};

// Runs a shell command line; stderr is captured with stdout.
inline run_result run_shell(const std::string & cmd) {
    run_result             r;
    FILE *                 p = popen((cmd + " 2>&1").c_str(), "r");
    std::array<char, 4096> buf;
    while (p && fgets(buf.data(), (int)buf.size(), p)) {
        r.output += buf.data();
    }
    const int st = p ? pclose(p) : -1;
    r.status     = WIFEXITED(st) ? WEXITSTATUS(st) : (WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1);
    return r;
}

// Starts argv[0] with its output sent to log_path; returns the pid (the process itself, no shell).
inline pid_t spawn(const std::vector<std::string> & args, const std::string & log_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char *> argv;
    for (const auto & a : args) {
        argv.push_back(const_cast<char *>(a.c_str()));
    }
    argv.push_back(nullptr);
    pid_t pid = -1;
    if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) {
        pid = -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

// Exit status as run_result::status reports it.
inline int wait_for(pid_t pid) {
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : (WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1);
}

}  // namespace dior::test
