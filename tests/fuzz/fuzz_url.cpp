// Fuzz target: the URL parser, origins, listen addresses, IPs and CIDRs, and the SSRF address
// check (core/url.h, core/net.h, core/address_policy.h).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/address_policy.h"
#include "core/net.h"
#include "core/url.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto u = fetchrelay::parse_url(text);
  auto o = fetchrelay::url_origin(text);
  if (u.is_ok() != o.is_ok()) std::abort();  // an origin exactly for the URLs that parse
  (void)fetchrelay::parse_listen_address(text);
  (void)fetchrelay::parse_cidr(text);
  if (auto ip = fetchrelay::parse_ip(text); ip.is_ok()) {
    fetchrelay::address_policy strict(false, {});
    fetchrelay::address_policy open(true, {});
    if (!open.permits(*ip)) std::abort();  // allow_private_networks lets every address through
    (void)strict.permits(*ip);
  }
  return 0;
}
