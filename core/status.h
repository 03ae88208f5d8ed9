// status and result<T>: errors as values, in the style of leveldb::Status.
//
// Each code says what the relay does next:
//   invalid_argument    -> the input is wrong; reject it or fail the job, never retry.
//   unavailable         -> transient; retry later.
//   resource_exhausted  -> over a limit; defer or answer 429/503.
//   not_found           -> the thing does not exist.
//   failed_precondition -> the state does not allow it (409).
//   data_loss           -> stored data is damaged; stop and alert.
//   internal            -> a bug.
//
// Thread-safety: plain values; copy freely.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace fetchrelay {

enum class status_code {
  ok = 0,
  invalid_argument,
  unavailable,
  resource_exhausted,
  not_found,
  failed_precondition,
  data_loss,
  internal,
};

std::string_view to_string(status_code code) noexcept;

/// The outcome of an operation that returns nothing else.
class [[nodiscard]] status {
 public:
  status() = default;
  status(status_code code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static status ok() { return {}; }

  bool is_ok() const noexcept { return code_ == status_code::ok; }
  explicit operator bool() const noexcept { return is_ok(); }
  status_code code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  /// "invalid_argument: message" or "ok".
  std::string to_string() const;

 private:
  status_code code_ = status_code::ok;
  std::string message_;
};

inline status invalid_argument(std::string m) {
  return {status_code::invalid_argument, std::move(m)};
}
inline status unavailable(std::string m) {
  return {status_code::unavailable, std::move(m)};
}
inline status data_loss(std::string m) { return {status_code::data_loss, std::move(m)}; }
inline status internal_error(std::string m) {
  return {status_code::internal, std::move(m)};
}

/// A value of type T or a non-ok status.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  result(status s) : v_(std::move(s)) {      // NOLINT: implicit by design
    assert(!std::get<status>(v_).is_ok() && "result<T> built from an ok status");
  }

  bool is_ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return is_ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; only valid when !is_ok().
  const status& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, status> v_;
};

}  // namespace fetchrelay
