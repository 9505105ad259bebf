/* cmd_serve.c - `emotiond serve`: configuration, signals, and the service's
 * life cycle around app.c.
 *
 * Signals are blocked in every thread (the mask is set before any thread is
 * created) and taken synchronously by the main thread with sigwaitinfo, so no
 * asynchronous handler and no global flag is needed.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "commands.h"
#include "config.h"
#include "request_log.h"

extern char **environ;

void cmd_serve_usage(FILE *f)
{
    cfg_print_help(f);
}

int cmd_serve(int argc, char **argv)
{
    svc_config cfg;
    cfg_extra extra;
    char err[1024];
    /* Help and the table describe the built-in settings: answered even when
     * the environment holds a bad EMOTIOND_* value. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cfg_print_help(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--print-config-table")) {
            cfg_print_table(stdout);
            return 0;
        }
    }
    if (cfg_load(&cfg, argc, argv, environ, &extra, err, sizeof err)) {
        fprintf(stderr, "emotiond serve: %s (see emotiond serve --help)\n", err);
        return 2;
    }
    if (extra.print_config) {
        char *json = cfg_to_json(&cfg);
        if (!json) {
            const char *key = cfg_non_utf8_key(&cfg);
            if (key)
                fprintf(stderr, "emotiond serve: --print-config: the setting %s is not valid "
                                "UTF-8, which a JSON config file cannot hold; it is accepted "
                                "for serving, but give it as UTF-8 text to print it\n", key);
            else
                fprintf(stderr, "emotiond serve: --print-config: out of memory\n");
            return 1;
        }
        printf("%s\n", json);
        free(json);
        return 0;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL)) {
        fprintf(stderr, "emotiond serve: cannot block signals\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* a client hanging up must not kill the server */

    app *a = NULL;
    if (app_start(&cfg, stderr, &a, err, sizeof err)) {
        rlog_event(stderr, cfg.log_format, "error", "cannot start: %s", err);
        return 1;
    }
    rlog_event(stderr, cfg.log_format, "info", "ready on port %d (pid %ld)", app_port(a),
               (long)getpid());
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&set, &si);
        if (sig < 0) continue; /* EINTR */
        if (sig == SIGHUP) {
            app_reload(a, NULL, 0);
            continue;
        }
        rlog_event(stderr, cfg.log_format, "info", "received %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
    }
    int rc = app_shutdown(a);
    app_free(a);
    (void)rc; /* a cut-off drain is logged; the exit is still an orderly one */
    return 0;
}
