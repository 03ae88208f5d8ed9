// The schema of fetchrelay.yaml, in the host's JSON-schema subset (see config/schema.h).
// Every field has a description and, where it has one, its default. Keep
// examples/fetchrelay.yaml and docs/configuration.md in step with this file.
#include "config/config.h"

namespace fetchrelay::config {
namespace {

constexpr const char* schema_text = R"json({
  "type": "object",
  "additionalProperties": false,
  "required": ["storage", "auth"],
  "properties": {
    "log": {
      "type": "object", "additionalProperties": false, "default": {},
      "description": "Logging; --log-format and --log-level on the command line win.",
      "properties": {
        "level": {"type": "string", "enum": ["trace", "debug", "info", "warn", "error"],
                  "default": "info", "description": "Lowest level written."},
        "format": {"type": "string", "enum": ["text", "json"], "default": "text",
                   "description": "text lines, or one JSON object per line."}
      }
    },
    "server": {
      "type": "object", "additionalProperties": false, "default": {},
      "description": "The API server.",
      "properties": {
        "listen": {"type": "string", "format": "listen-address", "default": "127.0.0.1:8080",
                   "description": "host:port to bind; port 0 picks a free port."},
        "io_threads": {"type": "integer", "minimum": 1, "maximum": 64, "default": 1,
                       "description": "Threads running the HTTP server."},
        "worker_threads": {"type": "integer", "minimum": 1, "maximum": 64, "default": 1,
                           "description": "CAF scheduler threads running the actors (1 measured fastest on 2 cores)."},
        "max_connections": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 10000,
                            "description": "Open client connections at most; more are answered 503 and closed."},
        "header_timeout": {"type": "string", "format": "duration", "default": "10s",
                           "description": "Time to receive a request's headers (slowloris guard)."},
        "body_timeout": {"type": "string", "format": "duration", "default": "60s",
                         "description": "Time to receive a request's body after its headers."},
        "idle_timeout": {"type": "string", "format": "duration", "default": "60s",
                         "description": "How long an idle keep-alive connection is kept."},
        "shutdown_grace": {"type": "string", "format": "duration", "default": "10s",
                           "description": "On SIGTERM, time for in-flight requests to finish."}
      }
    },
    "storage": {
      "type": "object", "additionalProperties": false,
      "description": "Where jobs are stored: embedded LevelDB (one relay), or PostgreSQL (one or several relays).",
      "properties": {
        "backend": {"type": "string", "enum": ["leveldb", "postgres"], "default": "leveldb",
                    "description": "leveldb: files in storage.path; postgres: the database storage.postgres.dsn names."},
        "path": {"type": "string", "minLength": 1,
                 "description": "Directory of the LevelDB store; created if missing. Required with leveldb, refused with postgres."},
        "postgres": {
          "type": "object", "additionalProperties": false,
          "description": "The PostgreSQL store (backend: postgres). The relay creates and migrates its tables in an existing database.",
          "required": ["dsn"],
          "properties": {
            "dsn": {"type": "string", "minLength": 1, "secret": true,
                    "description": "libpq connection string, URI or key=value; give a password through ${VAR}."},
            "schema": {"type": "string", "default": "",
                       "description": "Schema of the tables, created if missing; empty: the DSN's search_path (public)."}
          }
        },
        "sync": {"type": "boolean", "default": true,
                 "description": "fsync each commit; false risks acknowledged jobs on a power cut."},
        "retention": {"type": "string", "format": "duration", "default": "7d",
                      "description": "How long terminal jobs are kept."}
      }
    },
    "cluster": {
      "type": "object", "additionalProperties": false, "default": {},
      "description": "Several relays on one PostgreSQL database (storage.backend: postgres): shard leases and fencing.",
      "properties": {
        "node_id": {"type": "string", "default": "", "maxLength": 200,
                    "description": "This relay's name, unique among live relays; empty: <hostname>:<port>."},
        "lease": {"type": "string", "format": "duration", "default": "10s",
                  "description": "Shard lease, renewed every tenth of it; a relay stops writing after 80 % of it without a renewal, and a dead relay's shards move once it lapses."}
      }
    },
    "auth": {
      "type": "object", "additionalProperties": false,
      "description": "API keys; each key belongs to one tenant.",
      "required": ["keys"],
      "properties": {
        "keys": {
          "type": "array", "minItems": 1,
          "items": {
            "type": "object", "additionalProperties": false, "required": ["tenant", "key"],
            "properties": {
              "tenant": {"type": "string", "minLength": 1, "maxLength": 64,
                         "description": "Tenant name: letters, digits, _ and -."},
              "key": {"type": "string", "minLength": 1, "secret": true,
                      "description": "The bearer key; give it through ${VAR}."}
            }
          }
        }
      }
    },
    "limits": {
      "type": "object", "additionalProperties": false, "default": {},
      "description": "Admission limits.",
      "properties": {
        "max_body": {"type": "string", "format": "size", "default": "1MiB",
                     "description": "Largest request body; larger answers 413."},
        "max_header_size": {"type": "string", "format": "size", "default": "32KiB",
                            "description": "Largest request header block; larger answers 431."},
        "max_delay": {"type": "string", "format": "duration", "default": "365d",
                      "description": "Longest X-Delay or X-Not-Before distance."},
        "max_retries": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 100,
                        "description": "Largest X-Retries."},
        "idempotency_window": {"type": "string", "format": "duration", "default": "24h",
                               "description": "How long an X-Idempotency-Key is remembered."},
        "max_pending_per_tenant": {"type": "integer", "minimum": 1, "default": 10000000,
                                   "description": "Non-terminal jobs per tenant; more answers 429."},
        "max_in_flight": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 4096,
                          "description": "Delivery attempts in flight across all origins."}
      }
    },
    "delivery": {
      "type": "object", "additionalProperties": false, "default": {},
      "description": "Outbound HTTP.",
      "properties": {
        "connect_timeout": {"type": "string", "format": "duration", "default": "5s",
                            "description": "Time to resolve, connect and handshake."},
        "max_connections_per_origin": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 64,
                                       "description": "Pooled sockets per scheme://host:port."},
        "pool_idle_timeout": {"type": "string", "format": "duration", "default": "4s",
                              "description": "An idle pooled connection is closed after this."},
        "response_body_limit": {"type": "string", "format": "size", "default": "1MiB",
                                "description": "Response bytes read at most; past it the connection is closed (the status still counts)."},
        "hibernate_after": {"type": "string", "format": "duration", "default": "30s",
                            "description": "A job waiting longer than this leaves memory until due."},
        "ca_file": {"type": ["string", "null"], "default": null,
                    "description": "Extra CA bundle (PEM) trusted besides the system store."},
        "allow_private_networks": {"type": "boolean", "default": false,
                                   "description": "Allow loopback, private and link-local targets (development only)."},
        "allow_networks": {"type": "array", "default": [],
                           "items": {"type": "string", "format": "cidr"},
                           "description": "CIDR blocks allowed even though private."}
      }
    },
    "plugins": {
      "type": "object", "additionalProperties": false, "default": {},
      "description": "Loadable plugins.",
      "properties": {
        "search_path": {"type": "array", "items": {"type": "string", "minLength": 1},
                        "default": ["./build/plugins"],
                        "description": "Directories searched for <name>.so, in order."},
        "load": {"type": "array", "items": {"type": "string", "minLength": 1}, "default": [],
                 "description": "Plugins to load at start-up, by name."}
      }
    },
    "policies": {
      "type": "object", "default": {},
      "description": "Named delivery policies; \"default\" is used when no route matches.",
      "additionalProperties": {
        "type": "object", "additionalProperties": false,
        "properties": {
          "timeout": {"type": "string", "format": "duration", "default": "15s",
                      "description": "Per-attempt timeout."},
          "max_timeout": {"type": "string", "format": "duration", "default": "10m",
                          "description": "Largest X-Timeout accepted."},
          "retry": {
            "type": "object", "additionalProperties": false, "default": {},
            "description": "Either an explicit schedule or exponential backoff.",
            "properties": {
              "attempts": {"type": "integer", "minimum": 1, "default": 10,
                           "description": "Attempts in all, the first included; at most limits.max_retries + 1."},
              "schedule": {"type": "array", "minItems": 1, "items": {"type": "string", "format": "duration"},
                           "description": "Wait before retry 1, 2, ...; the last entry repeats."},
              "backoff": {"type": "string", "enum": ["exponential"],
                          "description": "Use base * factor^n capped at max instead of a schedule."},
              "base": {"type": "string", "format": "duration", "description": "First wait (exponential)."},
              "factor": {"type": "number", "minimum": 1, "maximum": 100, "description": "Growth per retry (exponential)."},
              "max": {"type": "string", "format": "duration", "description": "Longest wait (exponential)."},
              "jitter": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.2,
                         "description": "Random spread, as a fraction of each wait."}
            }
          },
          "non_retryable": {"type": "array", "default": [410],
                            "items": {"type": "integer", "minimum": 100, "maximum": 599},
                            "description": "Statuses that fail the job at once."},
          "pipeline": {"type": "array", "default": [],
                       "items": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
                       "description": "Plugins run on each attempt, in order: [{name: {config}}]."}
        }
      }
    },
    "queues": {
      "type": "array", "default": [],
      "description": "Queues made (or set to this parallelism) at start; X-Queue and PUT /v1/queues make others.",
      "items": {
        "type": "object", "additionalProperties": false, "required": ["tenant", "name"],
        "properties": {
          "tenant": {"type": "string", "minLength": 1, "maxLength": 64, "description": "The tenant that owns it."},
          "name": {"type": "string", "minLength": 1, "maxLength": 64, "description": "Letters, digits, _ . and -."},
          "parallelism": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1,
                          "description": "Jobs of the queue in progress at once at most."}
        }
      }
    },
    "qstash": {
      "type": "object", "additionalProperties": false, "default": {},
      "description": "The QStash-compatible API (/v2): the official @upstash/qstash SDK works with baseUrl = this relay and token = an API key.",
      "properties": {
        "enabled": {"type": "boolean", "default": false, "description": "Serve the /v2 routes."},
        "current_signing_key": {"type": "string", "minLength": 1, "secret": true,
                                "description": "Signs deliveries (Upstash-Signature) of tenants without a pair of their own; seeds the store only."},
        "next_signing_key": {"type": "string", "minLength": 1, "secret": true,
                             "description": "The key that becomes current at the next rotation."},
        "tenants": {
          "type": "object", "default": {},
          "description": "A signing key pair per tenant (tenant: {current_signing_key, next_signing_key}).",
          "additionalProperties": {
            "type": "object", "additionalProperties": false,
            "required": ["current_signing_key", "next_signing_key"],
            "properties": {
              "current_signing_key": {"type": "string", "minLength": 1, "secret": true, "description": "This tenant's current key."},
              "next_signing_key": {"type": "string", "minLength": 1, "secret": true, "description": "This tenant's next key."}
            }
          }
        }
      }
    },
    "routes": {
      "type": "array", "default": [],
      "description": "First match picks the policy of a job without X-Policy.",
      "items": {
        "type": "object", "additionalProperties": false, "required": ["match", "policy"],
        "properties": {
          "match": {
            "type": "object", "additionalProperties": false, "required": ["host"],
            "properties": {
              "host": {"type": "string", "minLength": 1,
                       "description": "Exact host, or *.example.com for its subdomains."},
              "path_prefix": {"type": "string", "description": "Only paths starting with this."}
            }
          },
          "policy": {"type": "string", "minLength": 1, "description": "A name under policies."}
        }
      }
    }
  }
})json";

}  // namespace

const json& relay_schema() {
  static const json schema = json::parse(schema_text);
  return schema;
}

}  // namespace fetchrelay::config
