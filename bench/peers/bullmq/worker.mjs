// The BullMQ peer's worker (bench/run.sh, PEERS=1): 64 jobs at a time, each a POST with Node's
// fetch to the job's URL carrying X-Fetch-Job-Id and X-Fetch-Attempt as fetchrelay sends them (the
// sink's log is read by them). A non-2xx answer throws, so BullMQ retries it on the producer's
// backoff; 410 fails the job at once (fetchrelay's default non_retryable).
//
//   REDIS_PORT=P READY_FILE=F [CONCURRENCY=64] [BULLMQ_CLIENT=fetch|http] node worker.mjs
//
// Writes READY_FILE once the worker is connected. BULLMQ_CLIENT=http posts with node:http and a
// keep-alive agent instead of fetch (http: URLs only): on this machine Node 20's fetch costs about
// five times node:http's CPU a request, and it, not BullMQ, bounds the worker.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { UnrecoverableError, Worker } from 'bullmq';

const timeoutMs = 15_000;  // fetchrelay's default per-attempt timeout

async function postFetch(url, headers, body) {
  const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
  await res.arrayBuffer();  // read the answer whole, so the connection goes back to the pool
  return res.status;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function postHttp(url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const post = process.env.BULLMQ_CLIENT === 'http' ? postHttp : postFetch;

async function deliver(job) {
  const { url, headers, body } = job.data;
  const status = await post(url, { ...headers, 'X-Fetch-Job-Id': job.id, 'X-Fetch-Attempt': String(job.attemptsMade + 1) }, body);
  if (status === 410) throw new UnrecoverableError('HTTP 410');
  if (status < 200 || status > 299) throw new Error(`HTTP ${status}`);
}

const worker = new Worker('fetch', deliver, {
  connection: { host: '127.0.0.1', port: Number(process.env.REDIS_PORT), maxRetriesPerRequest: null },
  concurrency: Number(process.env.CONCURRENCY || 64),
});
worker.on('error', (err) => console.error('worker:', err.message));
await worker.waitUntilReady();
writeFileSync(process.env.READY_FILE, 'ready');
