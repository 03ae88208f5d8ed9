// A thread-local scope in which reply paths may hold their answers and hand them over together
// when it closes. The job manager opens one around the answers of a group commit, so the HTTP
// server's io thread is woken once per commit rather than once per job. Code that knows nothing
// of batching works unchanged: with no scope open, answers leave at once.
#pragma once

#include <functional>
#include <vector>

namespace fetchrelay {

class reply_batch {
 public:
  /// Opens a scope on this thread; a scope opened inside another joins it.
  reply_batch();
  /// Closes the scope; the outermost runs every flush registered, in order.
  ~reply_batch();
  reply_batch(const reply_batch&) = delete;
  reply_batch& operator=(const reply_batch&) = delete;

  /// The open scope on this thread, or nullptr.
  static reply_batch* current() noexcept;

  /// Runs `flush` when the outermost scope closes.
  void at_close(std::function<void()> flush);

 private:
  reply_batch* outer_;
  std::vector<std::function<void()>> flushes_;
};

}  // namespace fetchrelay
