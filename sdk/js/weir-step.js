// Write Weir workflow steps in JavaScript.
//
// A step is one function, wrapped by `step` and exported as the component's `describe` and
// `run`:
//
//     import { step, InvalidInput, Output, log } from "weir-step";
//
//     export const { describe, run } = step(
//       { name: "shout", version: "1.0.0", description: "Upper-cases a subject" },
//       (ctx, ticket) => {
//         if (!ticket.subject) throw new InvalidInput("subject is empty");
//         log.info(`attempt ${ctx.attempt} of step ${ctx.stepId}`);
//         return new Output({ subject: ticket.subject.toUpperCase() }, { confidence: 1 });
//       },
//     );
//
// `weir build` bundles the module (npm packages included) with esbuild and turns it into a
// WebAssembly component with componentize-js; the host runs it under the same limits and
// grants as a step written in any other language.
//
// The function gets a context and the input decoded from JSON, and returns any
// JSON-serialisable value (the payload) or an `Output` that adds a confidence and a route.
// It fails by throwing `InvalidInput`, `Transient`, `Fatal`, `NeedsReview` or a
// `ModelError`; any other exception is a bug and reaches the host as a fatal error carrying
// its message, with the stack logged at level error.

import * as witLog from "weir:step/log@0.1.0";
import * as witConfig from "weir:step/config@0.1.0";
import * as witState from "weir:step/state@0.1.0";
import * as witModel from "weir:step/model@0.1.0";

/** An error the step reports; the workflow's policies decide what happens next. */
export class StepError extends Error {
  constructor(tag, message) {
    super(message);
    this.name = new.target.name;
    this.tag = tag;
  }
}

/** The input is malformed; retrying will not help. */
export class InvalidInput extends StepError {
  constructor(message) {
    super("invalid-input", message);
  }
}

/** A passing failure (an upstream was down, a rate limit); a retry may succeed. */
export class Transient extends StepError {
  constructor(message) {
    super("transient", message);
  }
}

/** A permanent failure; do not retry. */
export class Fatal extends StepError {
  constructor(message) {
    super("fatal", message);
  }
}

/** The step cannot decide alone; a human should look at this case. */
export class NeedsReview extends StepError {
  constructor(message) {
    super("needs-review", message);
  }
}

/** A model call failed; `kind` says why (`unavailable`, `budget_exceeded`, ...). */
export class ModelError extends StepError {
  constructor(witError) {
    const kind = witError.tag.replaceAll("-", "_");
    super("model-failed", `model ${kind}: ${witError.val}`);
    this.kind = kind;
    this.witError = witError;
  }
}

/** A successful result: the payload plus an optional confidence and route label. */
export class Output {
  constructor(payload, { confidence, route } = {}) {
    this.payload = payload;
    // Clamped like the other SDKs do: the host only accepts 0.0 to 1.0.
    this.confidence =
      confidence === undefined || confidence === null
        ? undefined
        : Math.min(1, Math.max(0, Number(confidence)));
    this.route = route ?? undefined;
  }
}

/** Structured logging: each line is attributed by the host to its run, step and attempt. */
export const log = {
  trace: (message) => witLog.log("trace", String(message)),
  debug: (message) => witLog.log("debug", String(message)),
  info: (message) => witLog.log("info", String(message)),
  warn: (message) => witLog.log("warn", String(message)),
  error: (message) => witLog.log("error", String(message)),
};

/** The step's configuration table, each value decoded from JSON. */
export const config = {
  /** The value under `key`, or `fallback` when it is absent. */
  get(key, fallback = undefined) {
    const text = witConfig.get(key);
    return text === undefined || text === null ? fallback : JSON.parse(text);
  },
  /** The value under `key`; a missing key is the workflow's mistake (fatal). */
  require(key) {
    const text = witConfig.get(key);
    if (text === undefined || text === null) throw new Fatal(`config key \`${key}\` is required`);
    return JSON.parse(text);
  },
  /** The whole table. */
  all: () => JSON.parse(witConfig.all()),
};

/** Small durable key/value state scoped to the run: what one step sets, later steps read. */
export const state = {
  get(key, fallback = undefined) {
    const text = witState.get(key);
    return text === undefined || text === null ? fallback : JSON.parse(text);
  },
  set(key, value) {
    try {
      witState.set(key, JSON.stringify(value));
    } catch (e) {
      throw new Fatal(`state key \`${key}\` could not be set: ${errorPayload(e)}`);
    }
  },
  delete: (key) => witState.delete(key),
};

/** Chat completions by model alias; the host applies its policies and journals the call. */
export const model = {
  /**
   * Asks the model behind `alias`. Options: `messages` ([{role, content}]), `system`,
   * `user`, `prompt` and `variables` (a template of the workflow's `[prompts]`),
   * `maxTokens`, `temperature`, `json`. Throws `ModelError` on failure.
   */
  complete(alias, options = {}) {
    const messages = [...(options.messages ?? [])];
    if (options.system !== undefined) messages.push({ role: "system", content: options.system });
    if (options.user !== undefined) messages.push({ role: "user", content: options.user });
    const request = {
      alias,
      messages,
      prompt:
        options.prompt === undefined
          ? undefined
          : { id: options.prompt, variables: JSON.stringify(options.variables ?? {}) },
      maxTokens: options.maxTokens,
      temperature: options.temperature,
      json: Boolean(options.json),
    };
    let response;
    try {
      response = witModel.complete(request);
    } catch (e) {
      throw new ModelError(errorPayload(e));
    }
    return {
      ...response,
      promptTokens: Number(response.promptTokens),
      completionTokens: Number(response.completionTokens),
      /** The content decoded as JSON; an answer that is not JSON is a transient failure. */
      parse() {
        try {
          return JSON.parse(response.content);
        } catch (e) {
          throw new Transient(`the model's answer is not the JSON expected: ${e.message}`);
        }
      },
    };
  },
};

// An import's `result` error arrives as a thrown value carrying the error as `payload`.
function errorPayload(e) {
  return e !== null && typeof e === "object" && "payload" in e ? e.payload : e;
}

function witError(e) {
  if (e instanceof ModelError) return { tag: "model-failed", val: e.witError };
  if (e instanceof StepError) return { tag: e.tag, val: e.message || e.name };
  return { tag: "fatal", val: `${e?.name ?? "Error"}: ${e?.message ?? String(e)}` };
}

/**
 * Wraps `fn(ctx, input)` as the component's exports. `meta`: `name`, `version`,
 * `description`, `inputSchema` and `outputSchema` (JSON Schemas as objects) and
 * `capabilities` (what the step expects to be granted).
 */
export function step(meta, fn) {
  if (!meta?.name || !meta?.version) throw new Error("step(meta, fn): meta needs a name and a version");
  const describe = () => ({
    name: meta.name,
    version: meta.version,
    description: meta.description ?? "",
    inputSchema: meta.inputSchema === undefined ? undefined : JSON.stringify(meta.inputSchema),
    outputSchema: meta.outputSchema === undefined ? undefined : JSON.stringify(meta.outputSchema),
    capabilities: [...(meta.capabilities ?? [])],
  });
  const run = (ctx, inputText) => {
    let input;
    try {
      input = JSON.parse(inputText);
    } catch (e) {
      throw { tag: "invalid-input", val: `input is not JSON: ${e.message}` };
    }
    const context = {
      runId: ctx.runId,
      stepId: ctx.stepId,
      attempt: ctx.attempt,
      deadlineMs: ctx.deadlineMs === undefined || ctx.deadlineMs === null ? undefined : Number(ctx.deadlineMs),
    };
    let result;
    try {
      result = fn(context, input);
    } catch (e) {
      if (!(e instanceof StepError)) log.error(e?.stack ?? String(e));
      throw witError(e);
    }
    const output = result instanceof Output ? result : new Output(result);
    let payload;
    try {
      payload = JSON.stringify(output.payload ?? null);
    } catch (e) {
      throw { tag: "fatal", val: `output could not be encoded as JSON: ${e.message}` };
    }
    return { payload, confidence: output.confidence, route: output.route };
  };
  return { describe, run };
}
