/* gen_seeds.c - writes the hand-made seed corpora of tests/corpus/<harness>/
 * (`make fuzz-seeds`; run once, the output is committed). Every file is made
 * here from scratch, small (a few KB at most) and named after what it covers.
 * PngSuite and libjpeg-turbo's test images are not copied (../shared/data
 * says never to copy its files into the project): `make fuzz` passes those
 * folders to libFuzzer as extra read-only seed folders, and
 * tests/test_fuzz_corpus.c replays them too when they are present. */
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jpeglib.h>
#include <turbojpeg.h>

#include "base64.h"
#include "internal.h"
#include "model_file.h"
#include "nn.h"

static const char *root = "tests/corpus";

static void die(const char *what)
{
    fprintf(stderr, "gen_seeds: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void put(const char *harness, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, harness);
    mkdir(root, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", root, harness, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f)) die(path);
}

static void puts_(const char *harness, const char *name, const char *text)
{
    put(harness, name, text, strlen(text));
}

/* ---- PNG ---------------------------------------------------------------- */

typedef struct { uint8_t *p; size_t n, cap; } mem;

static void mem_write(png_structp png, png_bytep d, png_size_t n)
{
    mem *m = png_get_io_ptr(png);
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2;
        m->p = realloc(m->p, m->cap);
        if (!m->p) die("realloc");
    }
    memcpy(m->p + m->n, d, n);
    m->n += n;
}
static void mem_flush(png_structp png) { (void)png; }

/* A w x h PNG of colour type ct and depth bd with a smooth pattern. */
static mem make_png(int w, int h, int ct, int bd, int interlace, int trns, int text)
{
    mem m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) die("libpng");
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_compression_level(png, 9);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bd, ct,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (ct == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        int n = 1 << bd;
        for (int i = 0; i < n; i++)
            pal[i].red = pal[i].green = pal[i].blue = (png_byte)(i * 255 / (n - 1));
        png_set_PLTE(png, info, pal, n);
        if (trns) {
            png_byte t[2] = {0, 128};
            png_set_tRNS(png, info, t, 2, NULL);
        }
    } else if (trns && (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_RGB)) {
        png_color_16 c = {0, 1, 1, 1, 1};
        png_set_tRNS(png, info, NULL, 0, &c);
    }
    if (text) {
        png_text t[2];
        memset(t, 0, sizeof t);
        t[0].compression = PNG_TEXT_COMPRESSION_NONE;
        t[0].key = "Comment";
        t[0].text = "fuzz seed";
        t[1].compression = PNG_TEXT_COMPRESSION_zTXt;
        t[1].key = "Description";
        t[1].text = "a compressed text chunk, aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        png_set_text(png, info, t, 2);
        png_set_gAMA(png, info, 0.45455);
    }
    png_write_info(png, info);
    if (interlace) png_set_interlace_handling(png);
    int ch = ct == PNG_COLOR_TYPE_RGB ? 3 : ct == PNG_COLOR_TYPE_RGBA ? 4
           : ct == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    size_t rowbytes = ((size_t)w * (size_t)ch * (size_t)bd + 7) / 8;
    uint8_t *row = calloc(rowbytes, 1);
    int passes = interlace ? 7 : 1;
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < h; y++) {
            for (size_t i = 0; i < rowbytes; i++) row[i] = (uint8_t)(i * 7 + (size_t)y * 3);
            png_write_row(png, row);
        }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
    return m;
}

static void png_seeds(void)
{
    static const struct { const char *name; int w, h, ct, bd, il, trns, text; } s[] = {
        {"png-gray1.png", 17, 9, PNG_COLOR_TYPE_GRAY, 1, 0, 0, 0},
        {"png-gray2-interlaced.png", 13, 11, PNG_COLOR_TYPE_GRAY, 2, 1, 0, 0},
        {"png-gray4.png", 9, 9, PNG_COLOR_TYPE_GRAY, 4, 0, 0, 0},
        {"png-gray8-48.png", 48, 48, PNG_COLOR_TYPE_GRAY, 8, 0, 0, 0},
        {"png-gray16-trns.png", 8, 8, PNG_COLOR_TYPE_GRAY, 16, 0, 1, 0},
        {"png-rgb8-text.png", 12, 10, PNG_COLOR_TYPE_RGB, 8, 0, 0, 1},
        {"png-rgb16-interlaced.png", 11, 7, PNG_COLOR_TYPE_RGB, 16, 1, 0, 0},
        {"png-palette4-trns.png", 10, 10, PNG_COLOR_TYPE_PALETTE, 4, 0, 1, 0},
        {"png-palette8-interlaced.png", 9, 13, PNG_COLOR_TYPE_PALETTE, 8, 1, 0, 0},
        {"png-graya8.png", 6, 6, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, 0, 0},
        {"png-rgba16.png", 5, 4, PNG_COLOR_TYPE_RGBA, 16, 0, 0, 0},
        {"png-rgba8-interlaced.png", 7, 7, PNG_COLOR_TYPE_RGBA, 8, 1, 0, 0},
        {"png-gray8-1x200.png", 1, 200, PNG_COLOR_TYPE_GRAY, 8, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        mem m = make_png(s[i].w, s[i].h, s[i].ct, s[i].bd, s[i].il, s[i].trns, s[i].text);
        put("fuzz_image", s[i].name, m.p, m.n);
        if (i == 3) { /* a JSON body carrying it, for the JSON harness */
            char *b = b64_encode(m.p, m.n);
            size_t n = strlen(b) + 64;
            char *j = malloc(n);
            snprintf(j, n, "{\"image\": \"%s\"}", b);
            puts_("fuzz_json", "predict-png.json", j);
            snprintf(j, n, "{\"image\": \"data:image/png;base64,%s\", \"label\": \"happy\"}", b);
            puts_("fuzz_json", "samples-dataurl.json", j);
            free(j);
            free(b);
        }
        free(m.p);
    }
}

/* ---- JPEG --------------------------------------------------------------- */

static void jpeg_seed(const char *name, int w, int h, int pf, int samp, int flags, int q)
{
    tjhandle tj = tjInitCompress();
    int ps = tjPixelSize[pf];
    uint8_t *px = malloc((size_t)w * (size_t)h * (size_t)ps);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * ps; x++) px[(size_t)y * (size_t)(w * ps) + (size_t)x] = (uint8_t)(x * 5 + y * 9);
    unsigned char *out = NULL;
    unsigned long len = 0;
    if (tjCompress2(tj, px, w, 0, h, pf, &out, &len, samp, q, flags)) {
        fprintf(stderr, "gen_seeds: %s: %s\n", name, tjGetErrorStr2(tj));
        exit(1);
    }
    put("fuzz_image", name, out, len);
    if (!(flags & TJFLAG_PROGRESSIVE) && pf != TJPF_CMYK)
        put("fuzz_jpeg_dc", name, out, len); /* the layouts the DC decoder takes */
    tjFree(out);
    free(px);
    tjDestroy(tj);
}

/* For fuzz_jpeg_dc: what TurboJPEG 2.1's compressor cannot write, through
 * libjpeg-turbo's libjpeg API: restart markers (interval in MCUs) and
 * optimized Huffman tables, which have long codes. */
static void jpeg_dc_seed(const char *name, int w, int h, int ncomp, int restart, int optimize)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    unsigned char *out = NULL;
    unsigned long len = 0;
    uint8_t *px = malloc((size_t)w * (size_t)h * (size_t)ncomp);
    for (size_t i = 0; i < (size_t)w * (size_t)h * (size_t)ncomp; i++)
        px[i] = (uint8_t)(i * 37 % 251 + (i / 7) % 3);
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &out, &len);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = ncomp;
    ci.in_color_space = ncomp == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 80, TRUE);
    ci.restart_interval = (unsigned)restart;
    ci.optimize_coding = optimize ? TRUE : FALSE;
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = px + (size_t)ci.next_scanline * (size_t)w * (size_t)ncomp;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    put("fuzz_jpeg_dc", name, out, len);
    free(out);
    free(px);
}

static void jpeg_seeds(void)
{
    jpeg_dc_seed("restart1-rgb-420.jpg", 40, 24, 3, 1, 0);
    jpeg_dc_seed("restart3-gray-optimized.jpg", 56, 16, 1, 3, 1);
    jpeg_dc_seed("rgb-420-optimized.jpg", 33, 31, 3, 0, 1);
    jpeg_seed("jpeg-gray-48.jpg", 48, 48, TJPF_GRAY, TJSAMP_GRAY, 0, 75);
    jpeg_seed("jpeg-rgb-420.jpg", 33, 17, TJPF_RGB, TJSAMP_420, 0, 50);
    jpeg_seed("jpeg-rgb-444.jpg", 16, 16, TJPF_RGB, TJSAMP_444, 0, 90);
    jpeg_seed("jpeg-rgb-422-progressive.jpg", 24, 20, TJPF_RGB, TJSAMP_422, TJFLAG_PROGRESSIVE, 60);
    jpeg_seed("jpeg-gray-progressive.jpg", 40, 8, TJPF_GRAY, TJSAMP_GRAY, TJFLAG_PROGRESSIVE, 80);
    jpeg_seed("jpeg-cmyk.jpg", 8, 8, TJPF_CMYK, TJSAMP_444, 0, 90);
    jpeg_seed("jpeg-rgb-440-400x8.jpg", 400, 8, TJPF_RGB, TJSAMP_440, 0, 30);
    /* the 48x48 gray one inside a multipart body, for the multipart harness */
}

/* ---- models ------------------------------------------------------------- */

static void model_seed(const char *name, const char *arch, const char *meta, int ckpt)
{
    nn_model *m = NULL;
    char err[256], path[512];
    if (nn_model_from_arch_json(arch, 1, &m, err, sizeof err)) {
        fprintf(stderr, "gen_seeds: %s: %s\n", name, err);
        exit(1);
    }
    if (meta && nn_model_set_meta_json(m, meta, err, sizeof err)) {
        fprintf(stderr, "gen_seeds: %s: %s\n", name, err);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/fuzz_model/%s", root, name);
    mkdir(root, 0755);
    snprintf(err, sizeof err, "%s/fuzz_model", root);
    mkdir(err, 0755);
    float mom[3] = {1, 2, 3};
    nn_extra ex[1] = {{"momentum", mom, 3}};
    if (nn_file_save(m, ckpt ? ex : NULL, ckpt ? 1 : 0,
                     ckpt ? "{\"epoch\": 2, \"step\": 10, \"config\": {\"lr\": 0.01}}" : NULL, path,
                     err, sizeof err)) {
        fprintf(stderr, "gen_seeds: %s: %s\n", name, err);
        exit(1);
    }
    nn_model_free(m);
}

static void model_seeds(void)
{
    model_seed("model-conv-pool-dense.emod",
               "{\"name\": \"s1\", \"input\": {\"size\": 8}, \"layers\": ["
               "{\"type\": \"conv\", \"filters\": 2, \"kernel\": 3},"
               "{\"type\": \"maxpool\"}, {\"type\": \"maxpool\"}, {\"type\": \"maxpool\"},"
               "{\"type\": \"flatten\"}, {\"type\": \"dense\", \"units\": 7}]}",
               "{\"id\": \"seed\", \"version\": \"v0001\", \"val_accuracy\": 0.5}", 0);
    model_seed("model-bn-elu-gap.emod",
               "{\"name\": \"s2\", \"input\": {\"size\": 4, \"mean\": 0.5, \"std\": 0.25},"
               " \"classes\": [\"a\", \"b\"], \"layers\": ["
               "{\"type\": \"conv\", \"filters\": 3, \"kernel\": 1, \"padding\": \"valid\"},"
               "{\"type\": \"batchnorm\"}, {\"type\": \"elu\"}, {\"type\": \"dropout\", \"rate\": 0.2},"
               "{\"type\": \"gap\"}, {\"type\": \"relu\"}, {\"type\": \"dense\", \"units\": 2}]}",
               NULL, 0);
    model_seed("checkpoint-extras.emod",
               "{\"name\": \"s3\", \"input\": {\"size\": 4}, \"layers\": ["
               "{\"type\": \"flatten\"}, {\"type\": \"dense\", \"units\": 7, \"l2\": 0.001}]}",
               "{\"epochs\": 3}", 1);
}

/* ---- text seeds ----------------------------------------------------------- */

static void multipart_seeds(void)
{
    puts_("fuzz_multipart", "image-and-label.txt",
          "multipart/form-data; boundary=XyZ\n"
          "--XyZ\r\nContent-Disposition: form-data; name=\"label\"\r\n\r\nhappy\r\n"
          "--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"f.png\"\r\n"
          "Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\nbinary\r\n--Xy\r\n-\r\n"
          "--XyZ--\r\nepilogue");
    puts_("fuzz_multipart", "quoted-boundary.txt",
          "multipart/form-data; charset=utf-8; boundary=\"a b'()+_,-./:=?\"\n"
          "preamble\r\n--a b'()+_,-./:=?  \r\ncontent-disposition: form-data; name=image\r\n\r\n"
          "data\r\n--a b'()+_,-./:=?--");
    puts_("fuzz_multipart", "first-part-wins.txt",
          "multipart/form-data;boundary=b\n"
          "--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\none\r\n"
          "--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\ntwo\r\n--b--\r\n");
    puts_("fuzz_multipart", "escaped-name.txt",
          "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW\n"
          "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
          "Content-Disposition: form-data; name=\"im\\\"age\"; filename=\"a\\\\b.jpg\"\r\n\r\nx\r\n"
          "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
          "Content-Disposition: form-data; name=\"image\"\r\n\r\n\r\n\r\n"
          "------WebKitFormBoundary7MA4YWxkTrZu0gW--");
    puts_("fuzz_multipart", "missing-field.txt",
          "multipart/form-data; boundary=q\n--q\r\nContent-Disposition: form-data; name=\"other\"\r\n"
          "\r\nv\r\n--q--");
    puts_("fuzz_multipart", "no-final-delimiter.txt",
          "multipart/form-data; boundary=q\n--q\r\nContent-Disposition: form-data; name=\"image\"\r\n"
          "\r\nvvvv\r\n--q");
}

static void json_seeds(void)
{
    puts_("fuzz_json", "predict-bad-base64.json", "{\"image\": \"iVBORw0KGgo=AAAA\"}");
    puts_("fuzz_json", "predict-urlsafe-nopad.json", "{\"image\": \"_-8\\n_-A\"}");
    puts_("fuzz_json", "not-object.json", "[1, 2, {\"image\": null}]");
    puts_("fuzz_json", "train-full.json",
          "{\"architecture\": \"vgg\", \"dataset\": \"fer2013\", \"include_feedback\": false,"
          " \"epochs\": 3, \"batch\": 64, \"lr\": 0.001, \"optimizer\": \"adam\","
          " \"schedule\": \"cosine\", \"weight_decay\": 0.0001, \"label_smoothing\": 0.1,"
          " \"patience\": 5, \"seed\": 4294967295, \"max_train\": 1000, \"threads\": 2,"
          " \"augmentation\": {\"flip\": true, \"shift\": 4, \"rotate\": 10.5, \"scale\": 0.1,"
          " \"erase\": 0.25}, \"validation_split\": 0.1, \"min_accuracy\": 0.5, \"force\": true}");
    puts_("fuzz_json", "train-finetune.json", "{\"fine_tune\": true, \"epochs\": 3, \"lr\": 0.001}");
    puts_("fuzz_json", "train-resume.json", "{\"resume\": \"j0001\", \"epochs\": 9, \"force\": false}");
    puts_("fuzz_json", "train-arch-object.json",
          "{\"architecture\": {\"name\": \"x\", \"layers\": [{\"type\": \"gap\"}]}, \"lr\": 1e-300}");
    puts_("fuzz_json", "train-duplicate-key.json", "{\"epochs\": 1, \"epochs\": 2}");
    puts_("fuzz_json", "samples-label-only.json", "{\"label\": \"sad\", \"image\": 5}");
}

static void base64_seeds(void)
{
    puts_("fuzz_base64", "padded.txt", "aGVsbG8gd29ybGQ=");
    puts_("fuzz_base64", "two-pad.txt", "YQ==");
    puts_("fuzz_base64", "wrapped.txt", "aGVs\r\nbG8g\n d29y\tbGQh");
    puts_("fuzz_base64", "urlsafe.txt", "-_-_");
    puts_("fuzz_base64", "bad-trailing-bits.txt", "YR==");
    puts_("fuzz_base64", "pad-in-middle.txt", "YQ==YQ==");
}

static void config_seeds(void)
{
    puts_("fuzz_config", "all-keys.json",
          "{\"host\": \"127.0.0.1\", \"port\": 0, \"model\": \"m.emod\", \"workers\": 2,"
          " \"http_threads\": 4, \"queue_size\": 8, \"max_body_bytes\": 4294967296,"
          " \"max_image_width\": 1, \"max_image_height\": 1048576, \"max_image_pixels\": 1099511627776,"
          " \"connection_timeout\": 86400, \"connection_limit\": 1, \"connection_memory_limit\": 8192,"
          " \"shutdown_grace\": 0, \"retry_after\": 3600, \"log_format\": \"json\","
          " \"log_requests\": false, \"tta\": true, \"cors_origins\": [\"*\", \"https://a.example\"],"
          " \"model_dir\": \"var/models\", \"data_dir\": null, \"arch_dir\": \"config/arch\","
          " \"admin_token\": \"s3cret\", \"admin_token_file\": null, \"admin_host\": \"::1\","
          " \"admin_port\": -1, \"keep_models\": 10000, \"train_threads\": 8, \"train_nice\": 19,"
          " \"face_cascade\": null, \"face_scale_step_percent\": 100, \"face_min_size\": 0,"
          " \"face_max_scan_side\": 0, \"face_min_neighbors\": 100, \"max_faces\": 256,"
          " \"face_crop_max_side\": 1048576}");
    puts_("fuzz_config", "unknown-key.json", "{\"port\": 80, \"prot\": 81}");
    puts_("fuzz_config", "duplicate.json", "{\"port\": 80, \"port\": 81}");
    puts_("fuzz_config", "bad-types.json", "{\"port\": \"80\", \"tta\": 1, \"cors_origins\": \"*\"}");
    puts_("fuzz_config", "env-and-flags.txt",
          "PORT=8081\nCORS_ORIGINS= a , b ,,\nLOG_FORMAT=json\nTTA=yes\n--max-body-bytes\n"
          "100\n--port=0\n--print-config\n--config\nx.json\n--help");
}

int main(int argc, char **argv)
{
    if (argc > 1) root = argv[1];
    png_seeds();
    jpeg_seeds();
    model_seeds();
    multipart_seeds();
    json_seeds();
    base64_seeds();
    config_seeds();
    /* the shipped config file itself */
    FILE *f = fopen("config/emotiond.json", "rb");
    if (f) {
        char buf[8192];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        put("fuzz_config", "emotiond.json", buf, n);
    }
    return 0;
}
