/* bench_face.c - speed and accuracy of the face detector (nn/face_detect.h).
 *
 *   build/bench/bench_face [--cascade FILE] [--data DIR] [--runs N]
 *                          [--scale-step S] [--min-size PX] [--max-scan-side PX]
 *   build/bench/bench_face --fer DIR [--cascade FILE] [--limit N]
 *
 * Prints "key value" lines ('#' lines are comments):
 *  - detection time (median of --runs, default 5; wall-clock and CPU) on 640x480 and 1920x1080
 *    images, with the given parameters and, for 1920x1080, also without the
 *    downscale before scanning. The picture is a labelled photo of
 *    DIR/photos-dlib stretched to the size (a real scene: the cascade's cost
 *    depends on how many windows survive the early stages, which noise or a
 *    flat image would misstate), or a synthetic pattern without the data;
 *  - recall and precision at IoU 0.5 over the 43 labelled faces of
 *    DIR/photos-dlib, and the false detections on dogs.jpg.
 * --fer DIR measures where the detector's box falls inside FER2013 crops
 * (DIR/CLASS/NAME.jpg, e.g. .cache/fer2013/test): the margin that makes a
 * detected box framed like FER2013 (FD_FER_MARGIN) comes from this.
 * Never fails on timing; exits non-zero only when the cascade cannot load.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "face_detect.h"
#include "face_eval.h"
#include "image.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of this thread: on a loaded machine wall-clock mostly measures
 * the other processes, so both are printed. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint8_t *load_gray(const char *path, int *w, int *h)
{
    uint8_t *data = NULL, *px = NULL;
    size_t len;
    char err[256];
    img_limits lim;
    img_limits_default(&lim);
    if (img_read_file(path, 64u << 20, &data, &len, err, sizeof err) ||
        img_decode_gray(data, len, &lim, &px, w, h, err, sizeof err))
        px = NULL;
    free(data);
    return px;
}

/* A w x h test picture: a real photo stretched, else a synthetic pattern. */
static uint8_t *test_picture(const char *data_dir, int w, int h, const char **what)
{
    uint8_t *out = malloc((size_t)w * h);
    if (!out) return NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/photos-dlib/2008_001322.jpg", data_dir);
    int sw, sh;
    uint8_t *src = load_gray(path, &sw, &sh);
    if (src) {
        img_resize_area(src, sw, sh, out, w, h);
        free(src);
        *what = "photos-dlib/2008_001322.jpg stretched";
        return out;
    }
    unsigned s = 7;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            s = s * 1103515245u + 12345u;
            out[(size_t)y * w + x] =
                (uint8_t)(96 + 60 * sin(x * 0.05) * cos(y * 0.03) + (int)((s >> 24) % 32));
        }
    *what = "synthetic pattern (no data)";
    return out;
}

static void time_size(const fd_cascade *c, const fd_params *p, const char *data, int w, int h,
                      int runs, const char *key)
{
    const char *what = "";
    uint8_t *img = test_picture(data, w, h, &what);
    double *t = calloc((size_t)runs, sizeof *t), *cpu = calloc((size_t)runs, sizeof *cpu);
    if (!img || !t || !cpu) {
        printf("# %s: out of memory\n", key);
        free(img);
        free(t);
        free(cpu);
        return;
    }
    int faces = 0;
    for (int r = 0; r < runs; r++) {
        fd_box *b = NULL;
        int n = 0;
        char err[256];
        double t0 = now_s(), c0 = cpu_s();
        if (fd_detect(c, p, img, w, h, &b, &n, err, sizeof err)) {
            printf("# %s: %s\n", key, err);
            break;
        }
        t[r] = (now_s() - t0) * 1e3;
        cpu[r] = (cpu_s() - c0) * 1e3;
        faces = n;
        free(b);
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    qsort(cpu, (size_t)runs, sizeof *cpu, cmp_double);
    printf("# %s: %dx%d, %s, max_scan_side %d, %d faces\n", key, w, h, what, p->max_scan_side,
           faces);
    printf("%s_ms %.2f\n", key, t[runs / 2]);
    printf("%s_cpu_ms %.2f\n", key, cpu[runs / 2]);
    free(img);
    free(t);
    free(cpu);
}

/* --fer: run the detector on FER2013 crops upscaled 4x and report where the
 * box sits. The margin that frames a box like FER2013 is (side/box - 1)/2. */
static int fer_framing(const fd_cascade *c, const char *dir, int limit)
{
    enum { UP = 4 };
    double sum_w = 0, sum_cx = 0, sum_cy = 0, sum_w2 = 0;
    int seen = 0, single = 0;
    double *fw_all = calloc((size_t)limit, sizeof *fw_all);
    if (!fw_all) return 1;
    fd_params p;
    fd_params_default(&p);
    DIR *top = opendir(dir);
    if (!top) {
        fprintf(stderr, "bench_face: cannot open %s\n", dir);
        free(fw_all);
        return 1;
    }
    struct dirent *ce;
    while ((ce = readdir(top)) && seen < limit) {
        if (ce->d_name[0] == '.') continue;
        char sub[2048];
        snprintf(sub, sizeof sub, "%s/%s", dir, ce->d_name);
        DIR *d = opendir(sub);
        if (!d) continue;
        struct dirent *e;
        int per_class = 0;
        while ((e = readdir(d)) && seen < limit && per_class < limit / 7 + 1) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", sub, e->d_name);
            int w, h;
            uint8_t *px = load_gray(path, &w, &h);
            if (!px) continue;
            int W = w * UP, H = h * UP;
            uint8_t *big = malloc((size_t)W * H);
            fd_box *b = NULL;
            int n = 0;
            char err[256];
            if (big) {
                img_resize_area(px, w, h, big, W, H);
                if (!fd_detect(c, &p, big, W, H, &b, &n, err, sizeof err) && n == 1) {
                    double fw = (double)b[0].w / W;
                    fw_all[single] = fw;
                    sum_w += fw;
                    sum_w2 += fw * fw;
                    sum_cx += (b[0].x + b[0].w * 0.5) / W;
                    sum_cy += (b[0].y + b[0].h * 0.5) / H;
                    single++;
                }
            }
            free(b);
            free(big);
            free(px);
            seen++;
            per_class++;
        }
        closedir(d);
    }
    closedir(top);
    printf("fer_images %d\n", seen);
    printf("fer_single_face %d\n", single);
    if (!single) {
        free(fw_all);
        return 0;
    }
    double mw = sum_w / single, sd = sqrt(fmax(0, sum_w2 / single - mw * mw));
    qsort(fw_all, (size_t)single, sizeof *fw_all, cmp_double);
    double med = fw_all[single / 2];
    free(fw_all);
    printf("fer_box_side_fraction_median %.3f\n", med);
    printf("fer_margin_from_median %.3f\n", (1.0 / med - 1.0) / 2.0);
    printf("fer_box_side_fraction %.3f\n", mw);
    printf("fer_box_side_fraction_sd %.3f\n", sd);
    printf("fer_box_centre_x_fraction %.3f\n", sum_cx / single);
    printf("fer_box_centre_y_fraction %.3f\n", sum_cy / single);
    printf("fer_margin %.3f\n", (1.0 / mw - 1.0) / 2.0);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cascade = "models/haarcascade_frontalface_default.fdc";
    const char *data = "../shared/data";
    const char *fer = NULL;
    int runs = 5, limit = 700;
    fd_params p;
    fd_params_default(&p);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: bench_face [--cascade FILE] [--data DIR] [--runs N] [--scale-step S]\n"
                   "                  [--min-size PX] [--max-scan-side PX] [--fer DIR] [--limit N]\n");
            return 0;
        }
        if (!v) {
            fprintf(stderr, "bench_face: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--cascade")) cascade = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--fer")) fer = v;
        else if (!strcmp(a, "--runs")) runs = atoi(v) > 0 ? atoi(v) : 1;
        else if (!strcmp(a, "--limit")) limit = atoi(v) > 0 ? atoi(v) : 1;
        else if (!strcmp(a, "--scale-step")) p.scale_step = atof(v);
        else if (!strcmp(a, "--min-size")) p.min_size = atoi(v);
        else if (!strcmp(a, "--max-scan-side")) p.max_scan_side = atoi(v);
        else {
            fprintf(stderr, "bench_face: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    char err[1024];
    fd_cascade *c = NULL;
    if (fd_cascade_load(cascade, &c, err, sizeof err)) {
        fprintf(stderr, "bench_face: %s\n", err);
        return 1;
    }
    if (fer) {
        int rc = fer_framing(c, fer, limit);
        fd_cascade_free(c);
        return rc;
    }
    printf("# cascade %s: %d stages, %d weak classifiers\n", cascade, fd_cascade_num_stages(c),
           fd_cascade_num_weak(c));
    printf("scale_step %.3f\nmin_size %d\nmax_scan_side %d\nmin_neighbors %d\n", p.scale_step,
           p.min_size, p.max_scan_side, p.min_neighbors);
    time_size(c, &p, data, 640, 480, runs, "detect_640x480");
    time_size(c, &p, data, 1920, 1080, runs, "detect_1920x1080");
    fd_params full = p;
    full.max_scan_side = 0;
    time_size(c, &full, data, 1920, 1080, runs > 3 ? 3 : runs, "detect_1920x1080_full_scan");

    char dir[1024];
    snprintf(dir, sizeof dir, "%s/photos-dlib", data);
    struct stat sb;
    if (stat(dir, &sb)) {
        printf("# accuracy: %s not found, skipped\n", dir);
    } else {
        fd_eval ev;
        if (fd_eval_dlib(c, &p, dir, 0.5, &ev, err, sizeof err)) {
            printf("# accuracy: %s\n", err);
        } else {
            printf("# accuracy on %s: %d images, %d labelled faces, IoU >= 0.5\n", dir, ev.images,
                   ev.truths);
            printf("dlib_faces %d\ndlib_detections %d\ndlib_true_positives %d\n", ev.truths,
                   ev.detections, ev.true_positives);
            printf("dlib_recall %.3f\ndlib_precision %.3f\ndogs_false_detections %d\n", ev.recall,
                   ev.precision, ev.dogs_detections);
            printf("dlib_detect_seconds %.3f\n", ev.seconds);
        }
    }
    fd_cascade_free(c);
    return 0;
}
