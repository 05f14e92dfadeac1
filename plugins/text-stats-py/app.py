"""Text statistics and a language guess for a ticket or any text, in pure Python.

Input: a JSON string, or an object whose ``body`` (and optional ``subject``) is the text.
Output: counts, average word and sentence length, a Flesch reading-ease score, the most
frequent words and a guessed language with a confidence. When the stop-word vote is unsure
and the ``alias`` config names a model alias, the step asks that model instead.

Config: ``top`` (how many frequent words, default 5), ``alias`` (a model alias to ask when
unsure), ``min_confidence`` (below it the guess counts as unsure, default 0.5).
"""

import re
from collections import Counter

from weir_step import InvalidInput, Output, config, log, model, step

STOPWORDS = {
    "en": "the and is are was to of in that it for on with as this you not be have my i we can".split(),
    "fr": "le la les et est sont de des du un une que qui pas pour dans sur avec je nous vous ce".split(),
    "de": "der die das und ist sind nicht ein eine zu mit von den dem ich wir sie auf für es".split(),
    "es": "el la los las y es son de del un una que no para en con por se lo mi yo".split(),
    "it": "il la le gli e è sono di del un una che non per in con si lo mi io".split(),
    "nl": "de het een en is zijn niet van te dat die in op met voor ik wij mijn".split(),
    "pt": "o a os as e é são de do da um uma que não para em com por se meu eu".split(),
}
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
VOWEL_GROUPS = re.compile(r"[aeiouyàâäéèêëîïôöùûüáíóú]+")

INPUT_SCHEMA = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "required": ["body"],
            "properties": {"subject": {"type": "string"}, "body": {"type": "string"}},
        },
    ]
}


def syllables(word: str) -> int:
    return max(1, len(VOWEL_GROUPS.findall(word.lower())))


def guess_language(words: list) -> tuple:
    """The language whose stop words cover the most words, and the share of the vote."""
    votes = Counter()
    for w in words:
        for lang, stop in STOPWORDS.items():
            if w in stop:
                votes[lang] += 1
    total = sum(votes.values())
    if total == 0:
        return "unknown", 0.0
    lang, count = votes.most_common(1)[0]
    return lang, round(count / total, 3)


@step(
    name="text-stats",
    version="1.0.0",
    description="Counts, readability and a language guess for a text",
    input_schema=INPUT_SCHEMA,
    capabilities=("models",),
)
def run(ctx, value):
    if isinstance(value, str):
        text = value
    else:
        text = (value.get("subject", "") + "\n" + value["body"]).strip()
    if not text.strip():
        raise InvalidInput("the text is empty")
    top = config.get("top", 5)
    if not isinstance(top, int) or top < 0:
        raise InvalidInput(f"config `top` must be a non-negative integer, not {top!r}")

    words = [w.lower() for w in WORD.findall(text)]
    sentences = max(1, len(SENTENCE_END.findall(text)))
    syl = sum(syllables(w) for w in words)
    n = max(1, len(words))
    flesch = 206.835 - 1.015 * (len(words) / sentences) - 84.6 * (syl / n)
    language, share = guess_language(words)
    source = "stopwords"

    alias = config.get("alias")
    if share < config.get("min_confidence", 0.5) and alias:
        answer = model.complete(
            alias,
            system="Answer with the ISO 639-1 code of the text's language, nothing else.",
            user=text[:2000],
            max_tokens=5,
        )
        language, share, source = answer.content.strip().lower()[:2], 0.9, f"model:{answer.alias}"

    log.info(f"{len(words)} words, {sentences} sentences, language {language} ({source})")
    content = [w for w in words if not any(w in s for s in STOPWORDS.values())]
    return Output(
        {
            "characters": len(text),
            "words": len(words),
            "sentences": sentences,
            "avg_word_length": round(sum(map(len, words)) / n, 2),
            "reading_ease": round(flesch, 1),
            "top_words": [w for w, _ in Counter(content).most_common(top)],
            "language": language,
            "language_source": source,
        },
        confidence=share,
        route=language,
    )
