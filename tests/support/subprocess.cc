#include "support/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace evert::testing {
namespace {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "subprocess: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

int open_output(const std::string& path) {
  int fd = ::open(path.empty() ? "/dev/null" : path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die(("open " + path).c_str());
  return fd;
}

// Forks and execs; the child's stdout/stderr become `out_fd`/`err_fd`. Only
// async-signal-safe calls happen between fork and exec.
pid_t fork_exec(const std::vector<std::string>& argv, int out_fd, int err_fd) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    int null_in = ::open("/dev/null", O_RDONLY);
    if (null_in < 0 || ::dup2(null_in, STDIN_FILENO) < 0 || ::dup2(out_fd, STDOUT_FILENO) < 0 ||
        ::dup2(err_fd, STDERR_FILENO) < 0)
      ::_exit(126);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "wait status " + std::to_string(status);
}

std::string ProcessResult::describe() const {
  std::string s = timed_out ? "timed out" : term_signal ? "signal " + std::to_string(term_signal)
                                                        : "exit " + std::to_string(exit_code);
  return s + "\n--- stdout:\n" + out + "--- stderr:\n" + err;
}

ProcessResult run_process(const std::vector<std::string>& argv, int64_t timeout_ms) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) die("pipe2");
  pid_t pid = fork_exec(argv, out_pipe[1], err_pipe[1]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ProcessResult result;
  int64_t deadline = now_ms() + timeout_ms;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    int n = ::poll(fds, 2, int(left));
    if (n < 0 && errno != EINTR) die("poll");
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, size_t(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  return result;
}

ChildProcess ChildProcess::spawn(const std::vector<std::string>& argv, bool pipe_stdout,
                                 const std::string& stdout_path, const std::string& stderr_path) {
  int read_end = -1;
  int out_fd;
  if (pipe_stdout) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) die("pipe2");
    read_end = p[0];
    out_fd = p[1];
  } else {
    out_fd = open_output(stdout_path);
  }
  int err_fd = open_output(stderr_path);
  pid_t pid = fork_exec(argv, out_fd, err_fd);
  ::close(out_fd);
  ::close(err_fd);
  return ChildProcess(pid, read_end);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), stdout_fd_(other.stdout_fd_), status_(other.status_) {
  other.pid_ = -1;
  other.stdout_fd_ = -1;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && running()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

bool ChildProcess::signal(int sig) {
  if (pid_ <= 0 || !running()) return false;
  return ::kill(pid_, sig) == 0;
}

std::optional<int> ChildProcess::wait_for(int64_t timeout_ms) {
  if (status_) return status_;
  int64_t deadline = now_ms() + timeout_ms;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = status;
      return status_;
    }
    if (r < 0 && errno != EINTR) die("waitpid");
    if (now_ms() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace evert::testing
