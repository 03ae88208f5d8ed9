// Test plugin (C++ SDK): its on_attempt throws.
#include <fetchrelay/plugin.hpp>
#include <stdexcept>

namespace {

class throws final : public fetchrelay::sdk::plugin {
 public:
  throws(const fetchrelay::sdk::host&, std::string_view) {}
  fetchrelay::sdk::verdict on_attempt(fetchrelay::sdk::attempt&) override { throw std::runtime_error("boom"); }
};

}  // namespace

FETCHRELAY_PLUGIN(throws, "throws", R"({"type": "object"})")
