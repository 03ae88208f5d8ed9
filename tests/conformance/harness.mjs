// The real pieces the conformance suite drives: a fetchrelay process (the binary under test, on
// a config of its own, port 0, store in a temporary folder) and a sink on 127.0.0.1 that keeps
// every request it receives and verifies each signature with the SDK's own Receiver.
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { Receiver } from "@upstash/qstash";

export const TOKEN = "conformance_token_a";
export const OTHER_TOKEN = "conformance_token_b";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// Polls `check` every 50 ms until it returns a truthy value or `ms` pass; returns its last value.
export async function until(check, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v || Date.now() > end) return v;
    await sleep(50);
  }
}

export class Relay {
  constructor(bin) {
    this.bin = bin;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "fetchrelay-qstash-"));
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
    fs.writeFileSync(path.join(this.dir, "relay.yaml"), this.config());
    const portFile = path.join(this.dir, "port");
    fs.rmSync(portFile, { force: true });
    const log = fs.openSync(path.join(this.dir, "relay.log"), "a");
    this.proc = spawn(this.bin, ["serve", "--config", path.join(this.dir, "relay.yaml"), "--port-file", portFile], {
      stdio: ["ignore", log, log],
    });
    this.exited = new Promise((resolve) => this.proc.on("exit", (code, signal) => resolve({ code, signal })));
    const port = await until(() => fs.existsSync(portFile) && Number(fs.readFileSync(portFile, "utf8").trim()), 30_000);
    if (!port) throw new Error("the relay did not start:\n" + this.log());
    this.port = port;
    this.baseUrl = `http://127.0.0.1:${port}`;
  }

  log() {
    try {
      return fs.readFileSync(path.join(this.dir, "relay.log"), "utf8");
    } catch {
      return "";
    }
  }

  /// SIGTERM, and the exit status.
  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return this.exited;
    this.proc.kill("SIGTERM");
    return this.exited;
  }

  /// A raw call to the relay (for what the SDK 2.12 has no method for, e.g. /v2/keys).
  async call(method, target, { token = TOKEN, body, headers = {} } = {}) {
    const res = await fetch(this.baseUrl + target, {
      method,
      body,
      headers: { Authorization: `Bearer ${token}`, ...headers },
    });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json, headers: res.headers };
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
