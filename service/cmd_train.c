/* cmd_train.c - `emotiond train`: train a model on a FER2013 folder. */
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_help.h"
#include "commands.h"
#include "train.h"

static atomic_int g_stop; /* set by SIGINT/SIGTERM: checkpoint and exit (lock-free: signal-safe) */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* The options: one table for parsing and --help. Numbers not given come
 * from the architecture's "training" block, then the default shown. */
typedef struct {
    const char *name, *metavar;
    size_t off;  /* into nn_train_opts */
    int is_str;  /* const char * field, else double */
    const char *help;
} opt_def;

#define NUM(field) offsetof(nn_train_opts, field), 0
#define STR(field) offsetof(nn_train_opts, field), 1
static const opt_def defs[] = {
    {"--arch", "FILE", STR(arch_path), "architecture JSON (config/arch/*.json) of a new run"},
    {"--data", "DIR", STR(data_dir), "dataset: DIR/train/<class>/, DIR/test/<class>/ (required)"},
    {"--out", "DIR", 0, 1, "output directory [runs/NAME; with --resume, the checkpoint's]"},
    {"--resume", "CKPT", STR(resume),
     "continue OUT/checkpoint.emod; options given again override the checkpoint's"},
    {"--init", "MODEL", STR(init_model), "start from these weights (fine-tuning)"},
    {"--epochs", "N", NUM(epochs), "epochs [30]"},
    {"--batch", "N", NUM(batch), "batch size [64]"},
    {"--lr", "X", NUM(lr), "learning rate [0.01]"},
    {"--optimizer", "sgd|adam", STR(optimizer), "optimizer [sgd]"},
    {"--momentum", "X", NUM(momentum), "SGD momentum [0.9]"},
    {"--nesterov", "0|1", NUM(nesterov), "Nesterov momentum [1]"},
    {"--weight-decay", "X", NUM(weight_decay), "L2 weight decay [0]"},
    {"--label-smoothing", "X", NUM(label_smoothing), "label smoothing [0]"},
    {"--schedule", "none|step|cosine|plateau|cyclic", STR(schedule), "learning rate schedule [cosine]; cyclic: from lr down to min-lr within every epoch (for emotiond swa)"},
    {"--step-every", "N", NUM(step_every), "step schedule: every N epochs [10]"},
    {"--step-gamma", "X", NUM(step_gamma), "step schedule: multiply the rate by X [0.1]"},
    {"--plateau-patience", "N", NUM(plateau_patience),
     "plateau schedule: epochs without a better validation accuracy [5]"},
    {"--plateau-factor", "X", NUM(plateau_factor), "plateau schedule: multiply the rate by X [0.5]"},
    {"--warmup-epochs", "X", NUM(warmup_epochs), "linear warm-up of the rate [0]"},
    {"--min-lr", "X", NUM(min_lr), "floor of the rate [0]"},
    {"--flip", "0|1", NUM(flip), "augmentation: random horizontal flips [1]"},
    {"--shift", "PX", NUM(shift), "augmentation: random shift up to PX pixels [0]"},
    {"--rotate", "DEG", NUM(rotate), "augmentation: random rotation up to DEG degrees [0]"},
    {"--scale", "X", NUM(scale), "augmentation: random zoom by up to X (0.1 = 10%) [0]"},
    {"--erase", "P", NUM(erase), "augmentation: random erasing with probability P [0]"},
    {"--patience", "N", NUM(patience),
     "early stopping after N epochs without improvement (0 = off) [0]"},
    {"--seed", "N", NUM(seed), "random seed [1]"},
    {"--threads", "N", NUM(threads), "threads [number of cores]"},
    {"--max-train", "N", NUM(max_train), "use only the first N training images (0 = all) [0]"},
};
#undef NUM
#undef STR
#define NDEFS (sizeof defs / sizeof defs[0])

void cmd_train_usage(FILE *f)
{
    fprintf(f, "usage: emotiond train --arch config/arch/NAME.json --data DIR [options]\n"
               "       emotiond train --resume OUT/checkpoint.emod --data DIR [--epochs N]\n"
               "       emotiond train --init MODEL --data DIR [options]\n\n");
    help_paragraph(f, "Trains on DIR/train/<class>/ and validates on DIR/test/<class>/ (Kaggle "
                      "FER2013 layout). Writes OUT/best.emod (best validation accuracy), "
                      "OUT/checkpoint.emod (every epoch, and on Ctrl-C), OUT/history.csv and "
                      "OUT/curves.svg. Options not given come from the architecture's "
                      "\"training\" block, then the default shown in brackets.");
    fputs("\nOptions:\n", f);
    for (size_t i = 0; i < NDEFS; i++) {
        char flag[96];
        snprintf(flag, sizeof flag, "%s %s", defs[i].name, defs[i].metavar);
        help_option(f, flag, defs[i].help);
    }
    help_option(f, "--tta-val", "validate with flip averaging");
    help_option(f, "--snapshots", "also save each epoch's weights as OUT/epoch-NNN.emod (for emotiond swa)");
    help_option(f, "-h, --help", "print this help and exit");
}

static void print_progress(void *ctx, const nn_train_progress *p)
{
    int tty = *(int *)ctx;
    if (p->end_of_epoch) {
        if (tty) fprintf(stderr, "\r\033[K");
        fprintf(stderr, "epoch %d/%d  loss %.4f  acc %.4f  val_acc %.4f  best %.4f (epoch %d)  lr %.3g  %.0fs\n",
                p->epoch, p->epochs, p->loss, p->acc, p->val_acc, p->best_val_acc, p->best_epoch,
                p->lr, p->epoch_s);
        return;
    }
    if (tty) {
        int width = 30, done = (int)((double)p->step / p->steps * width);
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < done ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\repoch %d/%d [%s] %d/%d  loss %.4f acc %.4f  %.0f img/s  ETA %.0fm ",
                p->epoch, p->epochs, bar, p->step, p->steps, p->loss, p->acc, p->images_per_s,
                p->eta_s / 60);
    } else if (p->step % 100 == 0) {
        fprintf(stderr, "epoch %d/%d step %d/%d loss %.4f acc %.4f %.0f img/s ETA %.0fm\n",
                p->epoch, p->epochs, p->step, p->steps, p->loss, p->acc, p->images_per_s,
                p->eta_s / 60);
    }
}

int cmd_train(int argc, char **argv)
{
    nn_train_opts o;
    nn_train_opts_init(&o);
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { cmd_train_usage(stdout); return 0; }
        if (!strcmp(argv[i], "--tta-val")) { o.tta_flip_val = 1; continue; }
        if (!strcmp(argv[i], "--snapshots")) { o.snapshots = 1; continue; }
        const opt_def *d = NULL;
        for (size_t k = 0; k < NDEFS; k++)
            if (!strcmp(argv[i], defs[k].name)) d = &defs[k];
        if (!d) {
            fprintf(stderr, "emotiond train: unknown option '%s' (see emotiond train --help)\n",
                    argv[i]);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "emotiond train: %s needs a value\n", argv[i]);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(d->name, "--out")) {
            out = v;
        } else if (d->is_str) {
            *(const char **)((char *)&o + d->off) = v;
        } else {
            char *end;
            double x = strtod(v, &end);
            if (end == v || *end) {
                fprintf(stderr, "emotiond train: %s needs a number, not '%s'\n", d->name, v);
                return 2;
            }
            *(double *)((char *)&o + d->off) = x;
        }
    }
    if (!o.data_dir || (!o.arch_path && !o.resume && !o.init_model)) {
        fprintf(stderr, "emotiond train: --data and one of --arch, --init or --resume are required\n");
        cmd_train_usage(stderr);
        return 2;
    }
    char outbuf[1024], cmdline[4096] = "emotiond";
    if (!out) {
        if (o.resume) {
            /* continue in the checkpoint's own directory */
            snprintf(outbuf, sizeof outbuf, "%s", o.resume);
            char *slash = strrchr(outbuf, '/');
            if (slash) *slash = 0; else strcpy(outbuf, ".");
        } else {
            const char *base = strrchr(o.arch_path ? o.arch_path : o.init_model, '/');
            base = base ? base + 1 : (o.arch_path ? o.arch_path : o.init_model);
            snprintf(outbuf, sizeof outbuf, "runs/%.*s", (int)strcspn(base, "."), base);
        }
        out = outbuf;
    }
    o.out_dir = out;
    for (int i = 0; i < argc; i++) {
        size_t len = strlen(cmdline);
        snprintf(cmdline + len, sizeof cmdline - len, " %s", argv[i]);
    }
    o.command = cmdline;
    int tty = isatty(2);
    o.on_progress = print_progress;
    o.ctx = &tty;
    o.cancel = &g_stop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    char err[1024];
    int rc = nn_train_run(&o, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "emotiond train: %s\n", err);
        return 1;
    }
    if (rc == 1)
        fprintf(stderr, "\ninterrupted: checkpoint saved; continue with\n  emotiond train --resume %s/checkpoint.emod --data %s\n",
                out, o.data_dir);
    else
        fprintf(stderr, "done: best model %s/best.emod, history %s/history.csv, curves %s/curves.svg\n",
                out, out, out);
    return 0;
}
