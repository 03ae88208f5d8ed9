// Wall-clock time in milliseconds since the Unix epoch, injectable so tests control it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace fetchrelay {

class wall_clock {
 public:
  virtual ~wall_clock() = default;
  virtual std::int64_t now_ms() const = 0;
};

class system_wall_clock final : public wall_clock {
 public:
  std::int64_t now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

/// A clock that moves only when told to. Thread-safe.
class manual_wall_clock final : public wall_clock {
 public:
  explicit manual_wall_clock(std::int64_t start_ms) : now_(start_ms) {}
  std::int64_t now_ms() const override { return now_.load(); }
  void advance(std::chrono::milliseconds d) { now_ += d.count(); }
  void set(std::int64_t ms) { now_ = ms; }

 private:
  std::atomic<std::int64_t> now_;
};

}  // namespace fetchrelay
