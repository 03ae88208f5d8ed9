#include "core/version.h"

namespace fetchrelay {

std::string version_line() {
  std::string out = "fetchrelay ";
  out += version();
  out += " (rev ";
  out += git_revision();
  out += ")";
  return out;
}

}  // namespace fetchrelay
