// The real pieces the conformance suite drives: a fetchrelay process (the binary under test, on
// a config of its own, port 0, store in a temporary folder) and a sink on 127.0.0.1 that keeps
// every request it receives and verifies each signature with the SDK's own Receiver.
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { Receiver } from "@upstash/qstash";
import { RelayProcess, until } from "../support/relay_process.mjs";

export { until };

export const TOKEN = "conformance_token_a";
export const OTHER_TOKEN = "conformance_token_b";

/// The relay with QStash enabled, tenants a (TOKEN) and b (OTHER_TOKEN), in a temporary folder.
export class Relay extends RelayProcess {
  constructor(bin) {
    super(bin, fs.mkdtempSync(path.join(os.tmpdir(), "fetchrelay-qstash-")));
  }

  config() {
    return [
      "server: {listen: 127.0.0.1:0}",
      `storage: {path: ${this.dir}/data}`,
      `auth: {keys: [{tenant: a, key: ${TOKEN}}, {tenant: b, key: ${OTHER_TOKEN}}]}`,
      "delivery: {allow_networks: [127.0.0.0/8]}",
      "qstash: {enabled: true, current_signing_key: sig_conformance_current, next_signing_key: sig_conformance_next}",
      "",
    ].join("\n");
  }

  async start() {
    return super.start(this.config(), { waitMs: 30_000 });
  }

  /// A raw call to the relay (for what the SDK 2.12 has no method for, e.g. /v2/keys), as `token`.
  async call(method, target, { token = TOKEN, body, headers = {} } = {}) {
    return super.call(method, target, { bearer: token, body, headers });
  }
}

/// The target: every request it receives, in arrival order, with whether its Upstash-Signature
/// verified with the SDK's Receiver and the signing keys the relay answers on GET /v2/keys.
/// Paths: /fail/* answers 500; /hold/* holds the answer 300 ms; anything else 200.
export class Sink {
  constructor() {
    this.received = [];
    this.keys = undefined;  // {current, next}: set by the test after GET /v2/keys
  }

  async start() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", async () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const got = { method: req.method, path: req.url, headers: req.headers, body, at: Date.now(), verified: false };
        const url = `http://127.0.0.1:${this.port}${req.url}`;
        if (this.keys && req.headers["upstash-signature"]) {
          try {
            const receiver = new Receiver({ currentSigningKey: this.keys.current, nextSigningKey: this.keys.next });
            got.verified = await receiver.verify({ signature: req.headers["upstash-signature"], body, url });
          } catch (e) {
            got.verifyError = e.message;
          }
        }
        this.received.push(got);
        const answer = () => {
          res.writeHead(req.url.startsWith("/fail/") ? 500 : 200, { "Content-Type": "text/plain" });
          res.end(req.url.startsWith("/fail/") ? "failing on purpose" : "ok");
        };
        if (req.url.startsWith("/hold/")) setTimeout(answer, 300);
        else answer();
      });
    });
    await new Promise((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = this.server.address().port;
    this.base = `http://127.0.0.1:${this.port}`;
  }

  stop() {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(r));
  }

  /// The requests received for message `id` (Upstash-Message-Id).
  of(id) {
    return this.received.filter((r) => r.headers["upstash-message-id"] === id);
  }

  /// Waits until `n` requests for message `id` arrived; returns them.
  async wait(id, n = 1, ms = 20_000) {
    await until(() => this.of(id).length >= n, ms);
    return this.of(id);
  }
}
