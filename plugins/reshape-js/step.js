// Reshapes a JSON document: each output field is read from a path in the input.
//
// Config:
//   mapping   {"out.field": "path.in.input", ...}; a path is dot-separated keys, with
//             `[n]` for an array index and `[*]` to collect a field from every element.
//             Output keys may be dotted too, to build nested objects.
//   required  output fields that must be found; a missing one is invalid input, unless
//   alias     names a model alias: then the model is asked to extract the missing fields
//             from the `text` path of the input (default "body").
//   defaults  values for output fields that are missing and not required.
import { step, InvalidInput, Output, config, log, model } from "weir-step";

function parsePath(path) {
  const parts = [];
  for (const piece of path.split(".")) {
    const match = /^([^[\]]*)((?:\[(?:\d+|\*)\])*)$/.exec(piece);
    if (!match) throw new InvalidInput(`mapping path \`${path}\`: cannot read \`${piece}\``);
    if (match[1] !== "") parts.push(match[1]);
    for (const index of match[2].matchAll(/\[(\d+|\*)\]/g)) {
      parts.push(index[1] === "*" ? "*" : Number(index[1]));
    }
  }
  return parts;
}

function read(value, parts) {
  if (parts.length === 0) return value;
  const [head, ...rest] = parts;
  if (head === "*") {
    if (!Array.isArray(value)) return undefined;
    return value.map((item) => read(item, rest)).filter((v) => v !== undefined);
  }
  if (value === null || typeof value !== "object") return undefined;
  return read(value[head], rest);
}

function write(target, dotted, value) {
  const keys = dotted.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    node[key] ??= {};
    node = node[key];
  }
  node[keys[keys.length - 1]] = value;
}

export const { describe, run } = step(
  {
    name: "reshape-json",
    version: "1.0.0",
    description: "Maps fields of a JSON document to a new shape, asking a model for missing ones",
    capabilities: ["models"],
  },
  (ctx, input) => {
    const mapping = config.require("mapping");
    if (mapping === null || typeof mapping !== "object" || Array.isArray(mapping)) {
      throw new InvalidInput("config `mapping` must be a table of output field = input path");
    }
    const required = config.get("required", []);
    const defaults = config.get("defaults", {});
    const found = {};
    for (const [field, path] of Object.entries(mapping)) {
      const value = read(input, parsePath(String(path)));
      if (value !== undefined) found[field] = value;
    }
    const missing = required.filter((field) => !(field in found));
    let confidence = 1;
    if (missing.length > 0) {
      const alias = config.get("alias");
      if (!alias) {
        throw new InvalidInput(`required fields not found in the input: ${missing.join(", ")}`);
      }
      const text = read(input, parsePath(config.get("text", "body")));
      if (typeof text !== "string") {
        throw new InvalidInput(`fields ${missing.join(", ")} are missing and there is no text to extract them from`);
      }
      const answer = model.complete(alias, {
        system: `Extract these fields from the text as one JSON object: ${missing.join(", ")}. Use null when absent.`,
        user: text,
        json: true,
        maxTokens: 200,
      }).parse();
      for (const field of missing) {
        if (answer[field] !== undefined && answer[field] !== null) found[field] = answer[field];
      }
      const still = required.filter((field) => !(field in found));
      if (still.length > 0) throw new InvalidInput(`required fields not found, even by the model: ${still.join(", ")}`);
      confidence = 0.7;
      log.info(`the model filled ${missing.join(", ")}`);
    }
    const output = {};
    for (const [field, value] of Object.entries({ ...defaults, ...found })) write(output, field, value);
    log.info(`reshaped ${Object.keys(found).length} of ${Object.keys(mapping).length} fields`);
    return new Output(output, { confidence });
  },
);
