// {{name}}: a Weir step. Counts the words of `text` and shouts it back.
import { step, InvalidInput, config, log } from "weir-step";

export const { describe, run } = step(
  { name: "{{name}}", version: "0.1.0", description: "Counts the words of a text and shouts it back" },
  (ctx, input) => {
    const text = String(input?.text ?? "").trim();
    if (text === "") throw new InvalidInput("the text is empty");
    const suffix = config.get("suffix", "!");
    log.info(`attempt ${ctx.attempt} of step ${ctx.stepId}`);
    return { words: text.split(/\s+/).length, shout: text.toUpperCase() + suffix };
  },
);
