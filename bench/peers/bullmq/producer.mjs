// The BullMQ peer's producer (bench/run.sh, PEERS=1): takes what fetchrelay_loadgen sends to
// fetchrelay's POST /v1/fetch (Authorization: Bearer KEY, X-Fetch-Url, Content-Type, the body)
// and answers 202 {"id":"job_…"} once Redis has accepted the job, as fetchrelay answers once its
// store has. Submissions that arrive in the same event-loop turn go to Redis in one addBulk (one
// MULTI), as fetchrelay groups a turn's submissions into one store commit.
//
//   REDIS_PORT=P BENCH_KEY=K PORT_FILE=F node producer.mjs
//
// Listens on 127.0.0.1:0 and writes its port to PORT_FILE once the queue is ready.
// PRODUCER_BATCH=0: one queue.add per submission instead (for comparison).
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { Queue } from 'bullmq';

const queue = new Queue('fetch', {
  connection: { host: '127.0.0.1', port: Number(process.env.REDIS_PORT) },
  // fetchrelay's default policy: 10 attempts, exponential backoff from 1 s (factor 2), jitter 0.2.
  // Completed jobs are removed (fetchrelay keeps them, but Redis holds everything in memory).
  defaultJobOptions: {
    attempts: 10,
    backoff: { type: 'exponential', delay: 1000, jitter: 0.2 },
    removeOnComplete: true,
  },
});
const auth = `Bearer ${process.env.BENCH_KEY}`;
const batching = process.env.PRODUCER_BATCH !== '0';
// Ids unique across restarts (W4 restarts the producer); "job_" is what the sink's log is read for.
const prefix = `job_${Date.now().toString(36)}${process.pid.toString(36)}_`;
let next = 0;

function answer(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

// The headers the worker sends on: Content-Type and X-Fetch-Forward-* (as fetchrelay forwards them).
function forwarded(req) {
  const out = {};
  if (req.headers['content-type']) out['content-type'] = req.headers['content-type'];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i];
    if (name.length > 16 && name.toLowerCase().startsWith('x-fetch-forward-')) out[name.slice(16)] = req.rawHeaders[i + 1];
  }
  return out;
}

let pending = [];
function flush() {
  const batch = pending;
  pending = [];
  queue.addBulk(batch.map((s) => ({ name: 'fetch', data: s.data, opts: { jobId: s.id } }))).then(
    () => { for (const s of batch) answer(s.res, 202, `{"id":"${s.id}","status":"scheduled"}`); },
    (err) => { for (const s of batch) answer(s.res, 503, JSON.stringify({ error: String(err) })); });
}

function enqueue(id, data, res) {
  if (!batching) {
    queue.add('fetch', data, { jobId: id }).then(
      () => answer(res, 202, `{"id":"${id}","status":"scheduled"}`),
      (err) => answer(res, 503, JSON.stringify({ error: String(err) })));
    return;
  }
  pending.push({ id, data, res });
  if (pending.length === 1) setImmediate(flush);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/v1/fetch') return answer(res, 404, '{"error":"not_found"}');
  if (req.headers.authorization !== auth) return answer(res, 401, '{"error":"unauthorized"}');
  const url = req.headers['x-fetch-url'];
  if (!url) return answer(res, 400, '{"error":"missing X-Fetch-Url"}');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const data = { url, headers: forwarded(req), body: Buffer.concat(chunks).toString() };
    enqueue(prefix + (next++).toString(36), data, res);
  });
});
server.keepAliveTimeout = 60_000;

await queue.waitUntilReady();
server.listen(0, '127.0.0.1', () => writeFileSync(process.env.PORT_FILE, String(server.address().port)));
