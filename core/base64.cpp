#include "core/base64.h"

#include <openssl/evp.h>

namespace fetchrelay {

std::string base64_encode(std::string_view in) {
  // EVP_EncodeBlock writes 4 bytes for every 3 (rounded up) and a NUL, with no line breaks.
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace fetchrelay
