/* Test plugin in plain C whose table claims ABI version 99. */
#include <fetchrelay/plugin.h>

static const fr_plugin_v1 table = {99u, "wrong_abi", "{}", 0, 0, 0, 0};

__attribute__((visibility("default"))) const fr_plugin_v1* fetchrelay_plugin_v1(void) { return &table; }
