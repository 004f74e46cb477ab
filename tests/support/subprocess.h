// Child processes for black-box tests: run a command to completion with its
// output captured, or start one in the background, signal it and reap it.
//
// Everything is addressed by PID; nothing here kills by name. A ChildProcess
// that is still running when destroyed is SIGKILLed and reaped, so a failing
// test never leaves a server or writer behind.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace evert::testing {

struct ProcessResult {
  int exit_code = -1;    // valid when term_signal == 0
  int term_signal = 0;   // the signal that ended it, else 0
  bool timed_out = false;
  std::string out;
  std::string err;
  // "exit 1" / "signal 9" plus stderr, for assertion messages.
  std::string describe() const;
};

// Runs `argv` (argv[0] is a path), waiting at most `timeout_ms` before
// SIGKILLing it.
ProcessResult run_process(const std::vector<std::string>& argv, int64_t timeout_ms = 30'000);

class ChildProcess {
 public:
  // Starts `argv` with stdout either piped to us (`pipe_stdout`) or written
  // to `stdout_path`, and stderr written to `stderr_path` ("" = /dev/null).
  // Aborts the test binary if fork/exec setup fails.
  static ChildProcess spawn(const std::vector<std::string>& argv, bool pipe_stdout, const std::string& stdout_path,
                            const std::string& stderr_path);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // Read end of the stdout pipe (-1 unless piped); owned by this object.
  int stdout_fd() const { return stdout_fd_; }
  bool running() const { return !status_.has_value(); }

  // Sends `sig` to this child's PID; false once it has been reaped.
  bool signal(int sig);
  // Waits up to `timeout_ms` for the child to end; returns its wait status.
  std::optional<int> wait_for(int64_t timeout_ms);

 private:
  ChildProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::optional<int> status_;
};

// "exit 0", "signal 9 (Killed)" for a wait status.
std::string describe_wait_status(int status);

// Reads a whole file ("" when missing).
std::string read_text_file(const std::string& path);

}  // namespace evert::testing
