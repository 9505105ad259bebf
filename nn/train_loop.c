/* train_loop.c - a whole training run (see train.h).
 *
 * Reproducible: the shuffle of each epoch and the augmentation of each batch
 * are drawn from generators seeded by (seed, epoch, step), so a run resumed
 * from a checkpoint mid-epoch continues exactly where it stopped. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "augment.h"
#include "dataset.h"
#include "internal.h"
#include "model_file.h"
#include "svg_plot.h"
#include "train.h"
#include "trainer_internal.h"
#include "util.h"

#define MAX_EPOCHS 10000

/* Options after resolution: every field has a value. */
typedef struct {
    int epochs, batch, nesterov, patience, threads, max_train, tta_flip_val;
    double lr, momentum, weight_decay, label_smoothing, step_every, step_gamma;
    double plateau_patience, plateau_factor, warmup_epochs, min_lr;
    uint64_t seed;
    char optimizer[8], schedule[16];
    nn_augment aug;
} run_cfg;

/* What a checkpoint must carry besides the weights and optimizer moments. */
typedef struct {
    int epoch;            /* epochs completed */
    int step;             /* steps completed within the next epoch */
    double lr_cur;        /* plateau schedule's current rate */
    double best_val;
    int best_epoch, bad_epochs;
    double elapsed_s;     /* training time over all sessions */
    int n_hist;
    double hist[MAX_EPOCHS][6]; /* epoch, loss, acc, val_acc, lr, seconds */
} run_state;

void nn_train_opts_init(nn_train_opts *o)
{
    memset(o, 0, sizeof *o);
    double *num[] = {&o->epochs, &o->batch, &o->lr, &o->momentum, &o->nesterov,
                     &o->weight_decay, &o->label_smoothing, &o->step_every, &o->step_gamma,
                     &o->plateau_patience, &o->plateau_factor, &o->warmup_epochs, &o->min_lr,
                     &o->flip, &o->shift, &o->rotate, &o->scale, &o->erase, &o->patience,
                     &o->seed, &o->threads, &o->max_train};
    for (size_t i = 0; i < sizeof num / sizeof num[0]; i++) *num[i] = NN_UNSET;
}

static double pick(double given, json_t *tr, const char *key, double def)
{
    if (given != NN_UNSET) return given;
    json_t *v = json_object_get(tr, key);
    if (json_is_number(v)) return json_number_value(v);
    if (json_is_boolean(v)) return json_is_true(v);
    return def;
}

static void pick_s(char *dst, size_t n, const char *given, json_t *tr, const char *key,
                   const char *def)
{
    const char *v = given ? given : json_string_value(json_object_get(tr, key));
    snprintf(dst, n, "%s", v ? v : def);
}

static int resolve(const nn_train_opts *o, const char *arch_json, run_cfg *c,
                   char *err, size_t errlen)
{
    json_t *root = json_loads(arch_json, 0, NULL);
    json_t *tr = json_object_get(root, "training");
    c->epochs = (int)pick(o->epochs, tr, "epochs", 30);
    c->batch = (int)pick(o->batch, tr, "batch", 64);
    c->lr = pick(o->lr, tr, "lr", 0.01);
    c->momentum = pick(o->momentum, tr, "momentum", 0.9);
    c->nesterov = (int)pick(o->nesterov, tr, "nesterov", 1);
    c->weight_decay = pick(o->weight_decay, tr, "weight_decay", 0);
    c->label_smoothing = pick(o->label_smoothing, tr, "label_smoothing", 0);
    c->step_every = pick(o->step_every, tr, "step_every", 10);
    c->step_gamma = pick(o->step_gamma, tr, "step_gamma", 0.1);
    c->plateau_patience = pick(o->plateau_patience, tr, "plateau_patience", 5);
    c->plateau_factor = pick(o->plateau_factor, tr, "plateau_factor", 0.5);
    c->warmup_epochs = pick(o->warmup_epochs, tr, "warmup_epochs", 0);
    c->min_lr = pick(o->min_lr, tr, "min_lr", 0);
    c->aug.flip = (int)pick(o->flip, tr, "flip", 1);
    c->aug.shift = (int)pick(o->shift, tr, "shift", 0);
    c->aug.rotate = (float)pick(o->rotate, tr, "rotate", 0);
    c->aug.scale = (float)pick(o->scale, tr, "scale", 0);
    c->aug.erase = (float)pick(o->erase, tr, "erase", 0);
    c->patience = (int)pick(o->patience, tr, "patience", 0);
    c->seed = (uint64_t)pick(o->seed, tr, "seed", 1);
    c->threads = (int)pick(o->threads, NULL, "", omp_get_num_procs());
    c->max_train = (int)pick(o->max_train, tr, "max_train", 0);
    c->tta_flip_val = o->tta_flip_val;
    pick_s(c->optimizer, sizeof c->optimizer, o->optimizer, tr, "optimizer", "sgd");
    pick_s(c->schedule, sizeof c->schedule, o->schedule, tr, "schedule", "cosine");
    json_decref(root);
    const char *bad = NULL;
    if (c->epochs < 1 || c->epochs > MAX_EPOCHS) bad = "epochs must be 1..10000";
    else if (c->batch < 1 || c->batch > 4096) bad = "batch must be 1..4096";
    else if (!(c->lr > 0 && c->lr < 10)) bad = "lr must be in (0, 10)";
    else if (strcmp(c->optimizer, "sgd") && strcmp(c->optimizer, "adam")) bad = "optimizer must be sgd or adam";
    else if (strcmp(c->schedule, "none") && strcmp(c->schedule, "step") &&
             strcmp(c->schedule, "cosine") && strcmp(c->schedule, "plateau") &&
             strcmp(c->schedule, "cyclic"))
        bad = "schedule must be none, step, cosine, plateau or cyclic";
    else if (!strcmp(c->schedule, "cyclic") && !(c->min_lr < c->lr))
        bad = "the cyclic schedule needs min_lr below lr";
    else if (c->label_smoothing < 0 || c->label_smoothing >= 1) bad = "label_smoothing must be in [0, 1)";
    else if (c->threads < 1 || c->threads > NN_MAX_THREADS) bad = "threads must be 1..8";
    else if (c->aug.shift < 0 || c->aug.shift > 24) bad = "shift must be 0..24 pixels";
    else if (c->aug.erase < 0 || c->aug.erase > 1) bad = "erase must be a probability";
    if (bad) { nn_set_err(err, errlen, "training options: %s", bad); return -1; }
    return 0;
}

static json_t *cfg_json(const run_cfg *c)
{
    return json_pack("{s:i,s:i,s:f,s:f,s:b,s:f,s:f,s:s,s:s,s:f,s:f,s:f,s:f,s:f,s:f,"
                     "s:b,s:i,s:f,s:f,s:f,s:i,s:I,s:i,s:i}",
        "epochs", c->epochs, "batch", c->batch, "lr", c->lr, "momentum", c->momentum,
        "nesterov", c->nesterov, "weight_decay", c->weight_decay,
        "label_smoothing", c->label_smoothing, "optimizer", c->optimizer,
        "schedule", c->schedule, "step_every", c->step_every, "step_gamma", c->step_gamma,
        "plateau_patience", c->plateau_patience, "plateau_factor", c->plateau_factor,
        "warmup_epochs", c->warmup_epochs, "min_lr", c->min_lr,
        "flip", c->aug.flip, "shift", c->aug.shift, "rotate", (double)c->aug.rotate,
        "scale", (double)c->aug.scale, "erase", (double)c->aug.erase,
        "patience", c->patience, "seed", (json_int_t)c->seed, "threads", c->threads,
        "max_train", c->max_train);
}

/* Learning rate at fractional epoch e (0-based). */
static double lr_at(const run_cfg *c, const run_state *s, double e)
{
    double lr = c->lr;
    if (!strcmp(c->schedule, "step"))
        lr = c->lr * pow(c->step_gamma, floor(e / c->step_every));
    else if (!strcmp(c->schedule, "cosine"))
        lr = c->min_lr + 0.5 * (c->lr - c->min_lr) * (1 + cos(M_PI * e / c->epochs));
    else if (!strcmp(c->schedule, "plateau"))
        lr = s->lr_cur;
    else if (!strcmp(c->schedule, "cyclic"))
        /* one cycle per epoch, linear from lr down to min_lr (Izmailov et al.,
         * 2018): each epoch ends at the low rate, where its snapshot is taken
         * for weight averaging (--snapshots, emotiond swa) */
        lr = c->lr - (c->lr - c->min_lr) * (e - floor(e));
    if (c->warmup_epochs > 0 && e < c->warmup_epochs)
        lr *= (e + 1e-3) / c->warmup_epochs;
    return lr;
}

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t s = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
    return nn_rng_next(&s);
}

static void shuffle(int *order, int n, uint64_t seed)
{
    uint64_t r = seed;
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(nn_rng_next(&r) % (uint64_t)(i + 1));
        int t = order[i]; order[i] = order[j]; order[j] = t;
    }
}

/* ---- checkpoint ------------------------------------------------------------ */

static int save_checkpoint(const char *path, nn_trainer *t, const run_cfg *c,
                           const run_state *s, char *err, size_t errlen)
{
    json_t *hist = json_array();
    for (int i = 0; i < s->n_hist; i++)
        json_array_append_new(hist, json_pack("[f,f,f,f,f,f]", s->hist[i][0], s->hist[i][1],
                                              s->hist[i][2], s->hist[i][3], s->hist[i][4], s->hist[i][5]));
    char rng[32];
    snprintf(rng, sizeof rng, "%016llx", (unsigned long long)t->rng);
    json_t *ck = json_pack("{s:o,s:i,s:i,s:f,s:f,s:i,s:i,s:f,s:I,s:s,s:o}",
        "config", cfg_json(c), "epoch", s->epoch, "step", s->step, "lr_cur", s->lr_cur,
        "best_val", s->best_val, "best_epoch", s->best_epoch, "bad_epochs", s->bad_epochs,
        "elapsed_s", s->elapsed_s, "opt_step", (json_int_t)t->step, "rng", rng, "history", hist);
    char *txt = ck ? nn_json_dumps(ck, JSON_COMPACT) : NULL;
    json_decref(ck);
    if (!txt) { nn_set_err(err, errlen, "out of memory building the checkpoint"); return -1; }
    nn_extra ex[2] = {{"opt_m", t->opt_m, t->m->n_params}, {"opt_v", t->opt_v, t->m->n_params}};
    /* SGD keeps one moment, Adam two: a checkpoint holds only what is used */
    int n_ex = t->cfg.optimizer == NN_OPT_ADAM ? 2 : 1;
    int rc = nn_file_save(t->m, ex, n_ex, txt, path, err, errlen);
    free(txt);
    return rc;
}

static int restore_state(const char *ck_txt, run_cfg *c, run_state *s, long long *opt_step,
                         uint64_t *rng, const nn_train_opts *o, char *err, size_t errlen)
{
    json_t *ck = json_loads(ck_txt, 0, NULL), *cfg = json_object_get(ck, "config");
    if (!ck || !json_is_object(cfg)) {
        json_decref(ck);
        nn_set_err(err, errlen, "the file to resume from is a model, not a checkpoint");
        return -1;
    }
    json_t *wrap = json_pack("{s:O}", "training", cfg);
    char *cfg_txt = wrap ? nn_json_dumps(wrap, JSON_COMPACT) : NULL;
    json_decref(wrap);
    if (!cfg_txt) {
        json_decref(ck);
        nn_set_err(err, errlen, "out of memory reading the checkpoint");
        return -1;
    }
    /* the run goes on with its own settings, except those given again
     * explicitly (more epochs, lighter augmentation for a last phase, ...) */
    int rc = resolve(o, cfg_txt, c, err, errlen);
    free(cfg_txt);
    if (!rc) {
        s->epoch = (int)json_integer_value(json_object_get(ck, "epoch"));
        s->step = (int)json_integer_value(json_object_get(ck, "step"));
        s->lr_cur = json_number_value(json_object_get(ck, "lr_cur"));
        s->best_val = json_number_value(json_object_get(ck, "best_val"));
        s->best_epoch = (int)json_integer_value(json_object_get(ck, "best_epoch"));
        s->bad_epochs = (int)json_integer_value(json_object_get(ck, "bad_epochs"));
        s->elapsed_s = json_number_value(json_object_get(ck, "elapsed_s"));
        *opt_step = json_integer_value(json_object_get(ck, "opt_step"));
        *rng = strtoull(json_string_value(json_object_get(ck, "rng")) ? json_string_value(json_object_get(ck, "rng")) : "0", NULL, 16);
        json_t *h = json_object_get(ck, "history");
        s->n_hist = 0;
        for (size_t i = 0; i < json_array_size(h) && i < MAX_EPOCHS; i++) {
            for (int k = 0; k < 6; k++)
                s->hist[i][k] = json_number_value(json_array_get(json_array_get(h, i), k));
            s->n_hist++;
        }
    }
    json_decref(ck);
    return rc;
}

/* ---- outputs ----------------------------------------------------------------- */

/* Best effort (the checkpoint is what matters), but never a truncated file
 * under the final name: on a full disk the previous history.csv and
 * curves.svg stay whole. Each is written to a temporary and renamed only
 * when every byte made it. The caller's errno is kept. */
static void write_history(const char *dir, const run_state *s)
{
    char path[4096], tmp[4200];
    int saved = errno;
    snprintf(path, sizeof path, "%s/history.csv", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "epoch,loss,accuracy,val_accuracy,lr,seconds\n");
        for (int i = 0; i < s->n_hist; i++)
            fprintf(f, "%d,%.5f,%.5f,%.5f,%.6g,%.1f\n", (int)s->hist[i][0], s->hist[i][1],
                    s->hist[i][2], s->hist[i][3], s->hist[i][4], s->hist[i][5]);
        int bad = ferror(f);
        if (fclose(f) || bad || rename(tmp, path)) unlink(tmp);
    }
    double acc[MAX_EPOCHS], val[MAX_EPOCHS], loss[MAX_EPOCHS];
    double lmax = 0.1;
    for (int i = 0; i < s->n_hist; i++) {
        acc[i] = s->hist[i][2];
        val[i] = s->hist[i][3];
        loss[i] = s->hist[i][1];
        if (loss[i] > lmax) lmax = loss[i];
    }
    for (int i = 0; i < s->n_hist; i++) loss[i] /= lmax; /* drawn on the same 0..1 axis */
    svg_series ser[3] = {{"train accuracy", "#1f77b4", acc, s->n_hist},
                         {"validation accuracy", "#d62728", val, s->n_hist},
                         {"train loss (scaled to its max)", "#7f7f7f", loss, s->n_hist}};
    snprintf(path, sizeof path, "%s/curves.svg", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (svg_line_chart(tmp, "Training curves", "epoch", "accuracy", ser, 3, 0, 1) ||
        rename(tmp, path))
        unlink(tmp);
    errno = saved;
}

/* Every command that contributed to this model, oldest first: a resumed run
 * inherits the list from the checkpoint's metadata and appends its own. */
static json_t *command_history(const nn_model *m, const nn_train_opts *o)
{
    json_t *meta = m ? json_loads(nn_model_meta_json(m), 0, NULL) : NULL;
    json_t *list = json_array();
    json_t *old = json_object_get(meta, "commands");
    if (json_is_array(old)) json_array_extend(list, old);
    else if (json_is_string(json_object_get(meta, "command")))
        json_array_append(list, json_object_get(meta, "command"));
    if (o->command) json_array_append_new(list, json_string(o->command));
    json_decref(meta);
    return list;
}

static char *meta_text(const run_cfg *c, const run_state *s, const nn_train_opts *o,
                       json_t *commands, int n_train, int n_val)
{
    char date[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *j = json_pack("{s:s,s:i,s:i,s:i,s:i,s:f,s:s,s:f,s:s,s:O,s:o}",
        "dataset", o->data_dir ? o->data_dir : "", "train_images", n_train, "val_images", n_val,
        "epochs", s->epoch, "best_epoch", s->best_epoch, "val_accuracy", s->best_val,
        "date", date, "train_seconds", s->elapsed_s, "command", o->command ? o->command : "",
        "commands", commands, "config", cfg_json(c));
    char *txt = j ? nn_json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return txt;
}

/* ---- the run ------------------------------------------------------------------ */

int nn_train_run(const nn_train_opts *o, char *err, size_t errlen)
{
    int rc = -1;
    nn_model *m = NULL;
    nn_trainer *t = NULL;
    ds_dataset tr = {0}, va = {0};
    run_cfg c;
    run_state *s = calloc(1, sizeof *s);
    char *ck_txt = NULL, path[4096], sub[512];
    int *order = NULL, *conf = NULL;
    uint8_t *aug = NULL;
    float *x = NULL;
    long long opt_step = 0;
    uint64_t rng = 0;
    json_t *commands = NULL;
    if (!s) { nn_set_err(err, errlen, "out of memory"); return -1; }
    if (!o->data_dir || !o->out_dir) {
        nn_set_err(err, errlen, "training needs a data directory and an output directory");
        goto out;
    }
    if (nn_mkdir_p(o->out_dir)) {
        nn_set_err(err, errlen, "cannot create %s: %s", o->out_dir, strerror(errno));
        goto out;
    }

    /* the model: resumed, fine-tuned or new */
    if (o->resume) {
        nn_model *probe;
        if (nn_file_load(o->resume, &probe, NULL, 0, &ck_txt, err, errlen)) goto out;
        nn_model_free(probe);
        if (!ck_txt) { nn_set_err(err, errlen, "%s is a model, not a checkpoint: nothing to resume", o->resume); goto out; }
        if (restore_state(ck_txt, &c, s, &opt_step, &rng, o, err, errlen)) goto out;
    } else if (o->init_model) {
        if (nn_model_load(o->init_model, &m, err, errlen)) goto out;
        if (resolve(o, nn_model_arch_json(m), &c, err, errlen)) goto out;
    } else {
        if (!o->arch_path) { nn_set_err(err, errlen, "no architecture given (--arch FILE)"); goto out; }
        nn_train_opts tmp = *o;
        double seed = o->seed != NN_UNSET ? o->seed : 1;
        if (nn_model_from_arch_file(o->arch_path, (uint64_t)seed, &m, err, errlen)) goto out;
        if (resolve(&tmp, nn_model_arch_json(m), &c, err, errlen)) goto out;
    }
    if (!o->resume) {
        s->lr_cur = c.lr;
        s->best_val = -1;
    }

    /* data */
    snprintf(path, sizeof path, "%s/train", o->data_dir);
    if (ds_load_folder(&tr, path, nn_warn_skip_stderr, NULL, sub, sizeof sub)) {
        nn_set_err(err, errlen, "training data: %s", sub);
        goto out;
    }
    snprintf(path, sizeof path, "%s/test", o->data_dir);
    if (ds_load_folder(&va, path, nn_warn_skip_stderr, NULL, sub, sizeof sub)) {
        nn_set_err(err, errlen, "validation data: %s", sub);
        goto out;
    }
    if (c.max_train > 0 && c.max_train < tr.n) {
        /* an evenly spaced subset, so that every class keeps its share */
        for (int i = 0; i < c.max_train; i++) {
            int src = (int)((long long)i * tr.n / c.max_train);
            memmove(tr.pixels + (size_t)i * DS_PIXELS, tr.pixels + (size_t)src * DS_PIXELS, DS_PIXELS);
            tr.labels[i] = tr.labels[src];
        }
        tr.n = c.max_train;
    }

    omp_set_num_threads(c.threads);
    nn_optim_cfg oc;
    nn_optim_cfg_default(&oc, strcmp(c.optimizer, "adam") ? NN_OPT_SGD : NN_OPT_ADAM);
    oc.momentum = (float)c.momentum;
    oc.nesterov = c.nesterov;
    oc.weight_decay = (float)c.weight_decay;
    oc.label_smoothing = (float)c.label_smoothing;
    if (o->resume) {
        nn_extra ex[2];
        nn_model *tmp = NULL;
        /* load again, now with the optimizer moments (sized from the model) */
        if (nn_file_load(o->resume, &tmp, NULL, 0, NULL, err, errlen)) goto out;
        m = tmp;
        t = nn_trainer_create(m, c.batch, &oc, c.seed);
        if (!t) { nn_set_err(err, errlen, "out of memory for the trainer"); goto out; }
        ex[0] = (nn_extra){"opt_m", t->opt_m, m->n_params};
        ex[1] = (nn_extra){"opt_v", t->opt_v, m->n_params};
        if (nn_file_load(o->resume, &tmp, ex, oc.optimizer == NN_OPT_ADAM ? 2 : 1, NULL, err, errlen))
            goto out;
        nn_model_free(tmp);
        t->step = opt_step;
        t->rng = rng;
    } else {
        t = nn_trainer_create(m, c.batch, &oc, c.seed);
        if (!t) { nn_set_err(err, errlen, "out of memory for the trainer"); goto out; }
    }

    if (m->in_side != DS_SIDE || m->num_classes != DS_NUM_CLASSES) {
        nn_set_err(err, errlen, "the architecture must take %dx%d inputs and give %d classes to train on FER2013 folders",
                   DS_SIDE, DS_SIDE, DS_NUM_CLASSES);
        goto out;
    }
    commands = command_history(m, o);
    const int S = m->in_side, K = m->num_classes;
    const size_t per = (size_t)S * S;
    const int steps = (tr.n + c.batch - 1) / c.batch;
    order = malloc(sizeof(int) * tr.n);
    aug = malloc(per * c.batch);
    x = malloc(sizeof(float) * per * c.batch);
    conf = malloc(sizeof(int) * K * K);
    uint8_t *labels = malloc(c.batch);
    if (!order || !aug || !x || !conf || !labels) { free(labels); nn_set_err(err, errlen, "out of memory"); goto out; }

    double t_start = nn_now_s(), elapsed0 = s->elapsed_s;
    int cancelled = 0;
    for (int ep = s->epoch; ep < c.epochs && !cancelled; ep++) {
        double t_ep = nn_now_s();
        shuffle(order, tr.n, mix(c.seed, (uint64_t)ep));
        double loss_sum = 0;
        long correct = 0, seen = 0;
        int first = s->step;
        for (int st = first; st < steps; st++) {
            const int b0 = st * c.batch, nb = tr.n - b0 < c.batch ? tr.n - b0 : c.batch;
            uint64_t arng = mix(mix(c.seed, (uint64_t)ep), (uint64_t)st + 1);
            for (int i = 0; i < nb; i++) {
                int idx = order[b0 + i];
                nn_augment_image(&c.aug, tr.pixels + (size_t)idx * per, aug + (size_t)i * per, S, &arng);
                labels[i] = tr.labels[idx];
            }
            nn_normalize_u8(m, aug, per * nb, x);
            double lr = lr_at(&c, s, ep + (double)st / steps);
            int ok = 0;
            float loss = nn_train_step(t, x, labels, nb, (float)lr, &ok);
            if (!isfinite(loss)) {
                nn_set_err(err, errlen, "training diverged at epoch %d step %d (loss %f): lower the learning rate",
                           ep + 1, st + 1, loss);
                free(labels);
                goto out;
            }
            loss_sum += loss * nb;
            correct += ok;
            seen += nb;
            s->step = st + 1;
            if (o->on_progress) {
                double dt = nn_now_s() - t_ep;
                nn_train_progress p = {ep + 1, c.epochs, st + 1, steps, 0, seen / (dt > 0 ? dt : 1e-9), 0,
                                       elapsed0 + nn_now_s() - t_start, loss_sum / seen, (double)correct / seen,
                                       0, s->best_val, lr, dt, s->best_epoch};
                double remaining = (double)(steps - st - 1) * c.batch + (double)(c.epochs - ep - 1) * tr.n;
                p.eta_s = remaining / p.images_per_s;
                o->on_progress(o->ctx, &p);
            }
            if (o->cancel && *o->cancel) { cancelled = 1; break; }
        }
        s->elapsed_s = elapsed0 + nn_now_s() - t_start;
        if (cancelled) break;
        /* end of epoch: validate, record, schedule, save */
        if (nn_evaluate(m, va.pixels, va.labels, va.n, c.tta_flip_val ? NN_TTA_FLIP : NN_TTA_NONE,
                        c.threads, conf, NULL, err, errlen)) { free(labels); goto out; }
        double val = nn_confusion_accuracy(conf, K);
        double lr_end = lr_at(&c, s, ep + 1 - 1e-9);
        s->epoch = ep + 1;
        s->step = 0;
        double *h = s->hist[s->n_hist++];
        h[0] = ep + 1; h[1] = loss_sum / (seen ? seen : 1); h[2] = (double)correct / (seen ? seen : 1);
        h[3] = val; h[4] = lr_end; h[5] = nn_now_s() - t_ep;
        int improved = val > s->best_val;
        if (improved) {
            s->best_val = val;
            s->best_epoch = ep + 1;
            s->bad_epochs = 0;
        } else {
            s->bad_epochs++;
            if (!strcmp(c.schedule, "plateau") && s->bad_epochs % (int)c.plateau_patience == 0)
                s->lr_cur = fmax(s->lr_cur * c.plateau_factor, c.min_lr);
        }
        char *meta = meta_text(&c, s, o, commands, tr.n, va.n);
        if (meta) { nn_model_set_meta_json(m, meta, NULL, 0); free(meta); }
        if (improved) {
            snprintf(path, sizeof path, "%s/best.emod", o->out_dir);
            if (nn_model_save(m, path, err, errlen)) { free(labels); goto out; }
        }
        if (o->snapshots) {
            snprintf(path, sizeof path, "%s/epoch-%03d.emod", o->out_dir, ep + 1);
            if (nn_model_save(m, path, err, errlen)) { free(labels); goto out; }
        }
        snprintf(path, sizeof path, "%s/checkpoint.emod", o->out_dir);
        if (save_checkpoint(path, t, &c, s, err, errlen)) { free(labels); goto out; }
        write_history(o->out_dir, s);
        if (o->on_progress) {
            nn_train_progress p = {ep + 1, c.epochs, steps, steps, 1, seen / (h[5] > 0 ? h[5] : 1e-9),
                                   (double)(c.epochs - ep - 1) * h[5], s->elapsed_s, h[1], h[2],
                                   val, s->best_val, lr_end, h[5], s->best_epoch};
            o->on_progress(o->ctx, &p);
        }
        if (c.patience > 0 && s->bad_epochs >= c.patience) break; /* early stopping */
        if (o->cancel && *o->cancel) cancelled = 1;
    }
    free(labels);
    if (cancelled) {
        snprintf(path, sizeof path, "%s/checkpoint.emod", o->out_dir);
        if (save_checkpoint(path, t, &c, s, err, errlen)) goto out;
        rc = 1;
    } else {
        rc = 0;
    }
out:;
    int saved = errno; /* the failing write's cause, for the caller (train.h) */
    json_decref(commands);
    free(order); free(aug); free(x); free(conf); free(ck_txt);
    ds_free(&tr); ds_free(&va);
    nn_trainer_free(t);
    nn_model_free(m);
    free(s);
    errno = saved;
    return rc;
}
