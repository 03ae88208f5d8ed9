// The FetchAPI example with JavaScript fetch (Node >= 18): schedule a POST to your endpoint 2 s
// from now and poll the job until it is finished. Start the relay first with `make run`.
//   node examples/fetchapi.mjs http://127.0.0.1:3000/jobs/send-welcome-email
// Without an argument it targets the relay's own /healthz with GET, so it runs stand-alone.
const relay = process.env.RELAY ?? "http://localhost:8080";
const key = process.env.FETCHRELAY_API_KEY ?? "relay_sk_dev";
const target = process.argv[2] ?? "http://127.0.0.1:8080/healthz";
const method = process.argv[2] ? "POST" : "GET";
const auth = { Authorization: `Bearer ${key}` };

const res = await fetch(`${relay}/v1/fetch`, {
  method: "POST",
  headers: { ...auth, "X-Fetch-Url": target, "X-Fetch-Method": method, "X-Delay": "2s", "Content-Type": "application/json" },
  body: JSON.stringify({ userId: "user_456" }),
});
const { id } = await res.json();
console.log(res.status, id);

for (let i = 0; i < 20; i++) {
  const job = await (await fetch(`${relay}/v1/jobs/${id}`, { headers: auth })).json();
  if (["delivered", "failed", "cancelled"].includes(job.status)) {
    console.log(job.status, job.attempts);
    break;
  }
  await new Promise((r) => setTimeout(r, 500));
}
