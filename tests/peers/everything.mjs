// Starts @modelcontextprotocol/server-everything on 127.0.0.1 only.
//
//   $PEERS_NODE tests/peers/everything.mjs --port N [--mode streamableHttp|sse]
//
// The package itself is started as `node dist/index.js <streamableHttp|sse|stdio>` and takes
// its port from the PORT env var (default 3001), but it calls app.listen(PORT) with no host,
// i.e. it binds every interface. This wrapper pins the host to 127.0.0.1, sets PORT, exits
// on SIGTERM/SIGINT or when its parent dies, then imports the package's own transport module.
import net from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { port: { type: "string" }, mode: { type: "string", default: "streamableHttp" } },
});
if (!values.port || !["streamableHttp", "sse"].includes(values.mode)) {
  console.error("usage: everything.mjs --port N [--mode streamableHttp|sse]");
  process.exit(2);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = process.env.PEERS_NODE_MODULES ?? path.join(here, "../../.peers/node/node_modules");

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
    if (typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};

for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 500).unref();

process.env.PORT = values.port;
const entry = path.join(nodeModules, "@modelcontextprotocol/server-everything/dist/transports", `${values.mode}.js`);
await import(pathToFileURL(entry).href);
