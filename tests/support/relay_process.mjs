// The real fetchrelay process for the Node suites (tests/conformance, tests/console), as
// relay_process.h is for the C++ ones: started in a folder of its own on a config with port 0 and
// a port file, called over loopback with fetch, stopped with SIGTERM.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

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

/// The binary `bin` run in folder `dir`: relay.yaml (the config), port (the port file) and
/// relay.log (its stdout and stderr, appended across restarts) live there.
export class RelayProcess {
  constructor(bin, dir) {
    this.bin = bin;
    this.dir = dir;
  }

  /// Writes `configText` to relay.yaml, starts `fetchrelay serve` on it and waits (up to `waitMs`)
  /// for the port file; sets `port` and `baseUrl`. Throws with the log if the relay did not start.
  async start(configText, { waitMs = 30_000 } = {}) {
    const configFile = path.join(this.dir, "relay.yaml");
    fs.writeFileSync(configFile, configText);
    const portFile = path.join(this.dir, "port");
    fs.rmSync(portFile, { force: true });
    const log = fs.openSync(path.join(this.dir, "relay.log"), "a");
    this.proc = spawn(this.bin, ["serve", "--config", configFile, "--port-file", portFile], {
      stdio: ["ignore", log, log],
    });
    this.exited = new Promise((resolve) => this.proc.on("exit", (code, signal) => resolve({ code, signal })));
    const port = await until(() => fs.existsSync(portFile) && Number(fs.readFileSync(portFile, "utf8").trim()), waitMs);
    if (!port) throw new Error("the relay did not start:\n" + this.log());
    this.port = port;
    this.baseUrl = `http://127.0.0.1:${port}`;
  }

  /// What the relay wrote so far ("" if nothing).
  log() {
    try {
      return fs.readFileSync(path.join(this.dir, "relay.log"), "utf8");
    } catch {
      return "";
    }
  }

  /// SIGTERM, then the exit status ({code, signal}).
  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return this.exited;
    this.proc.kill("SIGTERM");
    return this.exited;
  }

  /// A raw call to the relay, with `Authorization: Bearer <bearer>` when `bearer` is given (the
  /// given `headers` go after it); `json` is the parsed body, or undefined if it is not JSON.
  async call(method, target, { bearer, body, headers = {} } = {}) {
    const auth = bearer === undefined ? {} : { Authorization: `Bearer ${bearer}` };
    const res = await fetch(this.baseUrl + target, { method, body, headers: { ...auth, ...headers } });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }
}
