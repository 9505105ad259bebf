/* main.c - emotiond: dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: emotiond <command> [options]\n"
            "\n"
            "commands:\n"
            "  serve     run the HTTP service\n"
            "  train     train a model on a FER2013 folder\n"
            "  eval      evaluate a model on a labelled folder\n"
            "  predict   classify image files\n"
            "  card      regenerate a model card (models/README.md)\n"
            "  convert-cascade  OpenCV face cascade XML -> compact file (models/)\n"
            "\n"
            "Run 'emotiond <command> --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "predict")) return cmd_predict(argc - 1, argv + 1);
    if (!strcmp(cmd, "card")) return cmd_card(argc - 1, argv + 1);
    if (!strcmp(cmd, "convert-cascade")) return cmd_convert_cascade(argc - 1, argv + 1);
    fprintf(stderr, "emotiond: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
