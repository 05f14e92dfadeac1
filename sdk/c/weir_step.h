/*
 * Write Weir workflow steps in C.
 *
 * A step names itself with WEIR_STEP and defines one function, weir_run:
 *
 *     #include "weir_step.h"
 *
 *     WEIR_STEP("shout", "1.0.0", "Upper-cases a subject", NULL);
 *
 *     int weir_run(const weir_context *ctx, const char *input, weir_result *out) {
 *         char *subject = weir_json_get_string(input, "subject");
 *         if (!subject) return weir_fail(out, WEIR_INVALID_INPUT, "no subject");
 *         for (char *c = subject; *c; c++) *c = toupper((unsigned char)*c);
 *         weir_buf json = {0};
 *         weir_buf_puts(&json, "{\"subject\":");
 *         weir_buf_json_string(&json, subject);
 *         weir_buf_puts(&json, "}");
 *         free(subject);
 *         weir_info("attempt %u of step %s", ctx->attempt, ctx->step_id);
 *         return weir_ok(out, weir_buf_take(&json));
 *     }
 *
 * `weir build` generates the bindings for the weir:step world, compiles the project with
 * clang for wasm32-wasi and wraps the module as a component. The host runs it under the
 * same limits and grants as a step written in any other language.
 *
 * Strings handed to the step (input, context) are NUL-terminated and owned by the SDK for
 * the length of the call. Strings the SDK returns to the step (weir_config_get, ...) are
 * malloc'd: the step frees them.
 */
#ifndef WEIR_STEP_H
#define WEIR_STEP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a step says about itself (see WEIR_STEP). */
typedef struct {
    const char *name;
    const char *version;
    const char *description;
    /* JSON Schemas as JSON text, or NULL. */
    const char *input_schema;
    const char *output_schema;
    /* Capabilities the step expects to be granted, comma-separated ("models,files"), or NULL. */
    const char *capabilities;
} weir_meta;

/* Names the step: name, version, one line of description, input JSON Schema (or NULL). */
#define WEIR_STEP(name, version, description, input_schema) \
    const weir_meta weir_step_meta = {(name), (version), (description), (input_schema), NULL, NULL}

/* Like WEIR_STEP, with an output schema and the capabilities the step expects. */
#define WEIR_STEP_FULL(name, version, description, input_schema, output_schema, capabilities) \
    const weir_meta weir_step_meta = {(name), (version), (description), (input_schema), \
                                      (output_schema), (capabilities)}

/* Where the current attempt sits. */
typedef struct {
    const char *run_id;
    const char *step_id;
    /* 1 for the first attempt, 2 for the first retry, and so on. */
    uint32_t attempt;
    /* Milliseconds left before the host stops this attempt, or -1 when no deadline is set. */
    int64_t deadline_ms;
} weir_context;

/* How a step fails; the workflow's policies decide what happens next. */
typedef enum {
    /* The input is malformed; retrying will not help. */
    WEIR_INVALID_INPUT,
    /* A passing failure; a retry may succeed. */
    WEIR_TRANSIENT,
    /* A permanent failure; do not retry. */
    WEIR_FATAL,
    /* A human should look at this case. */
    WEIR_NEEDS_REVIEW,
} weir_error_kind;

/* The result being built: set it with weir_ok or weir_fail. */
typedef struct weir_result weir_result;

/* The step itself: return weir_ok(...) or weir_fail(...). */
int weir_run(const weir_context *ctx, const char *input, weir_result *out);

/* Succeeds with `payload_json` (JSON text, malloc'd: the SDK takes and frees it). Returns 0. */
int weir_ok(weir_result *out, char *payload_json);
/* How sure the step is, 0.0 to 1.0 (clamped). Call after weir_ok. */
void weir_set_confidence(weir_result *out, double confidence);
/* A route label selecting the workflow branch taken next. Call after weir_ok. */
void weir_set_route(weir_result *out, const char *route);
/* Fails with `kind` and a printf-style message. Returns 1. */
int weir_fail(weir_result *out, weir_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logging, attributed by the host to the run, step and attempt. */
typedef enum { WEIR_TRACE, WEIR_DEBUG, WEIR_INFO, WEIR_WARN, WEIR_ERROR } weir_level;
void weir_log(weir_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define weir_debug(...) weir_log(WEIR_DEBUG, __VA_ARGS__)
#define weir_info(...) weir_log(WEIR_INFO, __VA_ARGS__)
#define weir_warn(...) weir_log(WEIR_WARN, __VA_ARGS__)
#define weir_error(...) weir_log(WEIR_ERROR, __VA_ARGS__)

/* The config value under `key` as JSON text (malloc'd), or NULL when absent. */
char *weir_config_get(const char *key);
/* The config value under `key` when it is a JSON string, decoded (malloc'd), else NULL. */
char *weir_config_string(const char *key);
/* The config value under `key` when it is a JSON number; `fallback` otherwise. */
double weir_config_number(const char *key, double fallback);

/* Run-scoped durable state, values as JSON text. get returns malloc'd text or NULL. */
char *weir_state_get(const char *key);
/* Returns 0, or -1 past the host's limits (the reason goes to the log). */
int weir_state_set(const char *key, const char *json);
void weir_state_delete(const char *key);

/* A chat completion by model alias. On success returns 0 and sets *content (malloc'd). On
 * failure returns -1, sets *content to NULL and fills `error` (kind and message); a step that
 * cannot do without the model reports it with weir_fail_model. */
typedef struct {
    /* "denied", "not_configured", "unavailable", "rate_limited", "budget_exceeded",
     * "deadline_exceeded" or "rejected". */
    char kind[24];
    char message[256];
    int tag;
} weir_model_error;
int weir_model_complete(const char *alias, const char *system, const char *user,
                        uint32_t max_tokens, bool json, char **content, weir_model_error *error);
/* Fails the step with the typed `model` failure the workflow's fallback rules match. */
int weir_fail_model(weir_result *out, const weir_model_error *error);

/* JSON helpers: the host speaks JSON text. */
/* The top-level string field `key` of the JSON object `json`, decoded (malloc'd), or NULL
 * when `json` is not an object, lacks `key`, or the value is not a string. */
char *weir_json_get_string(const char *json, const char *key);
/* `json` itself decoded, when it is one JSON string (malloc'd), else NULL. */
char *weir_json_as_string(const char *json);

/* A growable text buffer for building output JSON. Zero-initialise it: weir_buf b = {0}. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} weir_buf;
void weir_buf_puts(weir_buf *buf, const char *text);
void weir_buf_printf(weir_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends `text` as a quoted, escaped JSON string. */
void weir_buf_json_string(weir_buf *buf, const char *text);
/* Hands the text over (malloc'd, NUL-terminated) and empties the buffer. */
char *weir_buf_take(weir_buf *buf);

#ifdef __cplusplus
}
#endif

#endif /* WEIR_STEP_H */
