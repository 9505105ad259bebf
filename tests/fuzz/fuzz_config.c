/* fuzz_config.c - the settings parser of `emotiond serve`.
 *
 * The whole input is a config file (cfg_apply_json, the code behind --config
 * and EMOTIOND_CONFIG). Its lines are also tried as EMOTIOND_* environment
 * entries (cfg_apply_env) and as command-line arguments (cfg_apply_args).
 * Invariant: whatever a file sets, --print-config (cfg_to_json) prints a file
 * that loads again and prints the same (README: its output is a valid config).
 *
 * Known and left to the owner of config.c (reported in issue 7): a string
 * setting that is not valid UTF-8 (possible from the environment or a flag)
 * is accepted, but then cfg_to_json returns NULL and `--print-config` exits 1
 * without a message. The harness accepts exactly that case and nothing else
 * (tests/corpus/fuzz_config/finding-non-utf8-host.txt). */
#include <jansson.h>
#include <string.h>

#include "config.h"
#include "fuzz_common.h"

#define MAX_LINES 64

static int utf8(const char *s)
{
    json_t *j = json_string(s); /* NULL for invalid UTF-8 */
    json_decref(j);
    return j != NULL;
}

/* Every string cfg_to_json prints is valid UTF-8. */
static int printable(const svc_config *c)
{
    const char *strs[] = {c->host, c->model, c->model_dir, c->data_dir, c->arch_dir,
                          c->admin_token_file, c->admin_host, c->face_cascade};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (!utf8(strs[i])) return 0;
    for (int i = 0; i < c->cors_count; i++)
        if (!utf8(c->cors_origins[i])) return 0;
    return 1;
}

static void round_trip(const svc_config *c)
{
    char err[512];
    char *j = cfg_to_json(c);
    if (!j) {
        FUZZ_CHECK(!printable(c)); /* the known case above, and only it */
        return;
    }
    svc_config c2;
    cfg_defaults(&c2);
    if (cfg_apply_json(&c2, j, "print-config", err, sizeof err) != 0) {
        fprintf(stderr, "--print-config output does not load: %s\n%s\n", err, j);
        FUZZ_CHECK(!"print-config round trip");
    }
    char *j2 = cfg_to_json(&c2);
    FUZZ_CHECK(j2 != NULL && strcmp(j, j2) == 0);
    free(j2);
    free(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) return 0;
    char err[512];
    char *s = fuzz_strndup(data, size);
    svc_config c;
    cfg_defaults(&c);
    err[0] = '\0';
    if (cfg_apply_json(&c, s, "fuzz.json", err, sizeof err) == 0) round_trip(&c);
    else FUZZ_CHECK(err[0] != '\0');

    /* lines as environment entries and as argv */
    char *lines[MAX_LINES + 2], *env[MAX_LINES + 1];
    int n = 0;
    lines[n++] = "emotiond";
    for (char *p = s, *save = NULL, *tok; n <= MAX_LINES && (tok = strtok_r(p, "\n", &save));
         p = NULL)
        lines[n++] = tok;
    lines[n] = NULL;
    int ne = 0;
    for (int i = 1; i < n; i++) {
        size_t len = strlen(lines[i]);
        env[ne] = malloc(len + 10);
        FUZZ_CHECK(env[ne] != NULL);
        memcpy(env[ne], "EMOTIOND_", 9);
        memcpy(env[ne] + 9, lines[i], len + 1);
        ne++;
    }
    env[ne] = NULL;
    cfg_defaults(&c);
    if (cfg_apply_env(&c, env, err, sizeof err) == 0) round_trip(&c);
    cfg_defaults(&c);
    cfg_extra extra;
    memset(&extra, 0, sizeof extra);
    if (cfg_apply_args(&c, n, lines, &extra, err, sizeof err) == 0) round_trip(&c);
    for (int i = 0; i < ne; i++) free(env[i]);
    free(s);
    return 0;
}
