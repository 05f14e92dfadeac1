/**
 * A TypeScript client for the Weir sidecar (`weir serve`): submit runs and wait for them,
 * list and follow them (server-sent events that resume after a dropped connection), cancel
 * them, decide reviews, and see the workflows and plugins on offer. ESM, no dependency
 * beyond `fetch`; Node 20+ and browsers.
 */

export * from "./client.js";
export * from "./errors.js";
export * from "./models.js";
export { SseDecoder, eventFromSse, isJournalEvent } from "./sse.js";
