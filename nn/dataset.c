/* dataset.c - FER2013 loaders (Kaggle folders and the original CSV).
 *
 * Folder loading lists every class folder first, sorts the file names, then
 * decodes all files in parallel (OpenMP) into their final slots, and finally
 * compacts the successful ones in list order on one thread. The result is
 * therefore identical whatever the thread count or scheduling, and the warn
 * callback is only ever called from the calling thread.
 */
#include "dataset.h"

#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#ifdef _OPENMP
#include <omp.h>
#endif

const char *const ds_class_names[DS_NUM_CLASSES] = {
    "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"};

/* fer2013.csv label -> our alphabetical index:
 * 0 Angry 1 Disgust 2 Fear 3 Happy 4 Sad 5 Surprise 6 Neutral. */
static const uint8_t fer_csv_to_ours[DS_NUM_CLASSES] = {0, 1, 2, 3, 5, 6, 4};

/* No single image file of the dataset should come anywhere near this. */
#define DS_MAX_FILE_BYTES (64u << 20)
/* Upper bound of decoder threads: decoding is cheap, file I/O soon dominates. */
#define DS_MAX_THREADS 8

/* strerror() may use a static buffer; the GNU strerror_r does not. */
#define ERRSTR(e, buf) strerror_r((e), (buf), sizeof(buf))

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- basics ---------------------------------------------------------------- */

int ds_class_index(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < DS_NUM_CLASSES; i++)
        if (strcasecmp(name, ds_class_names[i]) == 0)
            return i;
    return -1;
}

static int ds_reserve(ds_dataset *ds, int need)
{
    if (need <= ds->cap)
        return 0;
    /* Doubling for ds_append; a bulk reservation gets exactly what it needs. */
    long long cap = ds->cap > 0 ? 2LL * ds->cap : 1024;
    if (cap < need)
        cap = need;
    if (cap > 0x7fffffffLL / DS_PIXELS)
        return -1;
    uint8_t *px = realloc(ds->pixels, (size_t)cap * DS_PIXELS);
    if (!px)
        return -1;
    ds->pixels = px;
    uint8_t *lb = realloc(ds->labels, (size_t)cap);
    if (!lb)
        return -1;
    ds->labels = lb;
    ds->cap = (int)cap;
    return 0;
}

int ds_append(ds_dataset *ds, const uint8_t *pixels48, int label)
{
    if (label < 0 || label >= DS_NUM_CLASSES || ds->n == 0x7fffffff)
        return -1;
    if (ds_reserve(ds, ds->n + 1) != 0)
        return -1;
    memcpy(ds->pixels + (size_t)ds->n * DS_PIXELS, pixels48, DS_PIXELS);
    ds->labels[ds->n] = (uint8_t)label;
    ds->n++;
    return 0;
}

void ds_class_counts(const ds_dataset *ds, int *counts)
{
    memset(counts, 0, sizeof(int) * DS_NUM_CLASSES);
    for (int i = 0; i < ds->n; i++)
        if (ds->labels[i] < DS_NUM_CLASSES)
            counts[ds->labels[i]]++;
}

void ds_free(ds_dataset *ds)
{
    if (!ds)
        return;
    free(ds->pixels);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

static void warn_call(ds_warn_fn warn, void *ctx, const char *path, const char *reason)
{
    if (warn)
        warn(ctx, path, reason);
}

/* ---- folder layout ------------------------------------------------------------ */

typedef struct {
    char *path;
    int label;
} ds_file;

typedef struct {
    ds_file *v;
    size_t n, cap;
} file_list;

static char *path_join(const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--; /* "train/" + "angry" -> "train/angry" */
    size_t nl = strlen(name);
    char *p = malloc(dl + 1 + nl + 1);
    if (!p)
        return NULL;
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, name, nl + 1);
    return p;
}

/* *.jpg, *.jpeg, *.png in any case. Like the shell's *, this skips hidden
 * files, e.g. the "._x.jpg" resource forks macOS leaves in zip files. */
static int has_image_ext(const char *name)
{
    if (name[0] == '.')
        return 0;
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    return strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
           strcasecmp(dot, ".png") == 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void file_list_free(file_list *fl)
{
    for (size_t i = 0; i < fl->n; i++)
        free(fl->v[i].path);
    free(fl->v);
    memset(fl, 0, sizeof *fl);
}

/* Takes ownership of path (freed on failure). */
static int file_list_push(file_list *fl, char *path, int label)
{
    if (fl->n == fl->cap) {
        size_t cap = fl->cap ? fl->cap * 2 : 4096;
        ds_file *v = realloc(fl->v, cap * sizeof *v);
        if (!v) {
            free(path);
            return -1;
        }
        fl->v = v;
        fl->cap = cap;
    }
    fl->v[fl->n].path = path;
    fl->v[fl->n].label = label;
    fl->n++;
    return 0;
}

static int cmp_file_path(const void *a, const void *b)
{
    return strcmp(((const ds_file *)a)->path, ((const ds_file *)b)->path);
}

/* Finds the class folders of dir (names matched case-insensitively, so
 * "Angry/" works too) into class_dir[]; other sub-folders are reported and
 * ignored. Returns 0, or -1 with a message. */
static int find_class_dirs(const char *dir, char **class_dir, ds_warn_fn warn, void *ctx,
                           char *err, size_t errlen)
{
    char eb[128];
    DIR *d = opendir(dir);
    if (!d) {
        set_err(err, errlen, "cannot open dataset folder %s: %s (expected %s/<class>/*.jpg|*.png)",
                dir, ERRSTR(errno, eb), dir);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ".", "..", and hidden folders such as .ipynb_checkpoints */
        char *p = path_join(dir, e->d_name);
        if (!p) {
            set_err(err, errlen, "out of memory listing %s", dir);
            rc = -1;
            break;
        }
        int k = ds_class_index(e->d_name);
        if (!is_dir(p)) {
            free(p); /* stray files next to the class folders are not ours */
        } else if (k < 0) {
            warn_call(warn, ctx, p, "not a class folder (expected angry, disgust, fear, happy, "
                      "neutral, sad, surprise); ignored");
            free(p);
        } else if (class_dir[k]) {
            set_err(err, errlen, "two folders for class %s: %s and %s", ds_class_names[k],
                    class_dir[k], p);
            free(p);
            rc = -1;
            break;
        } else {
            class_dir[k] = p;
        }
    }
    closedir(d);
    return rc;
}

/* Appends the image files of one class folder to fl, sorted by name. */
static int list_class(file_list *fl, const char *cdir, int label, char *err, size_t errlen)
{
    char eb[128];
    DIR *d = opendir(cdir);
    if (!d) {
        set_err(err, errlen, "cannot open class folder %s: %s", cdir, ERRSTR(errno, eb));
        return -1;
    }
    size_t first = fl->n;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!has_image_ext(e->d_name))
            continue;
        char *p = path_join(cdir, e->d_name);
        if (!p || file_list_push(fl, p, label) != 0) {
            set_err(err, errlen, "out of memory listing %s", cdir);
            rc = -1;
            break;
        }
    }
    closedir(d);
    /* Same folder prefix, so comparing paths is comparing names (strcmp). */
    if (fl->n > first) /* fl->v may still be NULL (qsort(NULL, 0) is UB) */
        qsort(fl->v + first, fl->n - first, sizeof *fl->v, cmp_file_path);
    return rc;
}

/* Decodes one file into out48; returns 0, or an IMG_E* code with a malloc'ed
 * reason in *msg (NULL if even that allocation failed). Thread-safe. */
static int decode_file(const char *path, uint8_t *out48, char **msg)
{
    char err[256];
    uint8_t *data = NULL;
    size_t len = 0;
    img_limits lim;
    img_limits_default(&lim);
    int rc = img_read_file(path, DS_MAX_FILE_BYTES, &data, &len, err, sizeof err);
    if (rc == IMG_OK)
        rc = img_decode_gray_resized(data, len, &lim, DS_SIDE, DS_SIDE, out48, NULL, NULL,
                                     err, sizeof err);
    free(data);
    if (rc != IMG_OK) {
        size_t n = strlen(img_strerror_code(rc)) + 2 + strlen(err) + 1;
        *msg = malloc(n);
        if (*msg)
            snprintf(*msg, n, "%s: %s", img_strerror_code(rc), err);
    }
    return rc;
}

/* Decodes fl->v[i] into ds->pixels slot i, in parallel; rcs/msgs per file. */
static void decode_all(const file_list *fl, uint8_t *pixels, int *rcs, char **msgs)
{
    long n = (long)fl->n;
#ifdef _OPENMP
    int threads = omp_get_max_threads();
    if (threads > DS_MAX_THREADS)
        threads = DS_MAX_THREADS;
#pragma omp parallel for schedule(dynamic, 64) num_threads(threads)
#endif
    for (long i = 0; i < n; i++)
        rcs[i] = decode_file(fl->v[i].path, pixels + (size_t)i * DS_PIXELS, &msgs[i]);
}

/* Moves the decoded images down over the failed ones, keeping list order, and
 * reports the failures. Single-threaded, so warn sees a deterministic order. */
static void compact(ds_dataset *ds, const file_list *fl, const int *rcs, char **msgs,
                    ds_warn_fn warn, void *ctx)
{
    int j = 0;
    for (size_t i = 0; i < fl->n; i++) {
        if (rcs[i] != IMG_OK) {
            warn_call(warn, ctx, fl->v[i].path, msgs[i] ? msgs[i] : img_strerror_code(rcs[i]));
            ds->skipped++;
            continue;
        }
        if ((size_t)j != i)
            memcpy(ds->pixels + (size_t)j * DS_PIXELS, ds->pixels + i * DS_PIXELS, DS_PIXELS);
        ds->labels[j++] = (uint8_t)fl->v[i].label;
    }
    ds->n = j;
}

static int list_all(file_list *fl, const char *dir, ds_warn_fn warn, void *ctx, char *err,
                    size_t errlen)
{
    char *class_dir[DS_NUM_CLASSES] = {0};
    int rc = find_class_dirs(dir, class_dir, warn, ctx, err, errlen);
    for (int k = 0; rc == 0 && k < DS_NUM_CLASSES; k++) {
        if (!class_dir[k]) {
            /* Not fatal (a subset of classes is legitimate), but say so. */
            char *p = path_join(dir, ds_class_names[k]);
            warn_call(warn, ctx, p ? p : ds_class_names[k],
                      "class folder missing: no images for this class");
            free(p);
            continue;
        }
        rc = list_class(fl, class_dir[k], k, err, errlen);
    }
    for (int k = 0; k < DS_NUM_CLASSES; k++)
        free(class_dir[k]);
    return rc;
}

int ds_load_folder(ds_dataset *ds, const char *dir, ds_warn_fn warn, void *ctx,
                   char *err, size_t errlen)
{
    file_list fl = {0};
    int *rcs = NULL;
    char **msgs = NULL;
    int rc = -1;
    memset(ds, 0, sizeof *ds);

    if (list_all(&fl, dir, warn, ctx, err, errlen) != 0)
        goto out;
    if (fl.n == 0) {
        set_err(err, errlen, "no images found in %s: expected %s/<class>/*.jpg|*.jpeg|*.png "
                "with classes angry, disgust, fear, happy, neutral, sad, surprise", dir, dir);
        goto out;
    }
    if (fl.n > 0x7fffffff / DS_PIXELS) {
        set_err(err, errlen, "too many images in %s (%zu)", dir, fl.n);
        goto out;
    }
    rcs = calloc(fl.n, sizeof *rcs);
    msgs = calloc(fl.n, sizeof *msgs);
    if (!rcs || !msgs || ds_reserve(ds, (int)fl.n) != 0) {
        set_err(err, errlen, "out of memory for %zu images from %s", fl.n, dir);
        goto out;
    }
    decode_all(&fl, ds->pixels, rcs, msgs);
    compact(ds, &fl, rcs, msgs, warn, ctx);
    if (ds->n == 0) {
        set_err(err, errlen, "none of the %zu image files in %s could be decoded", fl.n, dir);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        ds_free(ds);
    for (size_t i = 0; msgs && i < fl.n; i++)
        free(msgs[i]);
    free(msgs);
    free(rcs);
    file_list_free(&fl);
    return rc;
}

/* ---- fer2013.csv ----------------------------------------------------------------- */

#define CSV_MAX_FIELDS 8
#define CSV_MAX_USAGES 8

typedef struct {
    int emotion, pixels, usage; /* column indexes, -1 when absent */
    int nfields;                /* columns in the header */
} csv_cols;

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Splits line in place at commas; returns the number of fields (at most max;
 * anything beyond is left in the last field). */
static int split_fields(char *line, char **f, int max)
{
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++) {
        if (*p == ',') {
            *p = '\0';
            f[n++] = p + 1;
        }
    }
    for (int i = 0; i < n; i++)
        f[i] = trim(f[i]);
    return n;
}

static int parse_header(char *line, csv_cols *c)
{
    char *f[CSV_MAX_FIELDS];
    c->emotion = c->pixels = c->usage = -1;
    c->nfields = split_fields(line, f, CSV_MAX_FIELDS);
    for (int i = 0; i < c->nfields; i++) {
        if (strcasecmp(f[i], "emotion") == 0)
            c->emotion = i;
        else if (strcasecmp(f[i], "pixels") == 0)
            c->pixels = i;
        else if (strcasecmp(f[i], "usage") == 0)
            c->usage = i;
    }
    return c->emotion >= 0 && c->pixels >= 0 ? 0 : -1;
}

/* Strict non-negative decimal integer of the whole string, or -1. */
static long parse_uint(const char *s)
{
    if (*s < '0' || *s > '9')
        return -1;
    long v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (*s - '0');
        if (v > 1000000)
            return -1;
    }
    return *s ? -1 : v;
}

/* Parses exactly DS_PIXELS space-separated ints 0..255. Returns 0 or -1 with
 * the reason in why. */
static int parse_pixels(const char *s, uint8_t *out, char *why, size_t whylen)
{
    int n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        if (*s < '0' || *s > '9') {
            set_err(why, whylen, "pixel value #%d is not a number", n + 1);
            return -1;
        }
        long v = 0;
        while (*s >= '0' && *s <= '9' && v <= 255)
            v = v * 10 + (*s++ - '0');
        if (v > 255) {
            set_err(why, whylen, "pixel value #%d is out of range 0..255", n + 1);
            return -1;
        }
        if (*s && *s != ' ' && *s != '\t') {
            set_err(why, whylen, "pixel value #%d is not a number", n + 1);
            return -1;
        }
        if (n == DS_PIXELS) {
            set_err(why, whylen, "more than %d pixel values", DS_PIXELS);
            return -1;
        }
        out[n++] = (uint8_t)v;
    }
    if (n != DS_PIXELS) {
        set_err(why, whylen, "expected %d pixel values, got %d", DS_PIXELS, n);
        return -1;
    }
    return 0;
}

/* Remembers up to CSV_MAX_USAGES distinct Usage values for the error message
 * when nothing matched. */
static void note_usage(char (*seen)[24], int *nseen, const char *u)
{
    for (int i = 0; i < *nseen; i++)
        if (strcmp(seen[i], u) == 0)
            return;
    if (*nseen < CSV_MAX_USAGES)
        snprintf(seen[(*nseen)++], sizeof seen[0], "%s", u);
}

/* Parses one data row; returns 1 if added, 0 if filtered out by usage, -1 if
 * bad (reason in why), -2 on allocation failure. */
static int csv_row(ds_dataset *ds, char *line, const csv_cols *c, const char *usage,
                   uint8_t *px, char (*seen)[24], int *nseen, char *why, size_t whylen)
{
    char *f[CSV_MAX_FIELDS];
    int nf = split_fields(line, f, CSV_MAX_FIELDS);
    if (nf < c->nfields) {
        set_err(why, whylen, "expected %d comma-separated fields, got %d", c->nfields, nf);
        return -1;
    }
    if (c->usage >= 0)
        note_usage(seen, nseen, f[c->usage]);
    if (usage && strcasecmp(f[c->usage], usage) != 0)
        return 0;
    long label = parse_uint(f[c->emotion]);
    if (label < 0 || label >= DS_NUM_CLASSES) {
        set_err(why, whylen, "emotion '%.20s' is not an integer 0..6", f[c->emotion]);
        return -1;
    }
    if (parse_pixels(f[c->pixels], px, why, whylen) != 0)
        return -1;
    return ds_append(ds, px, fer_csv_to_ours[label]) == 0 ? 1 : -2;
}

static int csv_no_rows_error(const char *path, const char *usage, char (*seen)[24], int nseen,
                             char *err, size_t errlen)
{
    char list[CSV_MAX_USAGES * 26] = "";
    for (int i = 0; i < nseen; i++) {
        if (i)
            strcat(list, ", ");
        strcat(list, seen[i]);
    }
    if (usage)
        set_err(err, errlen, "no valid rows with Usage '%s' in %s (Usage values found: %s)",
                usage, path, nseen ? list : "none");
    else
        set_err(err, errlen, "no valid rows in %s", path);
    return -1;
}

int ds_load_csv(ds_dataset *ds, const char *csv_path, const char *usage,
                ds_warn_fn warn, void *ctx, char *err, size_t errlen)
{
    char why[160], reason[200], eb[128];
    char seen[CSV_MAX_USAGES][24];
    int nseen = 0, rc = -1;
    uint8_t px[DS_PIXELS];
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    csv_cols cols;
    memset(ds, 0, sizeof *ds);

    FILE *f = fopen(csv_path, "r");
    if (!f) {
        set_err(err, errlen, "cannot open %s: %s", csv_path, ERRSTR(errno, eb));
        return -1;
    }
    lineno = 1;
    if (getline(&line, &cap, f) < 0 || parse_header(line, &cols) != 0) {
        set_err(err, errlen, "%s: line 1 is not a fer2013 header (expected "
                "'emotion,pixels,Usage')", csv_path);
        goto out;
    }
    if (usage && cols.usage < 0) {
        set_err(err, errlen, "%s has no Usage column, cannot select Usage '%s'", csv_path, usage);
        goto out;
    }
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        if (*trim(line) == '\0')
            continue; /* blank lines (e.g. at the end) are not rows */
        int r = csv_row(ds, line, &cols, usage, px, seen, &nseen, why, sizeof why);
        if (r == -2) {
            set_err(err, errlen, "out of memory after %d rows of %s", ds->n, csv_path);
            goto out;
        }
        if (r == -1) {
            snprintf(reason, sizeof reason, "line %ld: %s", lineno, why);
            warn_call(warn, ctx, csv_path, reason);
            ds->skipped++;
        }
    }
    if (ferror(f)) {
        set_err(err, errlen, "error reading %s at line %ld: %s", csv_path, lineno, ERRSTR(errno, eb));
        goto out;
    }
    if (ds->n == 0) {
        csv_no_rows_error(csv_path, usage, seen, nseen, err, errlen);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) {
        int skipped = ds->skipped;
        ds_free(ds);
        ds->skipped = skipped;
    }
    free(line);
    fclose(f);
    return rc;
}
