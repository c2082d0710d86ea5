// A bare streaming HTTP proxy in Node, with no foreman code: the benchmarks chain two of these in front of
// the simulator to measure what two Node processes relaying a stream cost on this machine by themselves,
// the same process count as foreman's gateway and worker.
import http from "node:http";

const [port, upstream] = [Number(process.argv[2]), new URL(process.argv[3])];
const agent = new http.Agent({ keepAlive: true });
http
  .createServer((req, res) => {
    const out = http.request(
      {
        hostname: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
        agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.on("data", (chunk) => res.write(chunk));
        answer.on("end", () => res.end());
      },
    );
    out.on("error", () => res.destroy());
    req.pipe(out);
  })
  .listen(port, "127.0.0.1", () => console.log("hop listening"));
