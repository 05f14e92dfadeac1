/**
 * A decoder for `text/event-stream` (the WHATWG rules: `event`, `data` joined by newlines,
 * `id`, comments ignored, a blank line dispatches), over any stream of text chunks.
 */

import type { EventRecord, Json, RunEvent, RunRecord } from "./models.js";

/** Turns lines into events. */
export class SseDecoder {
  private event = "";
  private data: string[] = [];
  private id: string | null = null;

  /** The event this line completes, if any. */
  feed(rawLine: string): RunEvent | null {
    const line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") this.event = value;
    else if (name === "data") this.data.push(value);
    else if (name === "id" && !value.includes("\0")) this.id = value;
    return null;
  }

  private dispatch(): RunEvent | null {
    if (this.data.length === 0 && this.event === "") return null;
    const event = eventFromSse(this.event || "message", this.data.join("\n"), this.id);
    this.event = "";
    this.data = [];
    this.id = null;
    return event;
  }
}

/** One stream event: a journal record, the final run, or anything else. */
export function eventFromSse(event: string, data: string, id: string | null): RunEvent {
  let payload: Json = data;
  if (data !== "") {
    try {
      payload = JSON.parse(data) as Json;
    } catch {
      payload = data;
    }
  }
  const isObject = payload !== null && typeof payload === "object" && !Array.isArray(payload);
  if (event === "done" && isObject) return { id, event, run: payload as unknown as RunRecord };
  if (id !== null && isObject) return { id, event, record: payload as unknown as EventRecord };
  return { id, event, data: payload };
}

/** Whether an event is one of the run's journal events (these carry an id to resume after). */
export function isJournalEvent(event: RunEvent): boolean {
  return event.id !== null && event.record !== undefined;
}

/** The lines of a byte stream, decoded as UTF-8. */
export async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        yield buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
      }
    }
    buffered += decoder.decode();
    if (buffered !== "") yield buffered;
  } finally {
    reader.releaseLock();
  }
}
