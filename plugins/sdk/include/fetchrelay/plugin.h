/* The fetchrelay plugin ABI, version 1 (DESIGN §5). Plain C: no C++ object, exception or
 * allocation crosses it.
 *
 * A plugin is a shared object exporting one symbol,
 *
 *     const fr_plugin_v1* fetchrelay_plugin_v1(void);
 *
 * which returns the plugin's table. The host loads it with RTLD_NOW | RTLD_LOCAL, refuses a
 * table whose abi_version differs from FETCHRELAY_PLUGIN_ABI_VERSION, validates each config
 * block against config_schema, and creates one instance per (origin, policy) that uses it.
 *
 * Threading: an instance is only ever called from one thread at a time (its destination
 * actor), so it needs no locks. Different instances may run concurrently; keep no mutable
 * globals.
 *
 * Ownership, for every function below:
 *   - Strings the host hands out (fr_str) are owned by the host and valid until the hook that
 *     received them returns. Copy what you keep.
 *   - Strings and buffers the plugin passes to the host are copied by the host before the call
 *     returns; the plugin keeps ownership.
 *   - The table, name and config_schema returned by the entry point are owned by the plugin and
 *     must stay valid until the process exits (the host never unloads a plugin).
 *   - An instance from create() is owned by the host and released with destroy().
 */
#ifndef FETCHRELAY_PLUGIN_H
#define FETCHRELAY_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FETCHRELAY_PLUGIN_ABI_VERSION 1u
/* The host table's revision, in the high 16 bits of fr_host_v1::abi_version (the low 16 bits are
 * FETCHRELAY_PLUGIN_ABI_VERSION). The table only grows at its end; a function a revision added
 * may be called only when (host->abi_version >> 16) >= that revision. 1: describe, count_seconds.
 * 2: take_tokens, pause_tokens, relay_count (several relays on one database). */
#define FETCHRELAY_HOST_REVISION 2u
#define FR_HOST_REVISION(host) ((host)->abi_version >> 16)
#define FETCHRELAY_PLUGIN_ENTRY "fetchrelay_plugin_v1"

/* A string the host owns: `size` bytes at `data`, not NUL-terminated. */
typedef struct fr_str {
  const char* data;
  size_t size;
} fr_str;

/* One delivery attempt as the plugins see it: opaque, host-owned, valid during the hook. */
typedef struct fr_attempt fr_attempt;

typedef enum fr_verdict_kind {
  FR_PROCEED = 0, /* go on with the next plugin, then send */
  FR_DEFER = 1,   /* do not send now; run the job again at defer_until_ms; no attempt counted */
  FR_REJECT = 2   /* do not send; the job fails at once with `reason` */
} fr_verdict_kind;

/* What on_attempt decides. The host zeroes it before the call (FR_PROCEED). */
typedef struct fr_verdict {
  int32_t kind;            /* fr_verdict_kind */
  int64_t defer_until_ms;  /* FR_DEFER: absolute time on the host clock (host->now_ms) */
  char reason[256];        /* FR_DEFER, FR_REJECT: NUL-terminated; longer text is cut */
} fr_verdict;

/* What happened to an attempt that was sent (or stopped by a later plugin). */
typedef struct fr_outcome {
  int32_t status;          /* HTTP status; 0: no response */
  fr_str error_class;      /* "" or dns, connect, tls, timeout, reset, protocol, blocked, unusable,
                              rejected, deferred (a later plugin stopped it) */
  int64_t retry_after_ms;  /* absolute host time from a Retry-After header; -1 if none */
  int64_t duration_ms;
} fr_outcome;

typedef enum fr_log_level { FR_LOG_DEBUG = 0, FR_LOG_INFO = 1, FR_LOG_WARN = 2, FR_LOG_ERROR = 3 } fr_log_level;

/* The host's callbacks. Attempt functions may be called only during a hook, with the attempt
 * that hook received. */
typedef struct fr_host_v1 {
  uint32_t abi_version; /* FETCHRELAY_PLUGIN_ABI_VERSION | FETCHRELAY_HOST_REVISION << 16 */
  void* ctx;            /* pass back as the first argument of the functions taking `ctx` */

  /* The attempt. */
  fr_str (*method)(const fr_attempt* a);
  fr_str (*url)(const fr_attempt* a);
  fr_str (*job_id)(const fr_attempt* a);
  uint32_t (*attempt_number)(const fr_attempt* a); /* 1-based */
  fr_str (*tenant)(const fr_attempt* a);
  fr_str (*policy)(const fr_attempt* a);

  /* Headers sent to the target. Names compare case-insensitively. */
  size_t (*header_count)(const fr_attempt* a);
  /* 1 and the i-th header (0-based), or 0 past the end. */
  int (*header_at)(const fr_attempt* a, size_t i, fr_str* name, fr_str* value);
  /* 1 and the first value of `name` (NUL-terminated), or 0 if absent. */
  int (*get_header)(const fr_attempt* a, const char* name, fr_str* value);
  /* Replaces every header `name` with one of this value. 0 on success; -1 if the name or value
   * is not allowed (CR, LF or NUL; hop-by-hop, Host, Content-Length). */
  int (*set_header)(fr_attempt* a, const char* name, const char* value);
  /* Removes every header `name`; returns how many went. */
  size_t (*remove_header)(fr_attempt* a, const char* name);

  /* The request body; set_body replaces it (the host copies `size` bytes). */
  fr_str (*body)(const fr_attempt* a);
  void (*set_body)(fr_attempt* a, const char* data, size_t size);

  /* The host clock in ms since the Unix epoch (injected in tests), and 64 random bits. */
  int64_t (*now_ms)(void* ctx);
  uint64_t (*random_u64)(void* ctx);
  /* One log line (NUL-terminated), tagged with the plugin's name. Never log secrets. */
  void (*log)(void* ctx, int32_t level, const char* message);
  /* Adds to counter fetchrelay_plugin_<plugin>_<name>_total in /metrics (name: [a-z0-9_]+),
   * labelled with the instance's origin and policy. */
  void (*count)(void* ctx, const char* name, uint64_t delta);
  /* Sets gauge fetchrelay_plugin_<plugin>_<name>, labelled likewise. */
  void (*gauge)(void* ctx, const char* name, int64_t value);

  /* Revision 1 (FR_HOST_REVISION(host) >= 1; a host of revision 0 does not have them: a plugin
   * built before never reads them, and the C++ SDK skips them on such a host). */
  /* The HELP text of this plugin's series `name` (as given to count, gauge or count_seconds),
   * shown in /metrics; call it from create. Without it the host writes a generic one. */
  void (*describe)(void* ctx, const char* name, const char* help);
  /* Adds seconds (a duration: waits, time spent) to counter
   * fetchrelay_plugin_<plugin>_<name>_seconds_total, labelled likewise. */
  void (*count_seconds)(void* ctx, const char* name, double seconds);

  /* Revision 2 (FR_HOST_REVISION(host) >= 2): a token bucket this instance shares with the same
   * step (plugin, origin, policy) on every relay of a cluster on one database. */
  /* Up to `want` tokens of the shared bucket (refilled at rate_per_s, at most burst) that this
   * relay may spend now. Never waits: 0 if none are at hand (more are being fetched; ask again a
   * little later); -1 if there is no shared bucket (one relay on its own store): limit locally.
   * Tokens are leased to a relay for one second, so across the cluster a target sees at most
   * burst + rate * (t + 1 s) in any t seconds. A database error grants nothing (fails closed). */
  int64_t (*take_tokens)(void* ctx, int64_t want, double rate_per_s, int64_t burst);
  /* Nothing of the shared bucket is granted to any relay before until_ms (host clock), e.g. after
   * a 429 with Retry-After. Nothing happens without a shared bucket. */
  void (*pause_tokens)(void* ctx, int64_t until_ms);
  /* The relays alive now, this one included (1 when it runs alone). */
  int32_t (*relay_count)(void* ctx);
} fr_host_v1;

/* The plugin's table. */
typedef struct fr_plugin_v1 {
  uint32_t abi_version;      /* FETCHRELAY_PLUGIN_ABI_VERSION */
  const char* name;          /* as in plugins.load: [a-z0-9_]+ */
  const char* config_schema; /* JSON Schema text in the host's subset (DESIGN §5) */

  /* A new instance configured by `config_json` (the pipeline block, already validated against
   * config_schema, defaults applied). On failure returns NULL and writes a NUL-terminated
   * message to error (at most error_size bytes). `host` outlives the instance. */
  void* (*create)(const fr_host_v1* host, const char* config_json, char* error, size_t error_size);
  void (*destroy)(void* instance);

  /* Before an attempt is sent, in pipeline order; the first verdict that is not FR_PROCEED
   * stops the chain. May change headers and body. */
  void (*on_attempt)(void* instance, fr_attempt* a, fr_verdict* out);
  /* After the attempt, in reverse order, for every plugin whose on_attempt ran. May be NULL. */
  void (*on_outcome)(void* instance, const fr_attempt* a, const fr_outcome* outcome);
} fr_plugin_v1;

typedef const fr_plugin_v1* (*fr_plugin_entry_v1)(void);

#ifdef __cplusplus
}
#endif

#endif /* FETCHRELAY_PLUGIN_H */
