// Time behind an interface (STYLE.md habit 12): production code asks a
// Clock; tests pass a ManualClock and advance time without sleeping.
#pragma once

#include <atomic>
#include <cstdint>

namespace evert {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock milliseconds since the Unix epoch (Kafka timestamps).
  virtual int64_t now_ms() const = 0;
  // Monotonic nanoseconds, for measuring durations.
  virtual int64_t monotonic_ns() const = 0;

  // The process-wide real clock.
  static Clock& system();
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : now_ms_(start_ms) {}
  int64_t now_ms() const override { return now_ms_.load(); }
  int64_t monotonic_ns() const override { return now_ms_.load() * 1'000'000; }
  void advance_ms(int64_t delta_ms) { now_ms_ += delta_ms; }
  void set_ms(int64_t ms) { now_ms_ = ms; }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace evert
