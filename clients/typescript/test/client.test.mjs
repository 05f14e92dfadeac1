// The TypeScript client against a real `weir serve` on loopback.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { Conflict, InvalidInput, NotFound, Overloaded, SCHEMA_FIELDS, Unauthorized, WeirClient, ERRORS_BY_CODE } from "../dist/index.js";
import { BILLING, PLUGINS, TOKEN, VAGUE, startProxy, startWeir } from "./harness.mjs";

describe("against weir serve", () => {
  let weir;
  let client;
  before(async () => {
    weir = await startWeir();
    client = new WeirClient({ baseUrl: weir.url, token: TOKEN });
  });
  after(async () => weir.stop());

  test("submit waits for the run and reads it back", async () => {
    const before = weir.standin.requests.length;
    const { created, run } = await client.submit("ticket-triage", BILLING, { wait: 30 });
    assert.ok(created);
    assert.equal(run.status, "succeeded");
    assert.equal(run.output.queue, "billing");
    const detail = await client.getRun(run.id);
    assert.equal(detail.steps.find((s) => s.step_id === "classify_llm").route, "billing");
    assert.deepEqual(detail.model_calls.map((c) => c.outcome), ["ok"]);
    assert.equal(weir.standin.requests.length, before + 1);
  });

  test("the same idempotency key returns the same run", async () => {
    const first = await client.submit("ticket-triage", BILLING, { idempotencyKey: "ts-4411", wait: 30 });
    const again = await client.submit("ticket-triage", BILLING, { idempotencyKey: "ts-4411" });
    assert.ok(first.created && !again.created);
    assert.equal(again.run.id, first.run.id);
    await assert.rejects(client.submit("ticket-triage", VAGUE, { idempotencyKey: "ts-4411" }), Conflict);
    await assert.rejects(client.submit("ticket-triage", BILLING, { idempotencyKey: "" }), RangeError);
    const safe = await client.submit("ticket-triage", BILLING, { safeRetries: true });
    assert.match(safe.run.idempotency_key, /^weir-client-/);
  });

  test("a schema violation throws InvalidInput with its paths", async () => {
    const err = await client.submit("ticket-triage", { subject: 42, extra: true }).catch((e) => e);
    assert.ok(err instanceof InvalidInput, String(err));
    assert.equal(err.status, 422);
    assert.ok(err.violations.some((v) => v.path === "/subject"), JSON.stringify(err.violations));
    const text = err.violations.map((v) => v.message).join(" ");
    for (const word of ["body", "extra"]) assert.ok(text.includes(word), text);
  });

  test("the event stream survives a dropped connection", async () => {
    weir.standin.delayMs = 1000;
    const proxy = await startProxy(weir.port);
    try {
      const through = new WeirClient({ baseUrl: proxy.url, token: TOKEN });
      // A ticket no other test sends: a cached answer would end the run before the cut.
      const ticket = { ...BILLING, body: `${BILLING.body} (stream ${Date.now()})` };
      const asked = weir.standin.requests.length;
      const { run } = await client.submit("ticket-triage", ticket);
      const seen = [];
      let done = null;
      for await (const event of through.events(run.id)) {
        if (event.event === "done") { done = event; break; }
        seen.push(Number(event.id));
        if (seen.length === 2) proxy.cut();
      }
      assert.equal(done?.run?.status, "succeeded");
      assert.equal(weir.standin.requests.length, asked + 1, "the model call was not held back");
      assert.ok(proxy.connections >= 2, "the stream was never reopened");
      const full = [];
      for await (const event of client.events(run.id)) if (event.event !== "done") full.push(Number(event.id));
      assert.deepEqual(seen, full);
      assert.deepEqual(seen, full.map((_, i) => i + 1));
    } finally {
      weir.standin.delayMs = 0;
      await proxy.close();
    }
  });

  test("a review decided through the client resumes the run", async () => {
    const { run } = await client.submit("gated-triage", VAGUE, { wait: 30 });
    assert.equal(run.status, "awaiting_review");
    const [review] = (await client.reviews.list()).filter((r) => r.run_id === run.id);
    assert.ok(review);
    const decided = await client.reviews.approve(review.id, "ana", "feedback it is");
    assert.equal(decided.status, "approved");
    let last = null;
    for await (const event of client.events(run.id)) last = event;
    assert.equal(last.event, "done");
    assert.equal(last.run.status, "succeeded");
    await assert.rejects(client.reviews.reject(review.id, "too late"), Conflict);
  });

  test("listRuns iterates every page and cancel conflicts on an ended run", async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await client.submit("ticket-triage", BILLING, { wait: 30 })).run.id);
    const listed = [];
    for await (const run of client.listRuns({ workflow: "ticket-triage", pageSize: 2 })) listed.push(run.id);
    for (const id of ids) assert.ok(listed.includes(id));
    assert.deepEqual(listed, [...listed].sort().reverse());
    await assert.rejects(client.cancel(ids[0]), Conflict);
    await assert.rejects(client.cancel("no-such-run"), NotFound);
  });

  test("the catalog lists workflows and takes uploads; a wrong token is refused", async () => {
    const names = (await client.workflows()).workflows.map((w) => w.name);
    assert.ok(names.includes("ticket-triage") && names.includes("gated-triage"));
    assert.ok((await client.plugins.list()).length > 0);
    const bytes = readFileSync(join(PLUGINS, "route_ticket.wasm"));
    const uploaded = await client.plugins.upload(new Uint8Array(bytes));
    assert.ok(uploaded.digest.endsWith(createHash("sha256").update(bytes).digest("hex")));
    await assert.rejects(new WeirClient({ baseUrl: weir.url, token: "wrong" }).getRun("x"), Unauthorized);
    assert.ok(await client.healthy());
    assert.ok(await client.ready());
  });

  test("the models match the server's OpenAPI document", async () => {
    const doc = await (await fetch(`${weir.url}/openapi.json`)).json();
    const schemas = doc.components.schemas;
    for (const [name, { required, optional }] of Object.entries(SCHEMA_FIELDS)) {
      const schema = schemas[name];
      assert.ok(schema, `the server has no schema ${name}`);
      assert.deepEqual([...required, ...optional].sort(), Object.keys(schema.properties || {}).sort(), name);
      assert.deepEqual([...required].sort(), [...(schema.required || [])].sort(), `${name}: required fields`);
    }
    const described = schemas.ErrorDetail.properties.code.description;
    const codes = described.split(/\s+/).filter((w) => w.startsWith("`")).map((w) => w.replace(/[`.,:]/g, ""));
    assert.ok(codes.length > 0);
    for (const code of codes) assert.ok(ERRORS_BY_CODE[code], `no error class for ${code}`);
  });
});

describe("against a small queue", () => {
  let weir;
  before(async () => { weir = await startWeir(["--workers", "1", "--queue", "1"]); });
  after(async () => weir.stop());

  test("429 under a full queue is retried after Retry-After", async () => {
    weir.standin.delayMs = 1000;
    const impatient = new WeirClient({ baseUrl: weir.url, token: TOKEN, maxRetries: 0 });
    const overloaded = [];
    for (let i = 0; i < 4; i++) {
      try {
        await impatient.submit("ticket-triage", BILLING);
      } catch (err) {
        if (err instanceof Overloaded) overloaded.push(err); else throw err;
      }
    }
    assert.ok(overloaded.length > 0, "the queue never filled");
    assert.equal(overloaded[0].retryAfter, 1);
    const refusedBefore = await weir.metric("weir_queue_rejected_total");
    const started = Date.now();
    const patient = new WeirClient({ baseUrl: weir.url, token: TOKEN, maxRetries: 10, maxRetryWaitMs: 2000 });
    const { created, run } = await patient.submit("ticket-triage", BILLING, { wait: 60 });
    assert.ok(created);
    assert.equal(run.status, "succeeded");
    assert.ok((await weir.metric("weir_queue_rejected_total")) > refusedBefore);
    assert.ok(Date.now() - started >= 1000);
  });
});
