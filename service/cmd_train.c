/* cmd_train.c - `emotiond train`: train a model on a FER2013 folder. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "train.h"

static volatile sig_atomic_t g_stop; /* set by SIGINT/SIGTERM: checkpoint and exit */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: emotiond train --arch config/arch/NAME.json --data DIR [options]\n"
        "       emotiond train --resume OUT/checkpoint.emod --data DIR [--epochs N]\n"
        "\n"
        "Trains on DIR/train/<class>/ and validates on DIR/test/<class>/ (Kaggle FER2013\n"
        "layout). Writes OUT/best.emod (best validation accuracy), OUT/checkpoint.emod\n"
        "(every epoch, and on Ctrl-C), OUT/history.csv and OUT/curves.svg.\n"
        "Options not given come from the architecture's \"training\" block.\n"
        "\n"
        "  --out DIR             output directory (default runs/NAME)\n"
        "  --init MODEL          start from these weights (fine-tuning)\n"
        "  --epochs N --batch N --lr X --optimizer sgd|adam --momentum X --nesterov 0|1\n"
        "  --weight-decay X --label-smoothing X\n"
        "  --schedule none|step|cosine|plateau  --step-every N --step-gamma X\n"
        "  --plateau-patience N --plateau-factor X --warmup-epochs X --min-lr X\n"
        "  --flip 0|1 --shift PX --rotate DEG --scale X --erase P   augmentation\n"
        "  --patience N          early stopping after N epochs without improvement\n"
        "  --seed N --threads N --max-train N --tta-val\n");
}

typedef struct {
    const char *name;
    double *num;
    const char **str;
} opt_def;

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
    const opt_def defs[] = {
        {"--arch", NULL, &o.arch_path}, {"--data", NULL, &o.data_dir}, {"--out", NULL, &out},
        {"--resume", NULL, &o.resume}, {"--init", NULL, &o.init_model},
        {"--optimizer", NULL, &o.optimizer}, {"--schedule", NULL, &o.schedule},
        {"--epochs", &o.epochs, NULL}, {"--batch", &o.batch, NULL}, {"--lr", &o.lr, NULL},
        {"--momentum", &o.momentum, NULL}, {"--nesterov", &o.nesterov, NULL},
        {"--weight-decay", &o.weight_decay, NULL}, {"--label-smoothing", &o.label_smoothing, NULL},
        {"--step-every", &o.step_every, NULL}, {"--step-gamma", &o.step_gamma, NULL},
        {"--plateau-patience", &o.plateau_patience, NULL}, {"--plateau-factor", &o.plateau_factor, NULL},
        {"--warmup-epochs", &o.warmup_epochs, NULL}, {"--min-lr", &o.min_lr, NULL},
        {"--flip", &o.flip, NULL}, {"--shift", &o.shift, NULL}, {"--rotate", &o.rotate, NULL},
        {"--scale", &o.scale, NULL}, {"--erase", &o.erase, NULL}, {"--patience", &o.patience, NULL},
        {"--seed", &o.seed, NULL}, {"--threads", &o.threads, NULL}, {"--max-train", &o.max_train, NULL},
    };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--tta-val")) { o.tta_flip_val = 1; continue; }
        const opt_def *d = NULL;
        for (size_t k = 0; k < sizeof defs / sizeof defs[0]; k++)
            if (!strcmp(argv[i], defs[k].name)) d = &defs[k];
        if (!d) {
            fprintf(stderr, "emotiond train: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "emotiond train: %s needs a value\n", argv[i]);
            return 2;
        }
        const char *v = argv[++i];
        if (d->str) {
            *d->str = v;
        } else {
            char *end;
            double x = strtod(v, &end);
            if (end == v || *end) {
                fprintf(stderr, "emotiond train: %s needs a number, not '%s'\n", d->name, v);
                return 2;
            }
            *d->num = x;
        }
    }
    if (!o.data_dir || (!o.arch_path && !o.resume && !o.init_model)) {
        fprintf(stderr, "emotiond train: --data and one of --arch, --init or --resume are required\n");
        usage(stderr);
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
