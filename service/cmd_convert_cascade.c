/* cmd_convert_cascade.c - `emotiond convert-cascade`: OpenCV cascade XML ->
 * the compact file the service loads (see nn/face_cascade.c).
 *
 * The conversion is done once and its output committed under models/, so
 * that neither the build nor the service needs OpenCV's data package or an
 * XML library. It is deterministic: converting the same XML again gives the
 * same bytes, which tests/test_face_detect.c checks against the committed
 * file whenever opencv-data is installed.
 */
#include <stdio.h>
#include <string.h>

#include "cli_help.h"
#include "commands.h"
#include "face_detect.h"

void cmd_convert_cascade_usage(FILE *f)
{
    fprintf(f, "usage: emotiond convert-cascade IN.xml OUT.fdc\n\n");
    help_paragraph(f, "Converts an OpenCV Haar cascade (BOOST stumps, e.g. "
                      "haarcascade_frontalface_default.xml in /usr/share/opencv4/haarcascades/ "
                      "from Debian's opencv-data) into the compact cascade file used by `emotiond "
                      "serve` (face_cascade setting) and `emotiond predict` (--cascade). The "
                      "conversion is deterministic and done once; its output is committed "
                      "under models/.");
    fputs("\nOptions:\n", f);
    help_option(f, "-h, --help", "print this help and exit");
}

int cmd_convert_cascade(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        cmd_convert_cascade_usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "emotiond convert-cascade: unknown option '%s' (see emotiond "
                            "convert-cascade --help)\n", argv[i]);
            return 2;
        }
    }
    if (argc != 3) {
        fprintf(stderr, "emotiond convert-cascade: expected IN.xml and OUT.fdc, got %d "
                        "argument%s\n", argc - 1, argc == 2 ? "" : "s");
        cmd_convert_cascade_usage(stderr);
        return 2;
    }
    char err[1024];
    fd_cascade *c = NULL;
    if (fd_cascade_load(argv[1], &c, err, sizeof err)) {
        fprintf(stderr, "emotiond convert-cascade: %s\n", err);
        return 1;
    }
    int rc = fd_cascade_save(c, argv[2], err, sizeof err);
    if (rc) fprintf(stderr, "emotiond convert-cascade: %s\n", err);
    else
        printf("%s: %dx%d window, %d stages, %d weak classifiers\n", argv[2],
               fd_cascade_window(c), fd_cascade_window(c), fd_cascade_num_stages(c),
               fd_cascade_num_weak(c));
    fd_cascade_free(c);
    return rc ? 1 : 0;
}
