/**
 * What the Weir API returns. Each interface mirrors the schema of the same name in the
 * server's OpenAPI document (`GET /openapi.json`); `SCHEMA_FIELDS` lists every interface's
 * fields (the compiler checks that the lists match the interfaces), and the test suite
 * compares them with a running server's document, so neither side can drift unnoticed.
 */

/** Any JSON value: run inputs and outputs, step payloads, failures. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every status a run can have; the last three are final. */
export type RunStatus = "pending" | "running" | "awaiting_review" | "succeeded" | "failed" | "cancelled";

/** A run: one execution of one workflow version on one input. */
export interface RunRecord {
  id: string;
  workflow: string;
  version: string;
  status: RunStatus;
  input: Json;
  output?: Json | null;
  failure?: Json | null;
  /** While awaiting review, what it waits for: `{"step", "review"}` or `{"step", "failure"}`. */
  review?: Json | null;
  idempotency_key?: string | null;
  /** The run this one reruns from a step, if it is a rerun. */
  source_run?: string | null;
  created_ms: number;
  updated_ms: number;
}

/** The answer to a submission; `created` is false when the idempotency key returned an existing run. */
export interface RunSubmitted {
  created: boolean;
  run: RunRecord;
}

/** A step of a run, pinned to the plugin digest it runs. */
export interface StepRecord {
  step_id: string;
  plugin_digest: string;
  status: string;
  output?: Json | null;
  confidence?: number | null;
  route?: string | null;
  failure?: Json | null;
  skip_reason?: string | null;
  attempts: number;
}

/** One attempt of a step. */
export interface AttemptRecord {
  step_id: string;
  attempt: number;
  input_digest: string;
  status: string;
  failure?: Json | null;
  started_ms: number;
  finished_ms?: number | null;
  latency_us?: number | null;
  fuel?: number | null;
  memory_peak?: number | null;
  logs?: Json | null;
  /** What the attempt read from the host (clocks, random bytes, HTTP), for `weir replay`. */
  tape?: Json | null;
}

/** One model call of an attempt: what was asked, what came back, what it cost. */
export interface ModelCallRecord {
  run_id: string;
  step_id: string;
  attempt: number;
  seq: number;
  workflow: string;
  version: string;
  alias: string;
  provider?: string | null;
  model?: string | null;
  prompt_id?: string | null;
  prompt_hash?: string | null;
  request: Json;
  response?: Json | null;
  outcome: string;
  error?: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  cost_micros: number;
  latency_us: number;
  upstream_attempts: number;
  at_ms: number;
}

/** What a run consumed over all its attempts. */
export interface RunUsage {
  attempts: number;
  latency_us: number;
  fuel: number;
  memory_peak: number;
  model_tokens: number;
  model_cost_micros: number;
}

/** One redaction the workflow's `[redact]` made: where, by which rule, how many. */
export interface Redaction {
  at: string;
  rule: string;
  count: number;
}

/** A run with its steps, attempts, model calls, usage and redactions. */
export interface RunDetail {
  run: RunRecord;
  steps: StepRecord[];
  attempts: AttemptRecord[];
  model_calls: ModelCallRecord[];
  usage: RunUsage;
  redacted: Redaction[];
}

/** A page of runs, newest first; `next` is the cursor of the following page. */
export interface RunPage {
  runs: RunRecord[];
  next?: string | null;
}

/** One entry of a run's event log. */
export interface EventRecord {
  seq: number;
  at_ms: number;
  kind: string;
  step_id?: string | null;
  data: Json;
}

/**
 * One server-sent event: a journal event (`record`), the final `done` (`run`, the settled
 * run), or any other event (`data`).
 */
export interface RunEvent {
  id: string | null;
  event: string;
  record?: EventRecord;
  run?: RunRecord;
  data?: Json;
}

/** A review: a run parked for a person, and the person's decision. */
export interface ReviewRecord {
  id: string;
  run_id: string;
  step_id: string;
  reason: string;
  data: Json;
  status: "pending" | "approved" | "edited" | "rejected";
  created_ms: number;
  expires_ms?: number | null;
  default_action?: string | null;
  decided_by?: string | null;
  decided_ms?: number | null;
  note?: string | null;
  before?: Json | null;
  after?: Json | null;
}

/** Reviews, oldest first. */
export interface ReviewList {
  reviews: ReviewRecord[];
}

/** A step of an active workflow version. */
export interface WorkflowStepView {
  id: string;
  plugin: string;
  digest: string;
  limits: Json;
}

/** An active workflow version. */
export interface WorkflowView {
  name: string;
  version: string;
  description: string;
  input_schema?: Json | null;
  steps: WorkflowStepView[];
}

/** A workflow or plugin file that failed to load (the previous version keeps serving). */
export interface Rejected {
  file: string;
  error: string;
  at_ms: number;
}

/** The active workflow versions, and the files that failed to load. */
export interface WorkflowList {
  workflows: WorkflowView[];
  rejected: Rejected[];
}

/** A plugin on offer. */
export interface PluginView {
  name: string;
  version: string;
  description: string;
  digest: string;
  size_bytes: number;
  imports: string[];
  capabilities: string[];
  input_schema?: Json | null;
  output_schema?: Json | null;
}

/** The plugins on offer. */
export interface PluginList {
  plugins: PluginView[];
}

type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];
type OptionalKeys<T> = Exclude<keyof T, RequiredKeys<T>>;
// Compiles only when `R` lists exactly the required keys of `T` and `O` exactly the others.
type Exact<T, R extends readonly (keyof T)[], O extends readonly (keyof T)[]> = [
  Exclude<RequiredKeys<T>, R[number]>,
  Exclude<R[number], RequiredKeys<T>>,
  Exclude<OptionalKeys<T>, O[number]>,
  Exclude<O[number], OptionalKeys<T>>,
] extends [never, never, never, never]
  ? { required: R; optional: O }
  : never;

function fields<T>() {
  return <const R extends readonly (keyof T)[], const O extends readonly (keyof T)[]>(
    f: Exact<T, R, O>,
  ): { required: readonly string[]; optional: readonly string[] } =>
    f as { required: readonly string[]; optional: readonly string[] };
}

/** Every checked interface's fields, required and optional, by schema name. */
export const SCHEMA_FIELDS = {
  RunRecord: fields<RunRecord>()({
    required: ["id", "workflow", "version", "status", "input", "created_ms", "updated_ms"],
    optional: ["output", "failure", "review", "idempotency_key", "source_run"],
  }),
  RunSubmitted: fields<RunSubmitted>()({ required: ["created", "run"], optional: [] }),
  StepRecord: fields<StepRecord>()({
    required: ["step_id", "plugin_digest", "status", "attempts"],
    optional: ["output", "confidence", "route", "failure", "skip_reason"],
  }),
  AttemptRecord: fields<AttemptRecord>()({
    required: ["step_id", "attempt", "input_digest", "status", "started_ms"],
    optional: ["failure", "finished_ms", "latency_us", "fuel", "memory_peak", "logs", "tape"],
  }),
  ModelCallRecord: fields<ModelCallRecord>()({
    required: [
      "run_id", "step_id", "attempt", "seq", "workflow", "version", "alias", "request", "outcome",
      "prompt_tokens", "completion_tokens", "cost_micros", "latency_us", "upstream_attempts", "at_ms",
    ],
    optional: ["provider", "model", "prompt_id", "prompt_hash", "response", "error"],
  }),
  RunUsage: fields<RunUsage>()({
    required: ["attempts", "latency_us", "fuel", "memory_peak", "model_tokens", "model_cost_micros"],
    optional: [],
  }),
  Redaction: fields<Redaction>()({ required: ["at", "rule", "count"], optional: [] }),
  RunDetail: fields<RunDetail>()({
    required: ["run", "steps", "attempts", "model_calls", "usage", "redacted"],
    optional: [],
  }),
  RunPage: fields<RunPage>()({ required: ["runs"], optional: ["next"] }),
  EventRecord: fields<EventRecord>()({ required: ["seq", "at_ms", "kind", "data"], optional: ["step_id"] }),
  ReviewRecord: fields<ReviewRecord>()({
    required: ["id", "run_id", "step_id", "reason", "data", "status", "created_ms"],
    optional: ["expires_ms", "default_action", "decided_by", "decided_ms", "note", "before", "after"],
  }),
  ReviewList: fields<ReviewList>()({ required: ["reviews"], optional: [] }),
  WorkflowStepView: fields<WorkflowStepView>()({ required: ["id", "plugin", "digest", "limits"], optional: [] }),
  WorkflowView: fields<WorkflowView>()({
    required: ["name", "version", "description", "steps"],
    optional: ["input_schema"],
  }),
  Rejected: fields<Rejected>()({ required: ["file", "error", "at_ms"], optional: [] }),
  WorkflowList: fields<WorkflowList>()({ required: ["workflows", "rejected"], optional: [] }),
  PluginView: fields<PluginView>()({
    required: ["name", "version", "description", "digest", "size_bytes", "imports", "capabilities"],
    optional: ["input_schema", "output_schema"],
  }),
  PluginList: fields<PluginList>()({ required: ["plugins"], optional: [] }),
} as const;
