// Test certificates made at run time with OpenSSL: a CA and leaf certificates it signs.
#pragma once

#include <string>
#include <vector>

namespace fetchrelay::test {

struct pem_pair {
  std::string cert;
  std::string key;
};

/// A self-signed CA (EC P-256, valid one day).
pem_pair make_test_ca(const std::string& common_name);

/// A server certificate signed by `ca` for the given DNS names and IP addresses.
pem_pair make_test_leaf(const pem_pair& ca, const std::vector<std::string>& dns_names,
                        const std::vector<std::string>& ip_addresses);

}  // namespace fetchrelay::test
