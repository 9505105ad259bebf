/* test_cli.c - the command line as users meet it: --version, --help of every
 * subcommand (exit 0, every option listed, 80 columns), unknown options
 * (exit 2 naming them), the man page made from the help texts (clean under
 * groff when it is installed), and the generated documentation kept in step:
 * README.md's configuration table and openapi.yaml's version.
 *
 * Runs $BUILD/emotiond (default build/emotiond) from the repository root. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_help.h"
#include "config.h"
#include "version.h"

static char exe[512];
static char out_path[64], err_path[64];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = (len + 4096 + 1) * 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n < 4096) break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* Runs `emotiond ARGS`; returns the exit status, *out and *err the output. */
static int run(const char *args, char **out, char **err)
{
    char cmd[1024];
    snprintf(out_path, sizeof out_path, "/tmp/emotiond-cli-out-XXXXXX");
    snprintf(err_path, sizeof err_path, "/tmp/emotiond-cli-err-XXXXXX");
    int fo = mkstemp(out_path), fe = mkstemp(err_path);
    ck_assert(fo >= 0 && fe >= 0);
    close(fo);
    close(fe);
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", exe, args, out_path, err_path);
    int st = system(cmd);
    ck_assert_msg(st != -1 && WIFEXITED(st), "%s did not exit normally", cmd);
    *out = slurp(out_path);
    *err = slurp(err_path);
    unlink(out_path);
    unlink(err_path);
    ck_assert(*out && *err);
    return WEXITSTATUS(st);
}

/* flag is listed as an option line of the help text ("  --flag ..."). */
static int lists_option(const char *help, const char *flag)
{
    size_t n = strlen(flag);
    for (const char *p = strstr(help, flag); p; p = strstr(p + 1, flag)) {
        int starts = (p - help >= 3 && !strncmp(p - 3, "\n  ", 3)) ||
                     (p - help >= 2 && !strncmp(p - 2, ", ", 2));
        if (starts && (p[n] == ' ' || p[n] == '\n' || p[n] == ',')) return 1;
    }
    return 0;
}

static void check_width(const char *text, const char *what)
{
    int line = 1;
    for (const char *p = text; *p; line++) {
        size_t n = strcspn(p, "\n");
        ck_assert_msg(n <= HELP_WIDTH, "%s: line %d is %zu columns wide", what, line, n);
        p += n + (p[n] == '\n');
    }
}

static const char *const train_opts[] = {
    "--arch", "--data", "--out", "--resume", "--init", "--epochs", "--batch", "--lr",
    "--optimizer", "--momentum", "--nesterov", "--weight-decay", "--label-smoothing",
    "--schedule", "--step-every", "--step-gamma", "--plateau-patience", "--plateau-factor",
    "--warmup-epochs", "--min-lr", "--flip", "--shift", "--rotate", "--scale", "--erase",
    "--patience", "--seed", "--threads", "--max-train", "--tta-val", "--snapshots", "--help", NULL};
static const char *const eval_opts[] = {"--model", "--data", "--usage", "--tta", "--json",
                                        "--threads", "--precision", "--help", NULL};
static const char *const predict_opts[] = {"--model", "--faces", "--cascade", "--max-faces",
                                           "--tta", "--precision", "--help", NULL};
static const char *const card_opts[] = {"--model", "--data", "--run", "--out", "--earlier",
                                        "--help", NULL};
static const char *const swa_opts[] = {"--data", "--out", "--bn-images", "--batch", "--help", NULL};
static const char *const only_help[] = {"--help", NULL};
static const char *const serve_extra[] = {"--config", "--print-config", "--print-config-table",
                                          "--help", NULL};

static const struct {
    const char *name;
    const char *const *opts;
} cmds[] = {
    {"serve", serve_extra},     {"train", train_opts}, {"eval", eval_opts},
    {"predict", predict_opts},  {"card", card_opts},   {"swa", swa_opts},
    {"convert-cascade", only_help},
    {"version", NULL},          {"help", NULL},
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

START_TEST(test_help_of_each_command)
{
    const char *name = cmds[_i].name;
    char args[128], want[128];
    char *out, *err;
    snprintf(args, sizeof args, "%s --help", name);
    ck_assert_msg(run(args, &out, &err) == 0, "emotiond %s --help: exit status", name);
    snprintf(want, sizeof want, "usage: emotiond %s", name);
    ck_assert_msg(!strncmp(out, want, strlen(want)), "emotiond %s --help begins:\n%.200s", name,
                  out);
    ck_assert_str_eq(err, "");
    check_width(out, args);
    for (const char *const *o = cmds[_i].opts; o && *o; o++)
        ck_assert_msg(lists_option(out, *o), "emotiond %s --help does not list %s:\n%s", name,
                      *o, out);
    /* `emotiond help NAME` prints the same text */
    char *out2, *err2;
    snprintf(args, sizeof args, "help %s", name);
    ck_assert_int_eq(run(args, &out2, &err2), 0);
    ck_assert_str_eq(out2, out);
    free(out);
    free(err);
    free(out2);
    free(err2);
}
END_TEST

/* Every setting of the configuration table is a flag of serve --help. */
START_TEST(test_serve_help_lists_every_setting)
{
    svc_config c;
    cfg_defaults(&c);
    char *json = cfg_to_json(&c);
    json_t *o = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(o);
    char *out, *err;
    ck_assert_int_eq(run("serve --help", &out, &err), 0);
    const char *key;
    json_t *v;
    int n = 0;
    json_object_foreach(o, key, v) {
        char flag[96];
        snprintf(flag, sizeof flag, "--%s", key);
        for (char *p = flag; *p; p++)
            if (*p == '_') *p = '-';
        ck_assert_msg(lists_option(out, flag), "serve --help does not list %s", flag);
        n++;
    }
    ck_assert_int_gt(n, 30);
    json_decref(o);
    free(json);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_unknown_option_of_each_command)
{
    const char *name = cmds[_i].name;
    char args[128];
    char *out, *err;
    snprintf(args, sizeof args, "%s --no-such-option", name);
    int rc = run(args, &out, &err);
    ck_assert_msg(rc == 2, "emotiond %s: exit status %d, not 2", args, rc);
    ck_assert_msg(strstr(err, "--no-such-option") != NULL, "emotiond %s: message '%s'", args,
                  err);
    ck_assert_str_eq(out, "");
    free(out);
    free(err);
}
END_TEST

START_TEST(test_no_or_unknown_command)
{
    char *out, *err;
    ck_assert_int_eq(run("", &out, &err), 2);
    ck_assert_ptr_nonnull(strstr(err, "usage: emotiond"));
    free(out);
    free(err);
    ck_assert_int_eq(run("frobnicate", &out, &err), 2);
    ck_assert_ptr_nonnull(strstr(err, "unknown command 'frobnicate'"));
    free(out);
    free(err);
    ck_assert_int_eq(run("--help", &out, &err), 0);
    for (size_t i = 0; i < NCMDS; i++) ck_assert(lists_option(out, cmds[i].name));
    free(out);
    free(err);
}
END_TEST

START_TEST(test_version)
{
    char *out, *err, *out2, *err2;
    ck_assert_int_eq(run("--version", &out, &err), 0);
    ck_assert_int_eq(run("version", &out2, &err2), 0);
    ck_assert_str_eq(out, out2);
    char want[64];
    snprintf(want, sizeof want, "emotiond %s", EMOTIOND_VERSION);
    ck_assert_msg(!strncmp(out, want, strlen(want)), "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "model file format "));
    /* "(git DESCRIBE)" when built in a checkout (not compared with this test's
     * own build: a commit between the two links would change it) */
    const char *nl = strchr(out, '\n');
    ck_assert_ptr_nonnull(nl);
    if (strstr(out, " (git ") && strstr(out, " (git ") < nl) ck_assert_int_eq(nl[-1], ')');
    free(out);
    free(err);
    free(out2);
    free(err2);
}
END_TEST

/* openapi.yaml's info.version is the program's. */
START_TEST(test_openapi_version)
{
    char *spec = slurp("openapi.yaml");
    ck_assert_ptr_nonnull(spec);
    const char *info = strstr(spec, "\ninfo:\n");
    ck_assert_ptr_nonnull(info);
    const char *v = strstr(info, "\n  version: ");
    ck_assert_ptr_nonnull(v);
    v += strlen("\n  version: ");
    size_t n = strcspn(v, "\n");
    char got[64];
    snprintf(got, sizeof got, "%.*s", (int)n, v);
    ck_assert_msg(!strcmp(got, EMOTIOND_VERSION) || !strcmp(got, "'" EMOTIOND_VERSION "'"),
                  "openapi.yaml info.version %s, service/version.h %s", got, EMOTIOND_VERSION);
    free(spec);
}
END_TEST

START_TEST(test_man_page)
{
    char *out, *err;
    ck_assert_int_eq(run("help --man", &out, &err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_ptr_nonnull(strstr(out, "\n.TH EMOTIOND 1 "));
    ck_assert_ptr_nonnull(strstr(out, "\n.SH SYNOPSIS\n"));
    for (size_t i = 0; i < NCMDS; i++) {
        char want[64], name[32];
        size_t k = 0;
        for (const char *p = cmds[i].name; *p && k + 2 < sizeof name; p++) {
            if (*p == '-') name[k++] = '\\';
            name[k++] = *p;
        }
        name[k] = '\0';
        snprintf(want, sizeof want, "\n.SS emotiond %s\n", name);
        ck_assert_msg(strstr(out, want) != NULL, "the man page lacks '%s'", want + 1);
    }
    ck_assert_ptr_nonnull(strstr(out, "\\fB\\-\\-max\\-body\\-bytes N\\fR\n"));
    /* groff (Debian groff-base) must render it without a warning */
    if (system("command -v groff >/dev/null 2>&1") == 0) {
        char path[64] = "/tmp/emotiond-man-XXXXXX", cmd[256];
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, out, strlen(out)), (int)strlen(out));
        close(fd);
        snprintf(cmd, sizeof cmd, "groff -man -Tutf8 -ww -z %s 2>&1", path);
        FILE *p = popen(cmd, "r");
        char warn[512] = "";
        size_t n = fread(warn, 1, sizeof warn - 1, p);
        warn[n] = '\0';
        ck_assert_int_eq(pclose(p), 0);
        unlink(path);
        ck_assert_msg(n == 0, "groff warns about the man page: %s", warn);
    } else {
        printf("test_man_page: groff not installed, man page not rendered "
               "(apt-get install groff-base)\n");
    }
    free(out);
    free(err);
}
END_TEST

START_TEST(test_help_to_man)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    help_to_man(f, "x-y",
                "usage: emotiond x-y --a N\n"
                "       emotiond x-y --b\n"
                "\n"
                ".dot at the start and a back\\slash.\n"
                "Options:\n"
                "  --a N         the a option, which\n"
                "                wraps\n"
                "  -h, --help    help\n"
                "\n"
                "  emotiond x-y --a 1 | verbatim\n");
    fclose(f);
    ck_assert_msg(strstr(buf, ".SS emotiond x\\-y\n.nf\nemotiond x\\-y \\-\\-a N\n"
                              "emotiond x\\-y \\-\\-b\n.fi\n") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "\n\\&.dot at the start and a back\\eslash.\n") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, ".TP\n\\fB\\-\\-a N\\fR\nthe a option, which\nwraps\n") != NULL,
                  "%s", buf);
    ck_assert_msg(strstr(buf, ".TP\n\\fB\\-h, \\-\\-help\\fR\nhelp\n") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, ".nf\n  emotiond x\\-y \\-\\-a 1 | verbatim\n.fi\n") != NULL, "%s",
                  buf);
    free(buf);
}
END_TEST

/* README.md's table between the config-table markers is exactly what
 * `emotiond serve --print-config-table` prints (`make readme` rewrites it). */
START_TEST(test_readme_config_table)
{
    char *table = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&table, &len);
    cfg_print_table(f);
    fclose(f);
    char *readme = slurp("README.md");
    ck_assert_ptr_nonnull(readme);
    static const char begin[] = "<!-- config-table:begin -->\n", end[] = "<!-- config-table:end -->";
    char *b = strstr(readme, begin), *e = b ? strstr(b, end) : NULL;
    ck_assert_msg(b && e, "README.md lacks the config-table markers");
    b += strlen(begin);
    *e = '\0';
    ck_assert_msg(!strcmp(b, table),
                  "README.md's configuration table differs from `emotiond serve "
                  "--print-config-table`: run `make readme`");
    free(readme);
    free(table);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_help_of_each_command, 0, NCMDS);
    tcase_add_test(tc, test_serve_help_lists_every_setting);
    tcase_add_loop_test(tc, test_unknown_option_of_each_command, 0, NCMDS);
    tcase_add_test(tc, test_no_or_unknown_command);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_openapi_version);
    tcase_add_test(tc, test_man_page);
    tcase_add_test(tc, test_help_to_man);
    tcase_add_test(tc, test_readme_config_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    const char *build = getenv("BUILD");
    snprintf(exe, sizeof exe, "%s/emotiond", build && *build ? build : "build");
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
