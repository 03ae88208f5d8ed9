// Message types shared by the actors and the code that talks to them.
//
// Asio code reaches an actor only through caf::anon_send; an actor answers it through a
// `completion<T>` carried in the message, which the sender wrapped around its own reply path
// (e.g. a handler posted to the connection's strand). Actors know nothing of HTTP.
#pragma once

#include <caf/all.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace fetchrelay::actors {

/// A one-shot reply path out of the actor world. Copyable; the actor calls it from its handler.
template <class T>
class completion {
 public:
  completion() = default;
  explicit completion(std::function<void(T)> f)
      : f_(std::make_shared<std::function<void(T)>>(std::move(f))) {}

  void operator()(T value) const {
    if (f_ && *f_) (*f_)(std::move(value));
  }

 private:
  std::shared_ptr<std::function<void(T)>> f_;
};

/// What /healthz reports.
struct health_report {
  std::string version;
  std::int64_t uptime_ms = 0;
};

using ping_atom = caf::atom_constant<caf::atom("ping")>;

}  // namespace fetchrelay::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::actors::health_report>)
