"""{{name}}: a Weir step. Counts the words of ``text`` and shouts it back."""

from weir_step import InvalidInput, config, log, step


@step(name="{{name}}", version="0.1.0", description="Counts the words of a text and shouts it back")
def run(ctx, value):
    text = str(value.get("text", "")).strip()
    if not text:
        raise InvalidInput("the text is empty")
    suffix = config.get("suffix", "!")
    log.info(f"attempt {ctx.attempt} of step {ctx.step_id}")
    return {"words": len(text.split()), "shout": text.upper() + suffix}
