// The parts that need no server: the event decoder, Retry-After, waits, error mapping.

import assert from "node:assert/strict";
import { test } from "node:test";

import { InternalError, InvalidInput, NotFound, SseDecoder, encodeWait, errorFromResponse, isJournalEvent, parseRetryAfter } from "../dist/index.js";

test("the decoder follows the event stream rules", () => {
  const decoder = new SseDecoder();
  const lines = [
    ": keep-alive",
    "id: 3",
    "event: step_started",
    'data: {"seq": 3, "at_ms": 1, "kind": "step_started",',
    'data: "step_id": "clean", "data": {"attempt": 1}}',
    "",
    "event: done",
    'data: {"id": "r", "status": "succeeded"}',
    "",
    "event: shutdown",
    'data: {"reason": "draining"}',
    "",
  ];
  const events = lines.map((l) => decoder.feed(l)).filter((e) => e !== null);
  assert.deepEqual(events.map((e) => e.event), ["step_started", "done", "shutdown"]);
  assert.equal(events[0].record.step_id, "clean");
  assert.ok(isJournalEvent(events[0]));
  assert.equal(events[1].run.status, "succeeded");
  assert.deepEqual(events[2].data, { reason: "draining" });
  assert.ok(!isJournalEvent(events[2]));
});

test("Retry-After reads seconds and dates; waits encode as milliseconds", () => {
  assert.equal(parseRetryAfter("2"), 2);
  assert.equal(parseRetryAfter(new Date(1_000_030_000).toUTCString(), 1_000_000_000), 30);
  assert.equal(parseRetryAfter("soon"), null);
  assert.equal(encodeWait(1.5), "1500ms");
  assert.equal(encodeWait("2m"), "2m");
  assert.equal(encodeWait(0), undefined);
  assert.throws(() => encodeWait(-1), RangeError);
});

test("errors map by code, then by status", () => {
  const lines = ['at /subject: 42 is not of type "string"', "odd"];
  const err = errorFromResponse(422, { error: { code: "invalid_input", message: "bad", details: { violations: lines } } }, null);
  assert.ok(err instanceof InvalidInput);
  assert.deepEqual(err.violations, [
    { path: "/subject", message: '42 is not of type "string"', text: lines[0] },
    { path: null, message: "odd", text: "odd" },
  ]);
  assert.ok(errorFromResponse(404, "Not Found", null) instanceof NotFound);
  assert.ok(errorFromResponse(502, "", null) instanceof InternalError);
});
