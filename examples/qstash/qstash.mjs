// A QStash user's code, unchanged but for two values: baseUrl and token. Run it against
// `make run` (examples/fetchrelay.yaml enables /v2):
//
//   cd examples/qstash && npm ci && node qstash.mjs
//
// It starts a small endpoint on 127.0.0.1 that verifies every delivery with the SDK's Receiver,
// then publishes, batches, enqueues, schedules, fans out to a URL group, reads the logs and the
// dead-letter queue. Exit 0 when every step did what QStash does.
import http from "node:http";

import { Client, Receiver } from "@upstash/qstash";

// The two lines a QStash user changes:
const client = new Client({
  baseUrl: process.env.QSTASH_URL ?? "http://127.0.0.1:8080",  // was https://qstash.upstash.io
  token: process.env.QSTASH_TOKEN ?? "relay_sk_dev",           // an API key of auth.keys
});
// The signing keys of the example config (qstash.current_signing_key / next_signing_key).
const receiver = new Receiver({
  currentSigningKey: process.env.QSTASH_CURRENT_SIGNING_KEY ?? "sig_dev_current_change_me",
  nextSigningKey: process.env.QSTASH_NEXT_SIGNING_KEY ?? "sig_dev_next_change_me",
});

const received = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    const body = Buffer.concat(chunks).toString("utf8");
    let verified = false;
    try {
      verified = await receiver.verify({ signature: req.headers["upstash-signature"] ?? "", body });
    } catch (e) {
      console.error(`  signature of ${req.url} did not verify: ${e.message}`);
    }
    received.push({ path: req.url, id: req.headers["upstash-message-id"], body, verified });
    const fail = req.url.startsWith("/fail");
    res.writeHead(fail ? 500 : 200).end(fail ? "failing on purpose" : "ok");
  });
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const me = `http://127.0.0.1:${server.address().port}`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(check, ms = 15_000) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) {
    const v = await check();
    if (v) return v;
  }
  throw new Error("timed out waiting");
}
const arrived = (id) => until(() => received.find((r) => r.id === id));
function check(ok, what) {
  if (!ok) throw new Error(`not as QStash does it: ${what}`);
  console.log(`  ok  ${what}`);
}

try {
  console.log(`QStash SDK -> ${process.env.QSTASH_URL ?? "http://127.0.0.1:8080"}, endpoint ${me}`);

  const { messageId } = await client.publishJSON({ url: `${me}/orders?src=example`, body: { order: 42 }, delay: 2 });
  const sent = Date.now();
  const got = await arrived(messageId);
  check(Date.now() - sent >= 1500 && got.path === "/orders?src=example", `publishJSON delivered after its delay (${messageId})`);
  check(got.verified, "the delivery's Upstash-Signature verified with the Receiver");

  const batch = await client.batchJSON([{ url: `${me}/batch/1`, body: { n: 1 } }, { url: `${me}/batch/2`, body: { n: 2 } }]);
  await Promise.all(batch.map((b) => arrived(b.messageId)));
  check(batch.length === 2, "batchJSON: two messages, both delivered");

  const queue = client.queue({ queueName: "example-queue" });
  await queue.upsert({ parallelism: 1 });
  const queued = [];
  for (let i = 1; i <= 3; i++) queued.push((await queue.enqueueJSON({ url: `${me}/queue/${i}`, body: { i } })).messageId);
  await arrived(queued[2]);
  const order = received.filter((r) => r.path.startsWith("/queue/")).map((r) => r.path);
  check(order.join() === "/queue/1,/queue/2,/queue/3", `queue enqueue in FIFO order (${order.join(" ")})`);

  const { scheduleId } = await client.schedules.create({ destination: `${me}/tick`, cron: "*/1 * * * * *", body: "tick" });
  await until(() => received.filter((r) => r.path === "/tick").length >= 2);
  await client.schedules.delete(scheduleId);
  check(true, `schedule ${scheduleId} fired every second, then deleted`);

  await client.urlGroups.addEndpoints({ name: "example-group", endpoints: [{ url: `${me}/fan/a` }, { url: `${me}/fan/b` }] });
  const fan = await client.publishJSON({ urlGroup: "example-group", body: { event: "signup" } });
  await Promise.all(fan.map((f) => arrived(f.messageId)));
  await client.urlGroups.delete("example-group");
  check(fan.length === 2, "URL group fan-out to both endpoints");

  const dedupId = `example-${Date.now()}`;
  const dup1 = await client.publish({ url: `${me}/dedup`, body: "x", deduplicationId: dedupId });
  const dup2 = await client.publish({ url: `${me}/dedup`, body: "x", deduplicationId: dedupId });
  check(dup2.messageId === dup1.messageId && dup2.deduplicated === true, "a repeated Deduplication-Id gets the first message's id");

  const doomed = await client.publish({ url: `${me}/fail`, body: "doomed", retries: 0 });
  const dead = await until(async () => (await client.dlq.listMessages()).messages.find((m) => m.messageId === doomed.messageId));
  check(dead.responseStatus === 500, `a failed message is in the DLQ (${dead.dlqId})`);
  await client.dlq.delete(dead.dlqId);

  const logs = await client.logs({ filter: { messageId } });
  check(logs.events.some((e) => e.state === "DELIVERED"), "logs show the first message DELIVERED");
  check(received.every((r) => r.verified), `every one of ${received.length} deliveries verified`);
  console.log("done: the unchanged QStash SDK works against fetchrelay");
} catch (e) {
  console.error(`failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  server.close();
  server.closeAllConnections();
}
