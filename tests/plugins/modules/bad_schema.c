/* Test plugin in plain C whose config schema is JSON but not a schema the host understands
 * ("properties" must be a mapping): the host refuses it at load, before any config is checked. */
#include <fetchrelay/plugin.h>

static void* create(const fr_host_v1* host, const char* config_json, char* error, size_t error_size) {
  (void)host, (void)config_json, (void)error, (void)error_size;
  return 0;
}
static void destroy(void* instance) { (void)instance; }
static void on_attempt(void* instance, fr_attempt* a, fr_verdict* out) { (void)instance, (void)a, (void)out; }

static const fr_plugin_v1 table = {FETCHRELAY_PLUGIN_ABI_VERSION, "bad_schema", "{\"properties\": [1]}",
                                   create, destroy, on_attempt, 0};

__attribute__((visibility("default"))) const fr_plugin_v1* fetchrelay_plugin_v1(void) { return &table; }
