// Types for the `weir-step` module (weir-step.js): what an editor or `tsc` checks a JS or TS
// step against.

export interface Context {
  runId: string;
  stepId: string;
  attempt: number;
  /** Milliseconds left before the host stops this attempt, when a deadline is set. */
  deadlineMs?: number;
}

export interface Meta {
  name: string;
  version: string;
  description?: string;
  inputSchema?: object;
  outputSchema?: object;
  capabilities?: string[];
}

export class StepError extends Error {
  readonly tag: string;
}
export class InvalidInput extends StepError {
  constructor(message: string);
}
export class Transient extends StepError {
  constructor(message: string);
}
export class Fatal extends StepError {
  constructor(message: string);
}
export class NeedsReview extends StepError {
  constructor(message: string);
}
export class ModelError extends StepError {
  /** `denied`, `not_configured`, `unavailable`, `rate_limited`, `budget_exceeded`, `deadline_exceeded` or `rejected`. */
  readonly kind: string;
}

export class Output<T = unknown> {
  constructor(payload: T, options?: { confidence?: number; route?: string });
  payload: T;
  confidence?: number;
  route?: string;
}

export const log: Record<"trace" | "debug" | "info" | "warn" | "error", (message: string) => void>;

export const config: {
  get<T = unknown>(key: string, fallback?: T): T;
  require<T = unknown>(key: string): T;
  all(): Record<string, unknown>;
};

export const state: {
  get<T = unknown>(key: string, fallback?: T): T;
  set(key: string, value: unknown): void;
  delete(key: string): void;
};

export interface CompleteOptions {
  messages?: { role: string; content: string }[];
  system?: string;
  user?: string;
  prompt?: string;
  variables?: Record<string, unknown>;
  maxTokens?: number;
  temperature?: number;
  json?: boolean;
}

export interface Response {
  content: string;
  alias: string;
  model: string;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  cached: boolean;
  parse<T = unknown>(): T;
}

export const model: {
  complete(alias: string, options?: CompleteOptions): Response;
};

export function step<I = unknown, O = unknown>(
  meta: Meta,
  fn: (ctx: Context, input: I) => O | Output<O>,
): { describe: () => unknown; run: (ctx: unknown, input: string) => unknown };
