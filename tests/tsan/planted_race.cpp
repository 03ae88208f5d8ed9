// Built only with -DFETCHRELAY_TSAN=ON: two threads write one plain int with no synchronisation.
// ThreadSanitizer must report it (ctest passes the test only when the report is in its output),
// which shows that `make test-tsan` would catch such a race in our own code.
#include <cstdio>
#include <thread>

namespace {
int shared_counter = 0;  // deliberately unprotected

void bump() {
  for (int i = 0; i < 100'000; ++i) ++shared_counter;
}
}  // namespace

int main() {
  std::thread a(bump);
  std::thread b(bump);
  a.join();
  b.join();
  std::printf("counter %d\n", shared_counter);
  return 0;
}
