/**
 * The client of one Weir sidecar, on the platform's `fetch` (Node 20+, browsers, Deno, Bun).
 */

import { ApiError, TransportError, errorFromResponse } from "./errors.js";
import type {
  Json,
  PluginList,
  PluginView,
  ReviewList,
  ReviewRecord,
  RunDetail,
  RunEvent,
  RunPage,
  RunRecord,
  RunStatus,
  RunSubmitted,
  WorkflowList,
} from "./models.js";
import { SseDecoder, isJournalEvent, lines } from "./sse.js";

/** Where `weir serve` listens unless told otherwise. */
export const DEFAULT_BASE_URL = "http://127.0.0.1:7878";

/** Statuses the server answers without having done anything: safe to send again. */
const RETRIED_STATUSES = new Set([429, 503]);

/** Settings of a client. */
export interface ClientOptions {
  /** The sidecar's URL; default `$WEIR_URL` (in Node) or `http://127.0.0.1:7878`. */
  baseUrl?: string;
  /** The bearer token; default `$WEIR_API_TOKEN` (in Node). */
  token?: string;
  /** Per-request timeout in milliseconds (a waiting submission adds its wait); default 30 000. */
  timeoutMs?: number;
  /** How often a 429 or 503 answer is sent again; default 3. */
  maxRetries?: number;
  /** The longest wait before a resend, in milliseconds; default 30 000. */
  maxRetryWaitMs?: number;
  /** How often a broken event stream is reopened in a row; default 5. */
  maxReconnects?: number;
  /** The `fetch` to use; default the global one. */
  fetch?: typeof fetch;
}

/** Options of `submit`. */
export interface SubmitOptions {
  /** The workflow version; the highest active one when absent. */
  version?: string;
  /** The same key returns the same run. */
  idempotencyKey?: string;
  /** Block until the run ends, parks for review, or this many seconds pass (or `"30s"`). */
  wait?: number | string;
  /** Make an idempotency key when none is given, so a resent request cannot start a second run. */
  safeRetries?: boolean;
}

/** Filters of `listRuns`. */
export interface ListOptions {
  status?: RunStatus;
  workflow?: string;
  pageSize?: number;
}

/** A reviewer's decision. */
export type Decision =
  | { decision: "approve"; by?: string; note?: string }
  | { decision: "edit"; output: Json; by?: string; note?: string }
  | { decision: "reject"; reason: string; by?: string; note?: string };

interface Request {
  method: string;
  path: string;
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  body?: Uint8Array;
  headers?: Record<string, string>;
  timeoutMs?: number;
  resendOnTransportError?: boolean;
}

function env(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env?.[name] || undefined;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `Retry-After` in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3). */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const when = Date.parse(text);
  return Number.isNaN(when) ? null : Math.max(0, (when - now) / 1000);
}

/** `wait` as the server's `?wait=` parameter (whole milliseconds), or nothing for no wait. */
export function encodeWait(wait: number | string | undefined): string | undefined {
  if (wait === undefined || typeof wait === "string") return wait;
  if (wait < 0) throw new RangeError("wait must be 0 or more seconds");
  return wait === 0 ? undefined : `${Math.max(1, Math.round(wait * 1000))}ms`;
}

/**
 * A client of one Weir sidecar. Answers 429 and 503 are sent again after the server's
 * `Retry-After` (at most `maxRetries` times, each wait at most `maxRetryWaitMs`); errors
 * throw the class of their code (`InvalidInput`, `Overloaded`, `Conflict`, ...).
 *
 * ```ts
 * const weir = new WeirClient({ token: "dev-token" });
 * const { run } = await weir.submit("ticket-triage", { subject: "Hi", body: "..." }, { wait: 30 });
 * for await (const event of weir.events(run.id)) console.log(event.event);
 * ```
 */
export class WeirClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly maxRetryWaitMs: number;
  private readonly maxReconnects: number;
  private readonly fetchImpl: typeof fetch;
  /** The review queue. */
  readonly reviews: Reviews;
  /** The plugins on offer. */
  readonly plugins: Plugins;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? env("WEIR_URL") ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    this.token = options.token ?? env("WEIR_API_TOKEN");
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxRetries = options.maxRetries ?? 3;
    this.maxRetryWaitMs = options.maxRetryWaitMs ?? 30_000;
    this.maxReconnects = options.maxReconnects ?? 5;
    if (this.maxRetries < 0) throw new RangeError("maxRetries must be 0 or more");
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.reviews = new Reviews(this);
    this.plugins = new Plugins(this);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = { Accept: "application/json", ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  private url(path: string, query: Request["query"] = {}): string {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  /** Sends a request, resending on 429/503 (and, where safe, on a broken connection). */
  async send(request: Request): Promise<Response> {
    const headers = this.headers(request.headers);
    let body: BodyInit | undefined;
    if (request.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(request.json);
    } else if (request.body !== undefined) {
      body = request.body as unknown as BodyInit;
    }
    const url = this.url(request.path, request.query);
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.fetchImpl(url, {
          method: request.method,
          headers,
          body,
          signal: AbortSignal.timeout(request.timeoutMs ?? this.timeoutMs),
        });
      } catch (err) {
        if (request.resendOnTransportError && attempt < this.maxRetries) {
          await sleep(Math.min(5000, 100 * 2 ** attempt));
          continue;
        }
        throw new TransportError(`${request.method} ${url}: ${(err as Error).message}`, { cause: err });
      }
      if (!RETRIED_STATUSES.has(response.status) || attempt >= this.maxRetries) return response;
      const told = parseRetryAfter(response.headers.get("retry-after"));
      const backoff = Math.min(8, 0.25 * 2 ** attempt) * (0.5 + Math.random() / 2);
      await response.body?.cancel();
      await sleep(Math.min((told ?? backoff) * 1000, this.maxRetryWaitMs));
    }
  }

  /** The JSON of a successful response; an error response throws its class. */
  async json<T>(response: Response): Promise<T> {
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: kept as text for the error, or refused below.
    }
    if (response.status >= 400) {
      throw errorFromResponse(response.status, body, parseRetryAfter(response.headers.get("retry-after")));
    }
    if (typeof body === "string") {
      throw new ApiError(response.status, "bad_response", "the server's answer is not JSON");
    }
    return body as T;
  }

  /**
   * Starts a run of `workflow` (its highest active version unless `version`); with `wait`
   * it blocks until the run ends, parks for review, or the wait runs out.
   */
  async submit(workflow: string, input: Json, options: SubmitOptions = {}): Promise<RunSubmitted> {
    if (options.idempotencyKey === "") {
      throw new RangeError("idempotencyKey must not be empty: leave it out or give a non-empty key");
    }
    const key =
      options.idempotencyKey ?? (options.safeRetries ? `weir-client-${crypto.randomUUID()}` : undefined);
    const json: Record<string, unknown> = { workflow, input };
    if (options.version !== undefined) json.version = options.version;
    if (key !== undefined) json.idempotency_key = key;
    const wait = encodeWait(options.wait);
    const waitMs = typeof options.wait === "number" ? Math.min(options.wait, 300) * 1000 : wait ? 300_000 : 0;
    const response = await this.send({
      method: "POST",
      path: "/v1/runs",
      query: { wait },
      json,
      timeoutMs: this.timeoutMs + waitMs,
      resendOnTransportError: key !== undefined,
    });
    return this.json<RunSubmitted>(response);
  }

  /** A run with its steps, attempts, model calls and usage. */
  async getRun(runId: string): Promise<RunDetail> {
    const path = `/v1/runs/${encodeURIComponent(runId)}`;
    return this.json(await this.send({ method: "GET", path, resendOnTransportError: true }));
  }

  /** One page of runs, newest first. */
  async listPage(options: ListOptions & { before?: string } = {}): Promise<RunPage> {
    const query = { status: options.status, workflow: options.workflow, limit: options.pageSize, before: options.before };
    return this.json(await this.send({ method: "GET", path: "/v1/runs", query, resendOnTransportError: true }));
  }

  /** Every matching run, newest first, fetched a page at a time as iterated. */
  async *listRuns(options: ListOptions = {}): AsyncGenerator<RunRecord> {
    let before: string | undefined;
    for (;;) {
      const page = await this.listPage({ ...options, before });
      yield* page.runs;
      if (!page.next) return;
      before = page.next;
    }
  }

  /** Cancels a run that has not ended (`Conflict` if it has). */
  async cancel(runId: string, reason?: string): Promise<RunRecord> {
    const path = `/v1/runs/${encodeURIComponent(runId)}/cancel`;
    return this.json(await this.send({ method: "POST", path, json: reason === undefined ? {} : { reason } }));
  }

  /**
   * The run's events, from the start (or after `lastEventId`), live until the run settles;
   * the last one is `done` with the run. A dropped connection is reopened with
   * `Last-Event-ID`, so no event is lost or repeated.
   */
  async *events(runId: string, lastEventId?: string): AsyncGenerator<RunEvent> {
    let last = lastEventId;
    let failures = 0;
    const url = this.url(`/v1/runs/${encodeURIComponent(runId)}/events`);
    for (;;) {
      const abort = new AbortController();
      const headers = this.headers({ Accept: "text/event-stream" });
      if (last !== undefined) headers["Last-Event-ID"] = last;
      let broke: unknown = null;
      try {
        const response = await this.fetchImpl(url, { headers, signal: abort.signal });
        if (response.status >= 400 || !response.body) await this.json(response);
        const decoder = new SseDecoder();
        for await (const line of lines(response.body as ReadableStream<Uint8Array>)) {
          const event = decoder.feed(line);
          if (event === null) continue;
          if (event.event === "done") {
            yield event;
            return;
          }
          if (isJournalEvent(event)) {
            failures = 0;
            last = event.id ?? last;
            yield event;
          }
          // Any other event (the server going away) ends this connection.
        }
      } catch (err) {
        if (err instanceof ApiError) throw err;
        broke = err;
      } finally {
        abort.abort();
      }
      failures++;
      if (failures > this.maxReconnects) {
        const why = broke ? `broke: ${(broke as Error).message}` : "kept ending before its `done` event";
        throw new TransportError(`the event stream of run ${runId} ${why}`, { cause: broke });
      }
      await sleep(Math.min(5000, 100 * 2 ** (failures - 1)));
    }
  }

  /** The active workflow versions, and the files that failed to load. */
  async workflows(): Promise<WorkflowList> {
    return this.json(await this.send({ method: "GET", path: "/v1/workflows", resendOnTransportError: true }));
  }

  /** Whether `/healthz` answers 200. */
  async healthy(): Promise<boolean> {
    return this.probe("/healthz");
  }

  /** Whether `/readyz` answers 200 (store answers, catalog loaded, not draining). */
  async ready(): Promise<boolean> {
    return this.probe("/readyz");
  }

  private async probe(path: string): Promise<boolean> {
    try {
      const response = await this.send({ method: "GET", path });
      await response.body?.cancel();
      return response.status === 200;
    } catch {
      return false;
    }
  }
}

/** The review queue: `client.reviews`. */
export class Reviews {
  constructor(private readonly client: WeirClient) {}

  /** Reviews in `status` (`pending` by default, or `approved`, `edited`, `rejected`, `all`). */
  async list(status = "pending"): Promise<ReviewRecord[]> {
    const response = await this.client.send({ method: "GET", path: "/v1/reviews", query: { status }, resendOnTransportError: true });
    return (await this.client.json<ReviewList>(response)).reviews;
  }

  /** One review. */
  async get(reviewId: string): Promise<ReviewRecord> {
    const path = `/v1/reviews/${encodeURIComponent(reviewId)}`;
    return this.client.json(await this.client.send({ method: "GET", path, resendOnTransportError: true }));
  }

  /** Decides a review; the run goes on. `Conflict` if it was decided already. */
  async decide(reviewId: string, decision: Decision): Promise<ReviewRecord> {
    const path = `/v1/reviews/${encodeURIComponent(reviewId)}`;
    return this.client.json(await this.client.send({ method: "POST", path, json: decision }));
  }

  /** The step's output stands. */
  approve(reviewId: string, by?: string, note?: string): Promise<ReviewRecord> {
    return this.decide(reviewId, { decision: "approve", by, note });
  }

  /** Replace the step's output (checked against its output schema). */
  edit(reviewId: string, output: Json, by?: string, note?: string): Promise<ReviewRecord> {
    return this.decide(reviewId, { decision: "edit", output, by, note });
  }

  /** Fail the run, with the reason. */
  reject(reviewId: string, reason: string, by?: string, note?: string): Promise<ReviewRecord> {
    return this.decide(reviewId, { decision: "reject", reason, by, note });
  }
}

/** The plugins on offer: `client.plugins`. */
export class Plugins {
  constructor(private readonly client: WeirClient) {}

  /** Every plugin the server offers. */
  async list(): Promise<PluginView[]> {
    const response = await this.client.send({ method: "GET", path: "/v1/plugins", resendOnTransportError: true });
    return (await this.client.json<PluginList>(response)).plugins;
  }

  /** Uploads a component's bytes. */
  async upload(component: Uint8Array): Promise<PluginView> {
    const response = await this.client.send({
      method: "POST",
      path: "/v1/plugins",
      body: component,
      headers: { "Content-Type": "application/wasm" },
      resendOnTransportError: true,
    });
    return this.client.json(response);
  }
}
