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

#include "commands.h"
#include "face_detect.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: emotiond convert-cascade IN.xml OUT.fdc\n"
               "\n"
               "Converts an OpenCV Haar cascade (BOOST stumps, e.g.\n"
               "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml\n"
               "from Debian's opencv-data) into the compact cascade file used by\n"
               "`emotiond serve` and `emotiond predict` (face_cascade setting).\n");
}

int cmd_convert_cascade(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-') {
        usage(stderr);
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
