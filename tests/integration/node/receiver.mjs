// A webhook receiver as a user would write one: it verifies each request with the
// standardwebhooks package and answers 204, or 401 if the signature does not verify.
// Usage: node receiver.mjs <secret> <port-file> <log-file>; one log line per request.
import fs from "node:fs";
import http from "node:http";
import { Webhook } from "standardwebhooks";

const [secret, portFile, logFile] = process.argv.slice(2);
const wh = new Webhook(secret);

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    let line;
    try {
      wh.verify(body, req.headers);
      line = `verified ${req.headers["webhook-id"]} ${body}`;
      res.writeHead(204);
    } catch (e) {
      line = `rejected ${req.headers["webhook-id"]} ${e.message}`;
      res.writeHead(401);
    }
    fs.appendFileSync(logFile, line + "\n");
    res.end();
  });
});

server.listen(0, "127.0.0.1", () => {
  fs.writeFileSync(portFile + ".tmp", `${server.address().port}\n`);
  fs.renameSync(portFile + ".tmp", portFile);
});
