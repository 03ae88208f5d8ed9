// The HTTP routes: turns requests into actor messages and answers into responses.
// The actors never see HTTP types.
#pragma once

#include "actors/system.h"
#include "http/server.h"

namespace fetchrelay::app {

struct api_deps {
  caf::actor_system* system = nullptr;
  actors::health_actor health;
};

http::handler make_api_handler(api_deps deps);

}  // namespace fetchrelay::app
