// The pattern the destination actor uses: an actor starts an HTTP attempt and receives the
// outcome as an ordinary message, sent with caf::anon_send from the client's io thread.
#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <future>

#include "actors/system.h"
#include "http/client.h"
#include "tests/support/test_origin.h"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::http::outbound_result)

namespace fetchrelay::actors {
namespace {

using start_atom = caf::atom_constant<caf::atom("start")>;

TEST(ClientBridge, OutcomeArrivesInTheActorAsAMessage) {
  test::test_origin origin;
  http::client_options o;
  o.allow_networks = {*parse_cidr("127.0.0.0/8")};
  auto created = http::client::create(o);
  ASSERT_TRUE(created.is_ok());
  auto& client = *created.value();

  caf::actor_system_config cfg;
  configure(cfg, {1, false});
  caf::actor_system sys(cfg);
  std::promise<std::pair<int, bool>> seen;
  std::string url = "http://127.0.0.1:" + std::to_string(origin.port()) + "/ok";
  // (At least one spawn argument: CAF 0.17.6 binds a null reference for an empty argument
  // tuple, which UBSan reports.)
  auto a = sys.spawn([&](caf::event_based_actor* self, std::string url) -> caf::behavior {
    return {
        [=, &client](start_atom) {
          caf::actor me = caf::actor_cast<caf::actor>(self);
          client.send({"GET", url, {}, ""}, std::chrono::seconds(5),
                      [me](http::outbound_result r) { caf::anon_send(me, std::move(r)); });
        },
        [=, &seen](const http::outbound_result& r) {
          // Runs inside the actor: on a CAF worker, not the client's io thread.
          seen.set_value({r.response ? r.response->status : -1,
                          self->current_mailbox_element() != nullptr});
          self->quit();
        },
    };
  }, url);
  caf::anon_send(a, start_atom::value);
  auto f = seen.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto [status, in_actor] = f.get();
  EXPECT_EQ(status, 200);
  EXPECT_TRUE(in_actor);
}

}  // namespace
}  // namespace fetchrelay::actors
