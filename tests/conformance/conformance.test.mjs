// The official @upstash/qstash SDK, unchanged, against a real fetchrelay process: only baseUrl and
// token differ from a QStash user's code. Each call asserts what the SDK parsed and what the
// sink received; every delivery's signature is verified by the SDK's Receiver.
// Run by tests/conformance/run.sh (ctest: QstashConformance) with FETCHRELAY_BIN set.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Client, QstashError } from "@upstash/qstash";

import { OTHER_TOKEN, Relay, Sink, TOKEN, until } from "./harness.mjs";

for (const v of ["QSTASH_DEV", "QSTASH_REGION", "QSTASH_URL", "QSTASH_TOKEN", "QSTASH_CURRENT_SIGNING_KEY",
                 "QSTASH_NEXT_SIGNING_KEY"]) {
  delete process.env[v];
}

const bin = process.env.FETCHRELAY_BIN;
if (!bin) throw new Error("set FETCHRELAY_BIN to the fetchrelay binary");

const relay = new Relay(bin);
const sink = new Sink();
let client;

before(async () => {
  await sink.start();
  await relay.start();
  client = new Client({ baseUrl: relay.baseUrl, token: TOKEN });
  const keys = await relay.call("GET", "/v2/keys");
  assert.equal(keys.status, 200, keys.text);
  sink.keys = keys.json;
});

after(async () => {
  const exit = await relay.stop();
  await sink.stop();
  if (process.exitCode) console.log(relay.log());
  assert.equal(exit.code, 0, "the relay stops cleanly on SIGTERM");
});

/// Every QStash delivery the sink got so far verified with the SDK's Receiver (a /v1 job's
/// delivery, made by one test, is not a QStash message and is not signed).
function assertAllVerified() {
  for (const r of sink.received.filter((x) => !x.headers["x-fetch-job-id"])) {
    assert.equal(r.verified, true, `${r.path}: ${r.verifyError ?? "no signature"}`);
  }
}

describe("publish", () => {
  test("publishJSON with delay and headers: delivered after the delay, signed, headers forwarded", async () => {
    const sent = Date.now();
    const res = await client.publishJSON({
      url: `${sink.base}/json`,
      body: { hello: "world", n: 1 },
      delay: 1,
      headers: { "X-Custom": "yes", Authorization: "Bearer downstream" },
    });
    assert.match(res.messageId, /^msg_[0-9A-Z]{26}$/);
    const [got] = await sink.wait(res.messageId);
    assert.ok(got.at - sent >= 900, `delivered ${got.at - sent} ms after the publish; the delay was 1 s`);
    assert.equal(got.method, "POST");
    assert.equal(got.path, "/json");
    assert.deepEqual(JSON.parse(got.body), { hello: "world", n: 1 });
    assert.equal(got.headers["content-type"], "application/json");
    assert.equal(got.headers["x-custom"], "yes");
    assert.equal(got.headers.authorization, "Bearer downstream", "Upstash-Forward-Authorization is the target's");
    assert.equal(got.headers["user-agent"], "Upstash-QStash");
    assert.equal(got.headers["upstash-retried"], "0");
    assert.equal(got.headers["upstash-telemetry-sdk"], undefined, "telemetry is not forwarded");
    assert.equal(got.verified, true, got.verifyError);
  });

  test("publish keeps the destination's query string and // in its path", async () => {
    const res = await client.publish({ url: `${sink.base}/a//b/c?x=1&y=two%20words&z=`, body: "plain", method: "PUT" });
    const [got] = await sink.wait(res.messageId);
    assert.equal(got.path, "/a//b/c?x=1&y=two%20words&z=");
    assert.equal(got.method, "PUT");
    assert.equal(got.body, "plain");
    assert.equal(got.verified, true, got.verifyError);
  });

  test("batchJSON: one answer per message, in order, each delivered", async () => {
    const res = await client.batchJSON([
      { url: `${sink.base}/batch/1`, body: { i: 1 } },
      { url: `${sink.base}/batch/2`, body: { i: 2 }, headers: { "X-Batch": "b" } },
    ]);
    assert.equal(res.length, 2);
    const [one, two] = [await sink.wait(res[0].messageId), await sink.wait(res[1].messageId)];
    assert.equal(one[0].path, "/batch/1");
    assert.deepEqual(JSON.parse(one[0].body), { i: 1 });
    assert.equal(two[0].path, "/batch/2");
    assert.equal(two[0].headers["x-batch"], "b");
    assert.equal(res[0].url, `${sink.base}/batch/1`);
  });

  test("a bad request is a QstashError carrying the relay's {error} body", async () => {
    await assert.rejects(client.publish({ url: `${sink.base}/x`, body: "b", retryDelay: "pow(2" }), (e) => {
      assert.ok(e instanceof QstashError);
      assert.equal(e.status, 400);
      assert.match(JSON.parse(e.message).error, /Upstash-Retry-Delay/);
      return true;
    });
  });
});

describe("callbacks", () => {
  test("a delivered message calls its callback, a failed one its failure callback, with QStash's bodies", async () => {
    const ok = await client.publish({
      url: `${sink.base}/cb/target`, body: "source body", headers: { "X-Src": "1", Authorization: "Bearer target-only" },
      callback: `${sink.base}/cb/done`, failureCallback: `${sink.base}/cb/failed`,
    });
    const bad = await client.publish({
      url: `${sink.base}/fail/cb`, body: "bad", retries: 0,
      callback: `${sink.base}/cb/done`, failureCallback: `${sink.base}/cb/failed`,
    });
    const find = (path, id) => sink.received.find((r) => r.path === path && JSON.parse(r.body).sourceMessageId === id);
    const done = await until(() => find("/cb/done", ok.messageId));
    assert.ok(done, "the callback arrived");
    const d = JSON.parse(done.body);
    assert.equal(d.status, 200);
    assert.equal(Buffer.from(d.body, "base64").toString(), "ok");
    assert.equal(Buffer.from(d.sourceBody, "base64").toString(), "source body");
    assert.deepEqual(d.sourceHeader["X-Src"], ["1"]);
    assert.deepEqual(d.sourceHeader.Authorization, ["***"], "the target's secret is not sent to the callback");
    assert.equal(d.url, `${sink.base}/cb/target`);
    assert.equal(d.method, "POST");
    assert.equal(d.retried, 0);
    assert.equal(d.maxRetries, 3);
    assert.equal(d.dlqId, undefined);
    assert.equal(done.verified, true, "callbacks are signed too: " + done.verifyError);

    const failed = await until(() => find("/cb/failed", bad.messageId));
    assert.ok(failed, "the failure callback arrived");
    const f = JSON.parse(failed.body);
    assert.equal(f.status, 500);
    assert.equal(Buffer.from(f.body, "base64").toString(), "failing on purpose");
    assert.match(f.dlqId, /^\d+-[0-9A-Z]{26}$/);
    assert.equal(sink.received.filter((r) => r.path === "/cb/done" && JSON.parse(r.body).sourceMessageId === bad.messageId).length, 0);
  });
});

describe("messages", () => {
  test("get and cancel one message", async () => {
    const { messageId } = await client.publishJSON({
      url: `${sink.base}/later`, body: { later: true }, delay: 3600, retries: 5,
      headers: { "X-Keep": "k", Authorization: "Bearer downstream-secret", "X-Api-Key": "k-secret" },
    });
    const m = await client.messages.get(messageId);
    assert.equal(m.messageId, messageId);
    assert.equal(m.url, `${sink.base}/later`);
    assert.equal(m.method, "POST");
    assert.equal(m.body, '{"later":true}');
    assert.deepEqual(m.header["X-Keep"], ["k"]);
    assert.deepEqual(m.header.Authorization, ["***"], "secrets never in an answer");
    assert.deepEqual(m.header["X-Api-Key"], ["***"]);
    assert.equal(m.maxRetries, 5);
    assert.ok(m.notBefore - m.createdAt >= 3_599_000, "notBefore is the delay later, in ms");
    assert.deepEqual(await client.messages.cancel(messageId), { cancelled: 1 });
    assert.equal((await client.messages.get(messageId)).state, "CANCELLED");
    await assert.rejects(client.messages.get("msg_00000000000000000000000000"), (e) => e.status === 404);
  });

  test("bulk cancel by ids, then every message left", async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await client.publish({ url: `${sink.base}/bulk/${i}`, body: "x", delay: 3600 })).messageId);
    assert.deepEqual(await client.messages.cancel([ids[0], ids[1]]), { cancelled: 2 });
    const all = await client.messages.cancel({ all: true });
    assert.ok(all.cancelled >= 1, JSON.stringify(all));
    for (const id of ids) assert.equal((await client.messages.get(id)).state, "CANCELLED");
    assert.equal(sink.received.filter((r) => r.path.startsWith("/bulk/")).length, 0);
  });
});

describe("deduplication", () => {
  test("by deduplicationId: the repeat gets the first id and nothing is sent twice", async () => {
    const a = await client.publish({ url: `${sink.base}/dedup/id`, body: "one", deduplicationId: "order-42" });
    const b = await client.publish({ url: `${sink.base}/dedup/id`, body: "two", deduplicationId: "order-42" });
    assert.equal(b.messageId, a.messageId);
    assert.equal(b.deduplicated, true);
    assert.equal(a.deduplicated, undefined);
    await sink.wait(a.messageId);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sink.received.filter((r) => r.path === "/dedup/id").length, 1);
  });

  test("content based: the same content is one message, other content another", async () => {
    const body = { order: 7 };
    const a = await client.publishJSON({ url: `${sink.base}/dedup/content`, body, contentBasedDeduplication: true });
    const b = await client.publishJSON({ url: `${sink.base}/dedup/content`, body, contentBasedDeduplication: true });
    const c = await client.publishJSON({ url: `${sink.base}/dedup/content`, body: { order: 8 }, contentBasedDeduplication: true });
    assert.equal(b.messageId, a.messageId);
    assert.equal(b.deduplicated, true);
    assert.notEqual(c.messageId, a.messageId);
    await sink.wait(a.messageId);
    await sink.wait(c.messageId);
  });
});

describe("dead-letter queue", () => {
  test("a failed message is listed with its response, retried as the same message, then deleted", async () => {
    const { messageId } = await client.publish({ url: `${sink.base}/fail/dlq`, body: "doomed", retries: 0 });
    await sink.wait(messageId);
    const inDlq = () => until(async () => (await client.dlq.listMessages()).messages.find((m) => m.messageId === messageId));
    const m = await inDlq();
    assert.ok(m, "the failed message is in the DLQ");
    assert.match(m.dlqId, /^\d+-[0-9A-Z]{26}$/);
    assert.equal(m.url, `${sink.base}/fail/dlq`);
    assert.equal(m.body, "doomed");
    assert.equal(m.responseStatus, 500);
    assert.equal(m.responseBody, "failing on purpose");
    assert.equal(m.maxRetries, 0);

    const retried = await client.dlq.retry(m.dlqId);
    assert.deepEqual(retried.responses, [{ messageId }]);
    const twice = await sink.wait(messageId, 2);
    assert.equal(twice[1].headers["upstash-retried"], "0", "a DLQ retry starts a new run");
    const again = await until(async () => (await client.dlq.listMessages()).messages.find((x) => x.messageId === messageId && x.dlqId !== m.dlqId));
    assert.ok(again, "failed again: back in the DLQ under a new DLQ id");
    assert.equal(again.maxRetries, 0);
    assert.deepEqual(await client.dlq.deleteMany({ dlqIds: [m.dlqId] }), { deleted: 0 }, "the old DLQ id names nothing now");

    await client.dlq.delete(again.dlqId);
    assert.equal((await client.dlq.listMessages()).messages.some((x) => x.messageId === messageId), false);
    await assert.rejects(client.messages.get(messageId), (e) => e.status === 404);
  });

  test("a /v1 job that failed is not a QStash message: not listed, not deleted", async () => {
    const v1 = await relay.call("POST", "/v1/fetch", {
      headers: { "X-Fetch-Url": `${sink.base}/fail/v1`, "X-Retries": "0" }, body: "v1",
    });
    assert.equal(v1.status, 202, v1.text);
    await until(async () => (await relay.call("GET", `/v1/jobs/${v1.json.id}`)).json.status === "failed");
    const messageId = v1.json.id.replace("job_", "msg_");
    assert.equal((await client.dlq.listMessages()).messages.some((m) => m.messageId === messageId), false);
    await client.dlq.delete({ filter: { url: `${sink.base}/fail/v1` } });
    assert.equal((await relay.call("GET", `/v1/jobs/${v1.json.id}`)).json.status, "failed", "still there");
  });

  test("bulk delete by ids and by filter", async () => {
    const ids = [];
    for (const p of ["/fail/dlq-a", "/fail/dlq-b", "/fail/dlq-c"]) {
      ids.push((await client.publish({ url: `${sink.base}${p}`, body: "x", retries: 0 })).messageId);
    }
    const listed = await until(async () => {
      const all = (await client.dlq.listMessages({ count: 100 })).messages.filter((m) => ids.includes(m.messageId));
      return all.length === 3 && all;
    });
    assert.ok(listed, "all three are in the DLQ");
    const a = listed.find((m) => m.messageId === ids[0]);
    assert.deepEqual(await client.dlq.deleteMany({ dlqIds: [a.dlqId] }), { deleted: 1 });
    const byFilter = await client.dlq.delete({ filter: { url: `${sink.base}/fail/dlq-` } });
    assert.equal(byFilter.deleted, 2);
    assert.equal((await client.dlq.listMessages()).messages.filter((m) => ids.includes(m.messageId)).length, 0);
  });
});

describe("logs", () => {
  test("logs of a delivered message: CREATED then DELIVERED, under events and logs", async () => {
    const { messageId } = await client.publish({ url: `${sink.base}/logged`, body: "l" });
    await sink.wait(messageId);
    const res = await until(async () => {
      const r = await client.logs({ filter: { messageId } });
      return r.events.some((e) => e.state === "DELIVERED") && r;
    });
    assert.ok(res, "a DELIVERED log arrives");
    assert.deepEqual(res.events.map((e) => e.state), ["DELIVERED", "CREATED"], "newest first");
    assert.deepEqual(res.logs, res.events);
    for (const e of res.events) {
      assert.equal(e.messageId, messageId);
      assert.equal(e.url, `${sink.base}/logged`);
      assert.equal(typeof e.time, "number");
    }
    const page = await client.logs({ count: 1 });
    assert.equal(page.events.length, 1);
    assert.ok(page.cursor, "a full page has a cursor to the next");
    const next = await client.logs({ count: 1, cursor: page.cursor });
    assert.ok(next.events[0].time <= page.events[0].time, "the next page is older");
  });
});

describe("queues", () => {
  test("enqueue keeps FIFO order under parallelism 1, the next waiting for the current one's retries", async () => {
    const queue = client.queue({ queueName: "fifo" });
    await queue.upsert({ parallelism: 1 });
    const q = await queue.get();
    assert.equal(q.name, "fifo");
    assert.equal(q.parallelism, 1);
    assert.equal(q.paused, false);
    assert.equal(typeof q.createdAt, "number");
    const ids = [];
    ids.push((await queue.enqueue({ url: `${sink.base}/fail/q0`, body: "0", retries: 1, retryDelay: "200" })).messageId);
    for (let i = 1; i <= 3; i++) ids.push((await queue.enqueueJSON({ url: `${sink.base}/hold/q${i}`, body: { i } })).messageId);
    await sink.wait(ids[3]);
    const got = sink.received.filter((r) => /^\/(fail|hold)\/q\d$/.test(r.path));
    assert.deepEqual(got.map((r) => r.path), ["/fail/q0", "/fail/q0", "/hold/q1", "/hold/q2", "/hold/q3"]);
    for (let i = 3; i < got.length; i++) {
      assert.ok(got[i].at - got[i - 1].at >= 290, `message ${i - 1} started before the one ahead of it was answered`);
    }
    assert.ok((await client.queue({ queueName: "fifo" }).get()).lag >= 0);
    const names = (await client.queue({ queueName: "fifo" }).list()).map((x) => x.name);
    assert.ok(names.includes("fifo"));
  });

  test("pause holds a queue's messages until resume; delete removes an empty queue", async () => {
    const queue = client.queue({ queueName: "paused-q" });
    await queue.upsert({ parallelism: 2 });
    await queue.pause();
    assert.equal((await queue.get()).paused, true);
    const { messageId } = await queue.enqueue({ url: `${sink.base}/paused`, body: "p" });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(sink.of(messageId).length, 0, "nothing runs while the queue is paused");
    await queue.resume();
    await sink.wait(messageId);
    await until(async () => (await queue.get()).lag === 0);
    await until(async () => {
      try {
        await queue.delete();
        return true;
      } catch {
        return false;  // its last job's end may still be on its way
      }
    });
    await assert.rejects(queue.get(), (e) => e.status === 404);
  });
});

describe("schedules", () => {
  test("create with a 6-field cron, fires signed, list, get, pause, resume, delete", async () => {
    const fires = () => sink.received.filter((r) => r.path === "/sched?tick=1");
    const { scheduleId } = await client.schedules.create({
      destination: `${sink.base}/sched?tick=1`, cron: "* * * * * *", body: JSON.stringify({ tick: true }), retries: 1,
      headers: { "X-Sched": "s" },
    });
    assert.match(scheduleId, /^scd_[0-9A-Z]{26}$/);
    await until(() => fires().length >= 2, 10_000);
    const [first] = fires();
    assert.equal(first.headers["upstash-schedule-id"], scheduleId);
    assert.equal(first.headers["x-sched"], "s");
    assert.equal(first.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(first.body), { tick: true });
    assert.equal(first.verified, true, first.verifyError);

    const s = await client.schedules.get(scheduleId);
    assert.equal(s.scheduleId, scheduleId);
    assert.equal(s.cron, "* * * * * *");
    assert.equal(s.destination, `${sink.base}/sched?tick=1`);
    assert.equal(s.method, "POST");
    assert.equal(s.retries, 1);
    assert.equal(s.isPaused, false);
    assert.equal(typeof s.createdAt, "number");
    assert.ok((await client.schedules.list()).some((x) => x.scheduleId === scheduleId));

    await client.schedules.pause({ schedule: scheduleId });
    assert.equal((await client.schedules.get(scheduleId)).isPaused, true);
    await new Promise((r) => setTimeout(r, 1000));  // a fire already made may still land
    const paused = fires().length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(fires().length, paused, "no fire while paused");
    await client.schedules.resume({ schedule: scheduleId });
    await until(() => fires().length > paused, 10_000);
    assert.ok(fires().length > paused, "fires again after resume");

    await client.schedules.delete(scheduleId);
    await assert.rejects(client.schedules.get(scheduleId), (e) => e.status === 404);
    await new Promise((r) => setTimeout(r, 1000));
    const deleted = fires().length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(fires().length, deleted, "no fire after delete");
  });

  test("a schedule with its own id and a CRON_TZ, to a URL group, is replaced by the same id", async () => {
    await client.urlGroups.addEndpoints({ name: "sched-grp", endpoints: [{ url: `${sink.base}/sg` }] });
    const made = await client.schedules.create({ destination: "sched-grp", cron: "CRON_TZ=Europe/Paris 0 9 * * 1", scheduleId: "weekly" });
    assert.equal(made.scheduleId, "weekly");
    await client.schedules.create({ destination: "sched-grp", cron: "0 10 * * 1", scheduleId: "weekly" });
    const s = await client.schedules.get("weekly");
    assert.equal(s.cron, "0 10 * * 1");
    assert.equal(s.destination, "sched-grp");
    assert.ok(s.nextScheduleTime > Date.now());
    await assert.rejects(client.schedules.create({ destination: `${sink.base}/x`, cron: "61 * * * *" }), (e) => {
      assert.equal(e.status, 400);
      assert.match(JSON.parse(e.message).error, /Upstash-Cron/);
      return true;
    });
    await client.schedules.delete("weekly");
  });
});

describe("URL groups, all at once", () => {
  test("concurrent endpoint additions all land; a repeated dedup id answers every endpoint's first message", async () => {
    await Promise.all([0, 1, 2, 3, 4].map((i) => client.urlGroups.addEndpoints({ name: "busy", endpoints: [{ url: `${sink.base}/busy/${i}` }] })));
    const g = await client.urlGroups.get("busy");
    assert.deepEqual(g.endpoints.map((e) => e.url).sort(), [0, 1, 2, 3, 4].map((i) => `${sink.base}/busy/${i}`));
    const first = await client.publish({ urlGroup: "busy", body: "one", deduplicationId: "busy-1" });
    const again = await client.publish({ urlGroup: "busy", body: "two", deduplicationId: "busy-1" });
    assert.equal(again.length, 5);
    assert.deepEqual(again.map((a) => a.messageId).sort(), first.map((a) => a.messageId).sort());
    assert.ok(again.every((a) => a.deduplicated === true));
    await client.urlGroups.delete("busy");
  });

  test("a batch naming a group that does not exist stores nothing", async () => {
    await assert.rejects(
      client.batch([{ url: `${sink.base}/batch/never`, body: "n" }, { urlGroup: "no-such-group", body: "n" }]),
      (e) => e.status === 404);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(sink.received.filter((r) => r.path === "/batch/never").length, 0);
  });
});

describe("URL groups", () => {
  test("add endpoints, publish fans out to each, remove one, delete the group", async () => {
    await client.urlGroups.addEndpoints({ name: "grp", endpoints: [{ url: `${sink.base}/g1` }, { name: "two", url: `${sink.base}/g2` }] });
    const g = await client.urlGroups.get("grp");
    assert.equal(g.name, "grp");
    assert.deepEqual(g.endpoints, [{ url: `${sink.base}/g1` }, { name: "two", url: `${sink.base}/g2` }]);
    assert.ok((await client.urlGroups.list()).some((x) => x.name === "grp"));

    const res = await client.publishJSON({ urlGroup: "grp", body: { fan: "out" } });
    assert.equal(res.length, 2);
    assert.deepEqual(res.map((r) => r.url).sort(), [`${sink.base}/g1`, `${sink.base}/g2`]);
    for (const r of res) {
      const [got] = await sink.wait(r.messageId);
      assert.equal(got.path, new URL(r.url).pathname);
      assert.deepEqual(JSON.parse(got.body), { fan: "out" });
      assert.equal(got.verified, true, got.verifyError);
    }

    await client.urlGroups.removeEndpoints({ name: "grp", endpoints: [{ url: `${sink.base}/g1` }] });
    assert.deepEqual((await client.urlGroups.get("grp")).endpoints, [{ name: "two", url: `${sink.base}/g2` }]);
    await client.urlGroups.delete("grp");
    await assert.rejects(client.urlGroups.get("grp"), (e) => e.status === 404);
  });
});

describe("signatures", () => {
  test("every delivery so far verified with the current key", () => {
    assert.ok(sink.received.length >= 5);
    assertAllVerified();
  });

  test("after a rotation deliveries verify with the new pair and with the old one (its next key)", async () => {
    const old = sink.keys;
    const rotated = await relay.call("POST", "/v2/keys/rotate");
    assert.equal(rotated.status, 200, rotated.text);
    assert.equal(rotated.json.current, old.next);
    assert.match(rotated.json.next, /^sig_/);
    assert.notEqual(rotated.json.next, old.next);
    const other = await relay.call("GET", "/v2/keys", { token: OTHER_TOKEN });
    assert.deepEqual(other.json, old, "another tenant on the default pair keeps it");

    sink.keys = rotated.json;
    const fresh = await client.publish({ url: `${sink.base}/rotated/new`, body: "n" });
    assert.equal((await sink.wait(fresh.messageId))[0].verified, true, "with the new pair");
    sink.keys = old;
    const stale = await client.publish({ url: `${sink.base}/rotated/old`, body: "o" });
    assert.equal((await sink.wait(stale.messageId))[0].verified, true, "with the old pair's next key");
    sink.keys = rotated.json;
  });

  test("the rotated pair survives a restart", async () => {
    const before = (await relay.call("GET", "/v2/keys")).json;
    assert.equal((await relay.stop()).code, 0);
    await relay.start();
    client = new Client({ baseUrl: relay.baseUrl, token: TOKEN });
    assert.deepEqual((await relay.call("GET", "/v2/keys")).json, before);
    const { messageId } = await client.publish({ url: `${sink.base}/after-restart`, body: "r" });
    assert.equal((await sink.wait(messageId))[0].verified, true);
  });
});

describe("rotations at once", () => {
  test("concurrent rotations chain, and the pair served is the one stored", async () => {
    const answers = (await Promise.all([0, 1, 2].map(() => relay.call("POST", "/v2/keys/rotate")))).map((r) => r.json);
    const start = answers.find((a) => !answers.some((b) => b.next === a.current));
    assert.ok(start, JSON.stringify(answers));
    const chain = [start];
    while (chain.length < 3) chain.push(answers.find((a) => a.current === chain[chain.length - 1].next));
    assert.ok(chain.every(Boolean), "each rotation starts from the pair the one before made");
    const served = (await relay.call("GET", "/v2/keys")).json;
    assert.deepEqual(served, chain[2]);
    assert.equal((await relay.stop()).code, 0);
    await relay.start();
    client = new Client({ baseUrl: relay.baseUrl, token: TOKEN });
    assert.deepEqual((await relay.call("GET", "/v2/keys")).json, served, "stored as served");
    sink.keys = served;
  });
});

describe("the example", () => {
  test("examples/qstash/qstash.mjs runs as it is (only its two settings pointed at this relay)", async () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    // A copy beside this suite's node_modules, so it imports the same pinned SDK.
    const copy = path.join(here, ".example-copy.mjs");
    fs.copyFileSync(path.join(here, "../../examples/qstash/qstash.mjs"), copy);
    const keys = (await relay.call("GET", "/v2/keys")).json;
    const run = spawnSync(process.execPath, [copy], {
      env: { ...process.env, QSTASH_URL: relay.baseUrl, QSTASH_TOKEN: TOKEN, QSTASH_CURRENT_SIGNING_KEY: keys.current,
             QSTASH_NEXT_SIGNING_KEY: keys.next },
      encoding: "utf8",
      timeout: 120_000,
    });
    fs.rmSync(copy, { force: true });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /done: the unchanged QStash SDK works against fetchrelay/);
  });
});
