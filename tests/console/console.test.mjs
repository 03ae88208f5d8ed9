// The built-in web console (app/console/), driven in Debian's Chromium through playwright-core
// against a real fetchrelay process: sign-in, the overview, the jobs list and its filters, one job
// (timeline, replay), queues, bulk retry, secrets never shown, tenant scoping and deep links.
// Run by run.sh: FETCHRELAY_BIN is the binary, SCREENSHOT_DIR gets one PNG per page visited.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { RelayProcess, until as untilWithin } from "../support/relay_process.mjs";

const BIN = process.env.FETCHRELAY_BIN;
const SHOTS = process.env.SCREENSHOT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), "fetchrelay-console-shots-"));
const KEY_A = "console_key_a";
const KEY_B = "console_key_b";
const WAIT = 15_000;  // every wait is bounded by this

/// Polls `check` every 50 ms until it returns a truthy value or `ms` pass; returns its last value.
const until = (check, ms = WAIT) => untilWithin(check, ms);

// ---------------------------------------------------------------------------------------------
// The relay (tests/support/relay_process.mjs, as the conformance suite starts it) and a target on
// 127.0.0.1.

class Relay extends RelayProcess {
  constructor(bin) {
    super(bin, fs.mkdtempSync(path.join(os.tmpdir(), "fetchrelay-console-")));
  }

  async start() {
    const config = [
      "server: {listen: 127.0.0.1:0}",
      `storage: {path: ${this.dir}/data}`,
      `auth: {keys: [{tenant: a, key: ${KEY_A}}, {tenant: b, key: ${KEY_B}}]}`,
      "delivery: {allow_networks: [127.0.0.0/8]}",
      "policies: {default: {timeout: 3s, retry: {attempts: 1}}}",
      "queues: [{tenant: a, name: mail, parallelism: 1}]",
      "",
    ].join("\n");
    return super.start(config, { waitMs: WAIT });
  }

  /// A call to the relay's API as `key`.
  async call(method, target, { key = KEY_A, body, headers = {} } = {}) {
    return super.call(method, target, { bearer: key, body, headers });
  }

  /// POST /v1/fetch to `url` (extra headers as given); the new job's id.
  async submit(url, { key = KEY_A, headers = {}, body = "{}" } = {}) {
    const r = await this.call("POST", "/v1/fetch", { key, body, headers: { "X-Fetch-Url": url, "Content-Type": "application/json", ...headers } });
    assert.equal(r.status, 202, `POST /v1/fetch answered ${r.status}: ${r.text}`);
    return r.json.id;
  }

  async job(id, key = KEY_A) {
    return (await this.call("GET", `/v1/jobs/${id}`, { key })).json;
  }

  /// Waits until job `id` has status `status`; its JSON.
  async waitFor(id, status, key = KEY_A) {
    const job = await until(async () => {
      const j = await this.job(id, key);
      return j && j.status === status && j;
    });
    assert.ok(job, `job ${id} did not reach ${status}: ${JSON.stringify(await this.job(id, key))}`);
    return job;
  }
}

/// /flaky/* answers 500 until `flakyOk` is set, /fail/* always 500, anything else 200.
let flakyOk = false;
const received = [];  // {path, headers}
const target = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    received.push({ path: req.url, headers: req.headers });
    const fail = req.url.startsWith("/fail/") || (req.url.startsWith("/flaky/") && !flakyOk);
    res.writeHead(fail ? 500 : 200, { "Content-Type": "text/plain" });
    res.end(fail ? "target says no <b>500</b>" : "ok");
  });
});

// ---------------------------------------------------------------------------------------------

describe("web console", { timeout: 60_000 }, () => {
  const relay = new Relay(BIN);
  let tgt;  // the target's base URL
  let ui;  // where the console is served: the relay itself
  let browser;
  let page;  // signed in as tenant A
  const problems = [];  // script errors and CSP violations in any page

  const shot = (name, p = page) => p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const watch = (p) => {
    p.setDefaultTimeout(WAIT);
    p.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    p.on("console", (m) => {
      if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    p.on("dialog", (d) => d.accept());
    return p;
  };
  const rowText = (p, selector) => p.locator(selector).innerText();
  /// Goes to a console page through the nav bar (client-side routing).
  const nav = async (name, p = page) => {
    await p.click(`#nav-${name}`);
    await p.waitForSelector(`#nav-${name}[aria-current="page"]`);
  };
  /// Waits until the text of `selector` (first match) satisfies `ok`; its text.
  const waitText = async (p, selector, ok, what) => {
    const text = await until(async () => {
      const t = await p.locator(selector).first().textContent({ timeout: 1000 }).catch(() => null);
      return t !== null && ok(t) ? t : null;
    });
    if (text === null) await p.screenshot({ path: path.join(SHOTS, `failed-${Date.now()}.png`), fullPage: true }).catch(() => {});
    assert.ok(text !== null, `${what ?? selector}: not seen within ${WAIT} ms; message area: ${await p.locator("#message").textContent().catch(() => "?")}`);
    return text;
  };
  const signIn = async (p, key) => {
    await p.fill("#api-key", key);
    await p.click("#signin-button");
    await p.waitForSelector("#nav:not([hidden])");
  };

  before(async () => {
    assert.ok(BIN, "FETCHRELAY_BIN names the fetchrelay binary");
    fs.mkdirSync(SHOTS, { recursive: true });
    await new Promise((r) => target.listen(0, "127.0.0.1", r));
    tgt = `http://127.0.0.1:${target.address().port}`;
    await relay.start();
    ui = relay.baseUrl;
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"], headless: true });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = watch(await context.newPage());
  });

  after(async () => {
    if (browser) await browser.close();
    const exit = await relay.stop();
    target.closeAllConnections();
    await new Promise((r) => target.close(r));
    if (exit && exit.code !== 0) console.error(relay.log());
    else fs.rmSync(relay.dir, { recursive: true, force: true });
  });

  test("1. sign-in refuses a wrong key, then keeps the right one in sessionStorage only", async () => {
    const res = await fetch(`${ui}/`);
    assert.equal(res.status, 200, "GET / serves the console");
    assert.match(res.headers.get("content-security-policy") || "", /script-src 'self'/);
    await page.goto(`${ui}/`);
    await page.waitForSelector("#api-key");
    assert.equal(await page.getAttribute("#api-key", "type"), "password");
    assert.equal(await page.textContent('label[for="api-key"]'), "API key");
    await shot("signin");

    await page.fill("#api-key", "not_a_key");
    await page.click("#signin-button");
    await waitText(page, "#message", (t) => t.includes("That API key was refused"), "the refusal message");
    assert.equal(await page.isVisible("#nav"), false, "still signed out");

    await signIn(page, KEY_A);
    const storage = await page.evaluate(() => ({
      session: Object.values(sessionStorage),
      local: localStorage.length,
    }));
    assert.deepEqual(storage.session, [KEY_A], "sessionStorage holds the key");
    assert.equal(storage.local, 0, "localStorage holds nothing");
    assert.ok(!page.url().includes(KEY_A), "the key is not in the URL");
    assert.ok(!(await page.content()).includes(KEY_A), "the key is not in the page");
  });

  test("overview shows relay-wide job counts, the per-minute chart and lateness", async () => {
    const id = await relay.submit(`${tgt}/ok/overview`);
    await relay.waitFor(id, "delivered");
    await nav("overview");
    try {
      assert.equal(new URL(page.url()).pathname, "/ui");
      await waitText(page, '[data-testid="jobs-delivered"] .card-number', (t) => Number(t) >= 1, "delivered count");
      for (const s of ["scheduled", "active", "retrying", "failed", "cancelled"]) {
        assert.match(await page.textContent(`[data-testid="jobs-${s}"] .card-number`), /^\d+$/);
      }
      assert.match(await page.textContent("#scope-note"), /relay-wide/i);
      await page.waitForSelector('[data-testid="minute-chart"] rect.bar-delivered');
      assert.match(await page.textContent('[data-testid="lateness-p99"]'), /ms|s|—/);
    } finally {
      await shot("overview");
    }
  });

  test("2. jobs submitted through the API appear in the jobs list", async () => {
    const ids = [
      await relay.submit(`${tgt}/ok/list-1`),
      await relay.submit(`${tgt}/ok/list-2`, { headers: { "X-Delay": "1h" } }),
      await relay.submit(`${tgt}/ok/list-3`, { headers: { "X-Queue": "mail" } }),
    ];
    await nav("jobs");
    for (const id of ids) await page.waitForSelector(`tr[data-id="${id}"]`);
    assert.match(await rowText(page, `tr[data-id="${ids[1]}"]`), /scheduled/);
    assert.match(await rowText(page, `tr[data-id="${ids[1]}"]`), /\/ok\/list-2/);
    await shot("jobs");
  });

  test("3. a failed job: timeline shows the 500 and its excerpt; Replay delivers it", async () => {
    const id = await relay.submit(`${tgt}/flaky/replay`);
    await relay.waitFor(id, "failed");
    await nav("jobs");
    await page.selectOption("#filter-status", "failed");
    await page.click("#filter-apply");
    await page.waitForURL((u) => u.searchParams.get("status") === "failed");
    await page.click(`tr[data-id="${id}"] a[data-testid="job-link"]`);
    await page.waitForURL((u) => u.pathname === `/ui/jobs/${id}`);
    const row = `#attempts tr[data-id="1"]`;
    await page.waitForSelector(row);
    assert.equal((await page.textContent(`${row} [data-testid="attempt-status"]`)).trim(), "500");
    assert.match(await page.textContent(`${row} [data-testid="attempt-excerpt"]`), /target says no <b>500<\/b>/);
    assert.equal(await page.locator("#attempts b").count(), 0, "the excerpt is text, not markup");
    await shot("job");

    flakyOk = true;
    await page.click("#job-replay");
    await waitText(page, "#job > p [data-testid=status]", (t) => t === "delivered", "the job delivered after Replay");
    await page.waitForSelector('#attempts tr[data-id="2"]');
    assert.equal((await page.textContent('#attempts tr[data-id="2"] [data-testid="attempt-status"]')).trim(), "200");
  });

  test("4. a queue is paused and resumed from the queues page", async () => {
    await nav("queues");
    const row = 'tr[data-id="mail"]';
    await page.waitForSelector(row);
    assert.equal(await page.textContent(`${row} [data-testid="paused"]`), "no");
    await page.click(`${row} [data-testid="queue-pause"]`);
    await waitText(page, `${row} [data-testid="paused"]`, (t) => t === "yes", "queue paused");
    assert.equal((await relay.call("GET", "/v1/queues/mail")).json.paused, true);
    await shot("queues");
    await page.click(`${row} [data-testid="queue-resume"]`);
    await waitText(page, `${row} [data-testid="paused"]`, (t) => t === "no", "queue resumed");
    assert.equal((await relay.call("GET", "/v1/queues/mail")).json.paused, false);
    await page.fill(`${row} [data-testid="queue-parallelism"]`, "3");
    await page.click(`${row} [data-testid="queue-set"]`);
    await until(async () => (await relay.call("GET", "/v1/queues/mail")).json.parallelism === 3);
    assert.equal((await relay.call("GET", "/v1/queues/mail")).json.parallelism, 3);
  });

  test("5. Retry all matching runs every failed job of the filter again", async () => {
    const prefix = `${tgt}/fail/bulk/`;
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await relay.submit(`${prefix}${i}`));
    for (const id of ids) await relay.waitFor(id, "failed");
    await page.goto(`${ui}/ui/jobs?status=failed&url_prefix=${encodeURIComponent(prefix)}`);
    for (const id of ids) await page.waitForSelector(`tr[data-id="${id}"]`);
    assert.equal(await page.locator("tbody tr[data-id]").count(), 3);
    assert.equal(await page.inputValue("#filter-url-prefix"), prefix, "the filter comes from the page URL");
    await page.click("#bulk-retry");
    await waitText(page, "#notice", (t) => /Retried \d+ jobs?/.test(t), "the bulk retry notice");
    assert.equal(await page.textContent("#notice"), "Retried 3 jobs");
    for (const id of ids) {
      const ran = await until(async () => {
        const j = await relay.job(id);
        return j.status === "failed" && j.attempts.length === 2 && j;
      });
      assert.ok(ran, `job ${id} ran again: ${JSON.stringify(await relay.job(id))}`);
    }
    for (let i = 0; i < 3; i++) assert.equal(received.filter((r) => r.path === `/fail/bulk/${i}`).length, 2);
  });

  test("6. a forwarded secret never reaches the page", async () => {
    const id = await relay.submit(`${tgt}/ok/secret`, {
      headers: { "X-Fetch-Forward-Authorization": "Bearer sk_secret_123", "X-Fetch-Forward-X-Api-Key": "sk_secret_123" },
      body: '{"hello":"world"}',
    });
    await relay.waitFor(id, "delivered");
    assert.equal(received.find((r) => r.path === "/ok/secret").headers.authorization, "Bearer sk_secret_123");
    await nav("jobs");
    await page.click(`tr[data-id="${id}"] a[data-testid="job-link"]`);
    await page.waitForSelector('[data-testid="request-headers"] tr[data-id="Authorization"]');
    await page.waitForSelector('[data-testid="job-report"]');
    assert.equal(await page.textContent('[data-testid="request-headers"] tr[data-id="Authorization"] td:nth-child(2)'), "***");
    assert.equal(await page.textContent('[data-testid="request-body"]'), '{"hello":"world"}');
    assert.ok(!(await page.content()).includes("sk_secret_123"), "sk_secret_123 is not in the page");
  });

  test("7. signed in as tenant B, tenant A's jobs do not show", async () => {
    const aJobs = (await relay.call("GET", "/v1/jobs?limit=100")).json.jobs.map((j) => j.id);
    assert.ok(aJobs.length > 5);
    const bJob = await relay.submit(`${tgt}/ok/tenant-b`, { key: KEY_B });
    const context = await browser.newContext();
    try {
      const pb = watch(await context.newPage());
      await pb.goto(`${ui}/ui/jobs`);
      await pb.waitForSelector("#api-key");
      await signIn(pb, KEY_B);
      await pb.waitForSelector(`tr[data-id="${bJob}"]`);
      const shown = await pb.locator("tbody tr[data-id]").evaluateAll((rows) => rows.map((r) => r.dataset.id));
      assert.deepEqual(shown, [bJob]);
      const content = await pb.content();
      for (const id of aJobs) assert.ok(!content.includes(id), `tenant A's ${id} is not in the page`);
      // and tenant A's job by its link: the relay answers 404, the page says so
      await pb.goto(`${ui}/ui/jobs/${aJobs[0]}`);
      await waitText(pb, "#message", (t) => t.includes("job_not_found"), "404 for another tenant's job");
      assert.equal(await pb.locator("#job-fields").count(), 0);
    } finally {
      await context.close();
    }
  });

  test("8. a deep link /ui/jobs/{id} opens the job directly", async () => {
    const id = await relay.submit(`${tgt}/ok/deep-link`);
    await relay.waitFor(id, "delivered");
    // a full load of the deep link in the signed-in tab
    await page.goto(`${ui}/ui/jobs/${id}`);
    await waitText(page, "#job > p [data-testid=status]", (t) => t === "delivered", "the deep-linked job");
    assert.equal(await page.textContent("#job-id"), id);
    // a new page opened from it (sessionStorage is copied into it), loading the link from scratch
    const [popup] = await Promise.all([page.waitForEvent("popup"), page.evaluate((u) => window.open(u), `/ui/jobs/${id}`)]);
    watch(popup);
    await waitText(popup, "#job > p [data-testid=status]", (t) => t === "delivered", "the job in a new page");
    assert.equal(await popup.isVisible("#api-key"), false, "no sign-in needed");
    await popup.close();
    // back and forward move between console pages
    await nav("topics");
    await page.goBack();
    await page.waitForURL((u) => u.pathname === `/ui/jobs/${id}`);
    await page.waitForSelector("#job-id");
  });

  test("destinations, schedules and topics pages show what the API holds", async () => {
    await relay.call("PUT", "/v1/topics/orders", {
      body: JSON.stringify({ endpoints: [{ url: `${tgt}/ok/topic-a`, name: "billing" }] }),
      headers: { "Content-Type": "application/json" },
    });
    const sched = await relay.call("POST", "/v1/schedules", {
      body: "{}",
      headers: { "X-Fetch-Url": `${tgt}/ok/schedule`, "X-Cron": "@daily", "X-Schedule-Id": "nightly" },
    });
    assert.equal(sched.status, 201, sched.text);

    await nav("destinations");
    await page.waitForSelector(`tr[data-id="${tgt}"]`);
    assert.match(await rowText(page, `tr[data-id="${tgt}"]`), /%/);
    await shot("destinations");

    await nav("schedules");
    const row = 'tr[data-id="nightly"]';
    await page.waitForSelector(row);
    assert.match(await rowText(page, row), /@daily/);
    await page.click(`${row} [data-testid="schedule-pause"]`);
    await waitText(page, `${row} [data-testid="paused"]`, (t) => t === "yes", "schedule paused");
    await page.click(`${row} [data-testid="schedule-resume"]`);
    await waitText(page, `${row} [data-testid="paused"]`, (t) => t === "no", "schedule resumed");
    await page.click(`${row} [data-testid="schedule-trigger"]`);
    await waitText(page, "#notice", (t) => t.startsWith("Triggered nightly"), "the trigger notice");
    await shot("schedules");

    await nav("topics");
    await page.waitForSelector('tr[data-id="orders"]');
    assert.match(await rowText(page, 'tr[data-id="orders"]'), /billing/);
    await shot("topics");
    await page.click('tr[data-id="orders"] [data-testid="topic-jobs"]');
    await page.waitForURL((u) => u.pathname === "/ui/jobs" && u.searchParams.get("topic") === "orders");
    assert.equal(await page.inputValue("#filter-topic"), "orders");
  });

  test("sign out clears the session; no script error or CSP violation happened", async () => {
    await page.click("#signout");
    await page.waitForSelector("#api-key");
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.deepEqual(problems, []);
  });
});
