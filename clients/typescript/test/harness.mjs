// Test fixtures: a real `weir serve` on loopback with the ticket-triage example, a workflow
// with a review gate, a model provider stand-in (a real HTTP server speaking the OpenAI chat
// completions API) and a TCP proxy whose connections a test can cut.
// The `weir` binary is $WEIR_BIN, else $CARGO_TARGET_DIR/debug/weir (target/ by default).

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync, openSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const TOKEN = "client-test-token";
const EXAMPLE = join(REPO, "examples", "ticket-triage");
export const PLUGINS = join(REPO, "plugins", "target", "wasm32-wasip2", "release");

export const BILLING = { subject: "Refund please", body: "I was charged twice for my order #4411." };
export const VAGUE = { subject: "Hello", body: "Something vague happened, can you look?" };

function weirBin() {
  if (process.env.WEIR_BIN) return process.env.WEIR_BIN;
  return join(process.env.CARGO_TARGET_DIR || join(REPO, "target"), "debug", "weir");
}

/** The provider stand-in: billing for refunds and charges, a 0.3 `feedback` for "vague". */
export async function startStandin() {
  const standin = { delayMs: 0, requests: [] };
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const request = JSON.parse(body || "{}");
      standin.requests.push(request);
      const text = (request.messages || []).map((m) => String(m.content || "")).join(" ").toLowerCase();
      const [label, confidence] = text.includes("vague")
        ? ["feedback", 0.3]
        : text.includes("refund") || text.includes("charge")
          ? ["billing", 0.95]
          : ["technical", 0.9];
      const answer = JSON.stringify({
        id: "chatcmpl-standin",
        object: "chat.completion",
        created: Math.floor(Date.now() / 1000),
        model: request.model || "standin",
        choices: [{ index: 0, message: { role: "assistant", content: JSON.stringify({ label, confidence }) }, finish_reason: "stop" }],
        usage: { prompt_tokens: Math.max(1, text.length >> 2), completion_tokens: 12, total_tokens: Math.max(1, text.length >> 2) + 12 },
      });
      setTimeout(() => {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(answer);
      }, standin.delayMs);
    });
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  standin.url = `http://127.0.0.1:${server.address().port}/v1`;
  standin.close = () => new Promise((ok) => { server.closeAllConnections(); server.close(ok); });
  return standin;
}

const GATED = (prompt, plugin) => `
# A classifier behind a confidence gate: an unsure answer parks the run for a person.
name = "gated-triage"
version = "1.0.0"
description = "Classify a ticket with the model; unsure answers wait for review"

[prompts]
classify = "${prompt}"

[input-schema]
type = "object"
required = ["subject", "body"]

[[steps]]
id = "classify"
plugin = "${plugin}"
grants = { models = ["smart"] }
review = { when = "steps.classify.confidence < 0.6" }
`;

async function freePort() {
  const server = net.createServer();
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

/** Starts `weir serve` (extra flags after the defaults); `stop()` ends it and cleans up. */
export async function startWeir(extra = []) {
  const binary = weirBin();
  if (!existsSync(binary)) throw new Error(`no weir binary at ${binary}: build it or set WEIR_BIN`);
  if (!existsSync(join(PLUGINS, "classify_llm.wasm"))) {
    throw new Error(`the example's plugins are not built (${PLUGINS})`);
  }
  const standin = await startStandin();
  const tmp = mkdtempSync(join(tmpdir(), "weir-client-ts-"));
  const workflows = join(tmp, "workflows");
  mkdirSync(workflows);
  const example = readFileSync(join(EXAMPLE, "workflow.toml"), "utf8")
    .replaceAll('"../../', `"${REPO}/`)
    .replaceAll('"prompts/', `"${EXAMPLE}/prompts/`);
  writeFileSync(join(workflows, "ticket-triage.toml"), example);
  writeFileSync(join(workflows, "gated-triage.toml"), GATED(join(EXAMPLE, "prompts", "classify.j2"), join(PLUGINS, "classify_llm.wasm")));
  const config = join(tmp, "weir.toml");
  writeFileSync(config, `
[providers.standin]
base-url = "${standin.url}"
timeout = "10s"

[models.smart]
provider = "standin"
model = "standin-1"
input-price = 1.0
output-price = 2.0
`);
  const port = await freePort();
  const log = join(tmp, "weir-serve.log");
  const env = { ...process.env, WEIR_API_TOKENS: TOKEN, NO_COLOR: "1" };
  delete env.WEIR_CONFIG;
  const child = spawn(binary, [
    "serve", "--listen", `127.0.0.1:${port}`, "--workflows", workflows,
    "--data-dir", join(tmp, "data"), "--host-config", config, ...extra,
  ], { cwd: tmp, env, stdio: ["ignore", openSync(log, "w"), openSync(log, "a")] });
  let exited = null;
  child.on("exit", (code) => (exited = code));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (exited !== null) throw new Error(`weir serve exited with ${exited}:\n${readFileSync(log, "utf8")}`);
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`weir serve did not get ready:\n${readFileSync(log, "utf8")}`);
    }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  return {
    url,
    port,
    standin,
    async metric(name) {
      const text = await (await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } })).text();
      return text.split("\n")
        .filter((l) => l.startsWith(name) && [" ", "{"].includes(l[name.length]))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
    },
    async stop() {
      if (exited === null) {
        const gone = new Promise((ok) => child.on("exit", ok));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        await gone;
        clearTimeout(timer);
      }
      await standin.close();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** A TCP proxy to `port` whose open connections `cut()` drops (new ones still go through). */
export async function startProxy(port) {
  const open = new Set();
  const proxy = { connections: 0 };
  const server = net.createServer((client) => {
    proxy.connections++;
    const upstream = net.connect(port, "127.0.0.1");
    open.add(client);
    open.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const done = () => { client.destroy(); upstream.destroy(); open.delete(client); open.delete(upstream); };
    client.on("error", done).on("close", done);
    upstream.on("error", done).on("close", done);
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  proxy.url = `http://127.0.0.1:${server.address().port}`;
  proxy.cut = () => { for (const s of open) s.destroy(); open.clear(); };
  proxy.close = () => new Promise((ok) => { proxy.cut(); server.close(ok); });
  return proxy;
}
