/*
 * fingerprint: tokenizes a text and computes the keys a pipeline dedupes on.
 *
 * Input: a JSON string, or an object with "body" (and optionally "subject").
 * Output: {"tokens", "unique_tokens", "fingerprint", "simhash", "estimated_model_tokens"}:
 *   - fingerprint: FNV-1a (64 bit) of the normalized token stream: equal for texts that
 *     differ only in case, punctuation and spacing;
 *   - simhash: 64-bit SimHash over word 3-shingles: near-duplicate texts differ in few bits;
 *   - estimated_model_tokens: what the text would cost a chat model, at ~4 bytes a token.
 * Config: "stopwords", the path of a file of words (one per line) left out of the simhash;
 * it must be inside a directory the workflow grants.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir_step.h"

WEIR_STEP_FULL("fingerprint", "1.0.0",
               "Token counts, an exact fingerprint and a SimHash of a text, for deduplication",
               "{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"object\",\"required\":[\"body\"],"
               "\"properties\":{\"subject\":{\"type\":\"string\"},\"body\":{\"type\":\"string\"}}}]}",
               NULL, "files");

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv1a(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* An open-addressing set of 64-bit hashes (0 marks an empty slot). */
typedef struct {
    uint64_t *slots;
    size_t cap;
    size_t len;
} hash_set;

static int set_insert(hash_set *set, uint64_t h) {
    if (h == 0) h = 1;
    if ((set->len + 1) * 2 > set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        uint64_t *slots = calloc(cap, sizeof *slots);
        if (!slots) return -1;
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slots[i]) continue;
            size_t j = set->slots[i] & (cap - 1);
            while (slots[j]) j = (j + 1) & (cap - 1);
            slots[j] = set->slots[i];
        }
        free(set->slots);
        set->slots = slots;
        set->cap = cap;
    }
    size_t j = h & (set->cap - 1);
    while (set->slots[j]) {
        if (set->slots[j] == h) return 0;
        j = (j + 1) & (set->cap - 1);
    }
    set->slots[j] = h;
    set->len++;
    return 1;
}

static int set_contains(const hash_set *set, uint64_t h) {
    if (!set->cap) return 0;
    if (h == 0) h = 1;
    size_t j = h & (set->cap - 1);
    while (set->slots[j]) {
        if (set->slots[j] == h) return 1;
        j = (j + 1) & (set->cap - 1);
    }
    return 0;
}

/* Word characters: ASCII letters and digits, and every byte of a UTF-8 sequence. */
static int is_word_byte(unsigned char c) { return isalnum(c) || c >= 0x80; }

static int load_stopwords(const char *path, hash_set *stop, weir_result *out) {
    FILE *f = fopen(path, "r");
    if (!f) {
        return weir_fail(out, WEIR_FATAL, "cannot open the stopwords file %s: %s (is its directory granted?)",
                         path, strerror(errno));
    }
    char line[256];
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");
        for (size_t i = 0; i < n; i++) line[i] = (char)tolower((unsigned char)line[i]);
        if (n) set_insert(stop, fnv1a(FNV_OFFSET, line, n));
    }
    fclose(f);
    return 0;
}

int weir_run(const weir_context *ctx, const char *input, weir_result *out) {
    (void)ctx;
    char *text = weir_json_as_string(input);
    if (!text) {
        char *body = weir_json_get_string(input, "body");
        if (!body) return weir_fail(out, WEIR_INVALID_INPUT, "expected a string or an object with a string \"body\"");
        char *subject = weir_json_get_string(input, "subject");
        weir_buf joined = {0};
        if (subject) {
            weir_buf_puts(&joined, subject);
            weir_buf_puts(&joined, "\n");
            free(subject);
        }
        weir_buf_puts(&joined, body);
        free(body);
        text = weir_buf_take(&joined);
    }

    hash_set stop = {0};
    char *stop_path = weir_config_string("stopwords");
    if (stop_path) {
        int failed = load_stopwords(stop_path, &stop, out);
        free(stop_path);
        if (failed) {
            free(text);
            return failed;
        }
    }

    size_t len = strlen(text);
    for (size_t i = 0; i < len; i++) text[i] = (char)tolower((unsigned char)text[i]);

    hash_set unique = {0};
    uint64_t exact = FNV_OFFSET;
    int votes[64] = {0};
    uint64_t window[3] = {0};
    size_t tokens = 0, kept = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && !is_word_byte((unsigned char)text[i])) i++;
        size_t start = i;
        while (i < len && is_word_byte((unsigned char)text[i])) i++;
        if (i == start) break;
        uint64_t h = fnv1a(FNV_OFFSET, text + start, i - start);
        tokens++;
        set_insert(&unique, h);
        exact = fnv1a(exact, text + start, i - start);
        exact = fnv1a(exact, " ", 1);
        if (set_contains(&stop, h)) continue;
        window[0] = window[1];
        window[1] = window[2];
        window[2] = h;
        kept++;
        /* Shingles of three words once there are three; single words until then. */
        uint64_t shingle = kept >= 3 ? (window[0] * 31 + window[1]) * 31 + window[2] : h;
        shingle ^= shingle >> 33;
        shingle *= 0xff51afd7ed558ccdULL;
        shingle ^= shingle >> 33;
        for (int b = 0; b < 64; b++) votes[b] += (shingle >> b) & 1 ? 1 : -1;
    }
    uint64_t simhash = 0;
    for (int b = 0; b < 64; b++)
        if (votes[b] > 0) simhash |= 1ULL << b;

    weir_buf json = {0};
    weir_buf_printf(&json,
                    "{\"tokens\":%zu,\"unique_tokens\":%zu,\"fingerprint\":\"%016llx\","
                    "\"simhash\":\"%016llx\",\"estimated_model_tokens\":%zu}",
                    tokens, unique.len, (unsigned long long)exact, (unsigned long long)simhash,
                    (len + 3) / 4);
    weir_info("%zu tokens, %zu unique, %zu stopwords skipped", tokens, unique.len, tokens - kept);
    free(unique.slots);
    free(stop.slots);
    free(text);
    return weir_ok(out, weir_buf_take(&json));
}
