/* {{name}}: a Weir step. Counts the words of "text" and shouts it back. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "weir_step.h"

WEIR_STEP("{{name}}", "0.1.0", "Counts the words of a text and shouts it back", NULL);

int weir_run(const weir_context *ctx, const char *input, weir_result *out) {
    char *text = weir_json_get_string(input, "text");
    if (!text) return weir_fail(out, WEIR_INVALID_INPUT, "expected an object with a string \"text\"");
    size_t words = 0;
    int in_word = 0;
    for (char *c = text; *c; c++) {
        if (isspace((unsigned char)*c)) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            words++;
        }
    }
    if (words == 0) {
        free(text);
        return weir_fail(out, WEIR_INVALID_INPUT, "the text is empty");
    }
    /* Trim, then upper-case. */
    char *start = text;
    while (isspace((unsigned char)*start)) start++;
    size_t len = strlen(start);
    while (len && isspace((unsigned char)start[len - 1])) start[--len] = '\0';
    for (char *c = start; *c; c++) *c = (char)toupper((unsigned char)*c);

    char *suffix = weir_config_string("suffix");
    weir_buf shout = {0};
    weir_buf_puts(&shout, start);
    weir_buf_puts(&shout, suffix ? suffix : "!");
    free(suffix);
    char *shouted = weir_buf_take(&shout);

    weir_buf json = {0};
    weir_buf_printf(&json, "{\"words\":%zu,\"shout\":", words);
    weir_buf_json_string(&json, shouted);
    weir_buf_puts(&json, "}");
    free(shouted);
    free(text);
    weir_info("attempt %u of step %s", ctx->attempt, ctx->step_id);
    return weir_ok(out, weir_buf_take(&json));
}
