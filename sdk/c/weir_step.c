/*
 * The C SDK: implements the weir:step exports on top of the step's weir_run, and the
 * helpers of weir_step.h on top of the generated bindings (step.h, written by weir build).
 */
#include "weir_step.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "step.h"

extern const weir_meta weir_step_meta;

struct weir_result {
    bool failed;
    char *payload;
    bool has_confidence;
    double confidence;
    char *route;
    weir_error_kind kind;
    char *message;
    bool model_failed;
    weir_step_model_model_error_t model_error;
};

/* ---- strings ---------------------------------------------------------------------------- */

static char *dup_n(const uint8_t *ptr, size_t len) {
    char *s = malloc(len + 1);
    if (!s) abort();
    memcpy(s, ptr, len);
    s[len] = '\0';
    return s;
}

/* Moves malloc'd text into a generated string without copying. */
static void give(step_string_t *dst, char *text) {
    dst->ptr = (uint8_t *)text;
    dst->len = strlen(text);
}

static char *vformat(const char *fmt, va_list args) {
    va_list copy;
    va_copy(copy, args);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0) n = 0;
    char *s = malloc((size_t)n + 1);
    if (!s) abort();
    vsnprintf(s, (size_t)n + 1, fmt, args);
    return s;
}

/* ---- results ---------------------------------------------------------------------------- */

int weir_ok(weir_result *out, char *payload_json) {
    free(out->payload);
    out->payload = payload_json;
    out->failed = false;
    return 0;
}

void weir_set_confidence(weir_result *out, double confidence) {
    if (isnan(confidence)) return;
    out->has_confidence = true;
    out->confidence = confidence < 0 ? 0 : confidence > 1 ? 1 : confidence;
}

void weir_set_route(weir_result *out, const char *route) {
    free(out->route);
    out->route = route ? strdup(route) : NULL;
}

int weir_fail(weir_result *out, weir_error_kind kind, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    free(out->message);
    out->message = vformat(fmt, args);
    va_end(args);
    out->failed = true;
    out->kind = kind;
    return 1;
}

/* ---- exports ---------------------------------------------------------------------------- */

static void opt_string(step_option_string_t *dst, const char *src) {
    dst->is_some = src != NULL;
    if (src) step_string_dup(&dst->val, src);
}

void exports_step_describe(step_step_meta_t *ret) {
    const weir_meta *m = &weir_step_meta;
    step_string_dup(&ret->name, m->name ? m->name : "step");
    step_string_dup(&ret->version, m->version ? m->version : "0.0.0");
    step_string_dup(&ret->description, m->description ? m->description : "");
    opt_string(&ret->input_schema, m->input_schema);
    opt_string(&ret->output_schema, m->output_schema);
    ret->capabilities.ptr = NULL;
    ret->capabilities.len = 0;
    if (m->capabilities && *m->capabilities) {
        size_t count = 1;
        for (const char *c = m->capabilities; *c; c++) count += *c == ',';
        ret->capabilities.ptr = calloc(count, sizeof(step_string_t));
        const char *start = m->capabilities;
        for (size_t i = 0; i < count; i++) {
            const char *end = strchr(start, ',');
            size_t len = end ? (size_t)(end - start) : strlen(start);
            give(&ret->capabilities.ptr[i], dup_n((const uint8_t *)start, len));
            start = end ? end + 1 : start + len;
        }
        ret->capabilities.len = count;
    }
}

static uint8_t error_tag(weir_error_kind kind) {
    switch (kind) {
    case WEIR_INVALID_INPUT: return WEIR_STEP_TYPES_STEP_ERROR_INVALID_INPUT;
    case WEIR_TRANSIENT: return WEIR_STEP_TYPES_STEP_ERROR_TRANSIENT;
    case WEIR_NEEDS_REVIEW: return WEIR_STEP_TYPES_STEP_ERROR_NEEDS_REVIEW;
    default: return WEIR_STEP_TYPES_STEP_ERROR_FATAL;
    }
}

bool exports_step_run(step_step_context_t *ctx, step_string_t *input,
                      step_step_output_t *ret, step_step_error_t *err) {
    char *run_id = dup_n(ctx->run_id.ptr, ctx->run_id.len);
    char *step_id = dup_n(ctx->step_id.ptr, ctx->step_id.len);
    char *text = dup_n(input->ptr, input->len);
    weir_context context = {run_id, step_id, ctx->attempt,
                            ctx->deadline_ms.is_some ? (int64_t)ctx->deadline_ms.val : -1};
    step_step_context_free(ctx);
    step_string_free(input);

    weir_result result = {0};
    int status = weir_run(&context, text, &result);
    free(text);
    free(run_id);
    free(step_id);

    if (status != 0 || result.failed) {
        if (result.model_failed) {
            err->tag = WEIR_STEP_TYPES_STEP_ERROR_MODEL_FAILED;
            err->val.model_failed = result.model_error;
        } else {
            err->tag = error_tag(result.failed ? result.kind : WEIR_FATAL);
            give(&err->val.fatal, result.message ? result.message
                                                 : strdup("the step failed without saying why"));
            result.message = NULL;
        }
        free(result.message);
        free(result.payload);
        free(result.route);
        return false;
    }
    give(&ret->payload, result.payload ? result.payload : strdup("null"));
    ret->confidence.is_some = result.has_confidence;
    ret->confidence.val = result.confidence;
    ret->route.is_some = result.route != NULL;
    if (result.route) give(&ret->route.val, result.route);
    return true;
}

/* ---- log, config, state ----------------------------------------------------------------- */

void weir_log(weir_level level, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    char *message = vformat(fmt, args);
    va_end(args);
    static const weir_step_log_level_t levels[] = {
        WEIR_STEP_LOG_LEVEL_TRACE, WEIR_STEP_LOG_LEVEL_DEBUG, WEIR_STEP_LOG_LEVEL_INFO,
        WEIR_STEP_LOG_LEVEL_WARN, WEIR_STEP_LOG_LEVEL_ERROR};
    step_string_t text;
    give(&text, message);
    weir_step_log_log(levels[level <= WEIR_ERROR ? level : WEIR_ERROR], &text);
    free(message);
}

/* An optional string the bindings returned, as malloc'd C text; NULL when absent. */
static char *take_optional(bool present, step_string_t *value) {
    if (!present) return NULL;
    char *text = dup_n(value->ptr, value->len);
    step_string_free(value);
    return text;
}

char *weir_config_get(const char *key) {
    step_string_t k, value;
    step_string_set(&k, key);
    return take_optional(weir_step_config_get(&k, &value), &value);
}

char *weir_config_string(const char *key) {
    char *json = weir_config_get(key);
    if (!json) return NULL;
    char *value = weir_json_as_string(json);
    free(json);
    return value;
}

double weir_config_number(const char *key, double fallback) {
    char *json = weir_config_get(key);
    if (!json) return fallback;
    char *end = NULL;
    double value = strtod(json, &end);
    bool whole = end && end != json && *end == '\0';
    free(json);
    return whole ? value : fallback;
}

char *weir_state_get(const char *key) {
    step_string_t k, value;
    step_string_set(&k, key);
    return take_optional(weir_step_state_get(&k, &value), &value);
}

int weir_state_set(const char *key, const char *json) {
    step_string_t k, v, err;
    step_string_set(&k, key);
    step_string_set(&v, json);
    if (weir_step_state_set(&k, &v, &err)) return 0;
    weir_log(WEIR_WARN, "state key %s not set: %.*s", key, (int)err.len, (const char *)err.ptr);
    step_string_free(&err);
    return -1;
}

void weir_state_delete(const char *key) {
    step_string_t k;
    step_string_set(&k, key);
    weir_step_state_delete(&k);
}

/* ---- model ------------------------------------------------------------------------------ */

static const char *model_kinds[] = {"denied", "not_configured", "unavailable", "rate_limited",
                                    "budget_exceeded", "deadline_exceeded", "rejected"};

int weir_model_complete(const char *alias, const char *system, const char *user,
                        uint32_t max_tokens, bool json, char **content, weir_model_error *error) {
    weir_step_model_message_t messages[2];
    size_t count = 0;
    if (system) {
        step_string_set(&messages[count].role, "system");
        step_string_set(&messages[count].content, system);
        count++;
    }
    if (user) {
        step_string_set(&messages[count].role, "user");
        step_string_set(&messages[count].content, user);
        count++;
    }
    weir_step_model_request_t request = {0};
    step_string_set(&request.alias, alias);
    request.messages.ptr = messages;
    request.messages.len = count;
    request.max_tokens.is_some = max_tokens > 0;
    request.max_tokens.val = max_tokens;
    request.json = json;

    weir_step_model_response_t response;
    weir_step_model_model_error_t failure;
    *content = NULL;
    if (weir_step_model_complete(&request, &response, &failure)) {
        *content = dup_n(response.content.ptr, response.content.len);
        weir_step_model_response_free(&response);
        return 0;
    }
    if (error) {
        memset(error, 0, sizeof *error);
        error->tag = failure.tag;
        const char *kind = failure.tag < sizeof model_kinds / sizeof *model_kinds
                               ? model_kinds[failure.tag] : "rejected";
        snprintf(error->kind, sizeof error->kind, "%s", kind);
        /* Every case of the variant carries a string, at the same place. */
        snprintf(error->message, sizeof error->message, "%.*s", (int)failure.val.denied.len,
                 (const char *)failure.val.denied.ptr);
    }
    weir_step_model_model_error_free(&failure);
    return -1;
}

int weir_fail_model(weir_result *out, const weir_model_error *error) {
    weir_fail(out, WEIR_FATAL, "model %s: %s", error->kind, error->message);
    out->model_failed = true;
    out->model_error.tag = (uint8_t)error->tag;
    step_string_dup(&out->model_error.val.denied, error->message);
    return 1;
}

/* ---- JSON ------------------------------------------------------------------------------- */

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static void put_utf8(weir_buf *buf, uint32_t cp) {
    char out[5] = {0};
    if (cp < 0x80) {
        out[0] = (char)cp;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
    }
    weir_buf_puts(buf, out);
}

static int hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* Decodes the JSON string at *p (which points at its opening quote); NULL when malformed.
 * On success *p points past the closing quote. With `decode` false it only skips. */
static char *read_string(const char **p, bool decode) {
    const char *s = *p + 1;
    weir_buf buf = {0};
    while (*s && *s != '"') {
        if ((unsigned char)*s < 0x20) goto bad;
        if (*s != '\\') {
            if (decode) {
                char one[2] = {*s, 0};
                weir_buf_puts(&buf, one);
            }
            s++;
            continue;
        }
        s++;
        uint32_t cp;
        switch (*s) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (hex4(s + 1, &cp)) goto bad;
            s += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && s[1] == '\\' && s[2] == 'u') {
                uint32_t low;
                if (hex4(s + 3, &low) == 0 && low >= 0xDC00 && low < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    s += 6;
                }
            }
            break;
        default: goto bad;
        }
        if (decode) put_utf8(&buf, cp);
        s++;
    }
    if (*s != '"') goto bad;
    *p = s + 1;
    if (!decode) return NULL;
    return buf.data ? weir_buf_take(&buf) : strdup("");
bad:
    free(buf.data);
    *p = NULL;
    return NULL;
}

/* Skips one JSON value at p; NULL when malformed. */
static const char *skip_value(const char *p) {
    p = skip_ws(p);
    if (*p == '"') {
        read_string(&p, false);
        return p;
    }
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p) {
            if (*p == '"') {
                read_string(&p, false);
                if (!p) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            if (*p == '}' || *p == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return NULL;
    }
    while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\t' &&
           *p != '\r')
        p++;
    return p;
}

char *weir_json_as_string(const char *json) {
    const char *p = skip_ws(json);
    if (*p != '"') return NULL;
    char *value = read_string(&p, true);
    if (!p || *skip_ws(p) != '\0') {
        free(value);
        return NULL;
    }
    return value;
}

char *weir_json_get_string(const char *json, const char *key) {
    const char *p = skip_ws(json);
    if (*p != '{') return NULL;
    p = skip_ws(p + 1);
    while (p && *p == '"') {
        char *name = read_string(&p, true);
        if (!p) return NULL;
        p = skip_ws(p);
        if (*p != ':') {
            free(name);
            return NULL;
        }
        p = skip_ws(p + 1);
        bool match = strcmp(name, key) == 0;
        free(name);
        if (match) {
            if (*p != '"') return NULL;
            return read_string(&p, true);
        }
        p = skip_value(p);
        if (!p) return NULL;
        p = skip_ws(p);
        if (*p == ',') p = skip_ws(p + 1);
    }
    return NULL;
}

/* ---- buffers ---------------------------------------------------------------------------- */

static void reserve(weir_buf *buf, size_t extra) {
    if (buf->len + extra + 1 <= buf->cap) return;
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < buf->len + extra + 1) cap *= 2;
    char *data = realloc(buf->data, cap);
    if (!data) abort();
    buf->data = data;
    buf->cap = cap;
}

void weir_buf_puts(weir_buf *buf, const char *text) {
    size_t n = strlen(text);
    reserve(buf, n);
    memcpy(buf->data + buf->len, text, n + 1);
    buf->len += n;
}

void weir_buf_printf(weir_buf *buf, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    char *text = vformat(fmt, args);
    va_end(args);
    weir_buf_puts(buf, text);
    free(text);
}

void weir_buf_json_string(weir_buf *buf, const char *text) {
    weir_buf_puts(buf, "\"");
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        switch (*c) {
        case '"': weir_buf_puts(buf, "\\\""); break;
        case '\\': weir_buf_puts(buf, "\\\\"); break;
        case '\n': weir_buf_puts(buf, "\\n"); break;
        case '\r': weir_buf_puts(buf, "\\r"); break;
        case '\t': weir_buf_puts(buf, "\\t"); break;
        default:
            if (*c < 0x20) {
                weir_buf_printf(buf, "\\u%04x", *c);
            } else {
                char one[2] = {(char)*c, 0};
                weir_buf_puts(buf, one);
            }
        }
    }
    weir_buf_puts(buf, "\"");
}

char *weir_buf_take(weir_buf *buf) {
    char *data = buf->data ? buf->data : strdup("");
    buf->data = NULL;
    buf->len = buf->cap = 0;
    return data;
}
