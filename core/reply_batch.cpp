#include "core/reply_batch.h"

#include <utility>

namespace fetchrelay {
namespace {

thread_local reply_batch* open_scope = nullptr;

}  // namespace

reply_batch::reply_batch() : outer_(open_scope) {
  if (outer_ == nullptr) open_scope = this;
}

reply_batch::~reply_batch() {
  if (outer_ != nullptr) return;
  open_scope = nullptr;
  // A flush may answer more (and so register more): run until none is left.
  for (std::size_t i = 0; i < flushes_.size(); ++i) {
    auto f = std::move(flushes_[i]);
    f();
  }
}

reply_batch* reply_batch::current() noexcept { return open_scope; }

void reply_batch::at_close(std::function<void()> flush) { flushes_.push_back(std::move(flush)); }

}  // namespace fetchrelay
