// guarded(): a message handler that cannot take its actor down.
//
// CAF 0.17 ends an actor whose handler throws, whatever its exception handler returns. For the
// long-lived actors (manager, scheduler, destinations, store) one bad message must cost only
// that message: the wrapper catches, logs the actor and message type, and drops the message.
// A reply path (completion) carried in the dropped message is destroyed with it; an HTTP
// request waiting on it is then answered 500 by the server (http::responder).
#pragma once

#include <spdlog/spdlog.h>

#include <caf/detail/type_traits.hpp>
#include <caf/detail/type_list.hpp>
#include <exception>
#include <type_traits>
#include <utility>

namespace fetchrelay::actors {
namespace detail {

template <class F, class... Ts>
auto guarded_impl(const char* actor, const char* message, F f, caf::detail::type_list<Ts...>) {
  return [actor, message, f = std::move(f)](Ts... xs) mutable {
    try {
      f(std::forward<Ts>(xs)...);
    } catch (const std::exception& e) {
      spdlog::error("{}: the handler of '{}' threw ({}); that message is dropped, the actor goes on", actor,
                    message, e.what());
    } catch (...) {
      spdlog::error("{}: the handler of '{}' threw a non-standard exception; that message is dropped", actor,
                    message);
    }
  };
}

}  // namespace detail

/// Wraps a void handler: same signature, so CAF dispatches to it as before.
template <class F>
auto guarded(const char* actor, const char* message, F f) {
  using trait = caf::detail::get_callable_trait<F>;
  static_assert(std::is_void_v<typename trait::result_type>, "guarded() takes handlers that return nothing");
  return detail::guarded_impl(actor, message, std::move(f), typename trait::arg_types{});
}

}  // namespace fetchrelay::actors
