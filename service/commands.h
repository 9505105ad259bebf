/* commands.h - the emotiond subcommands, one file each. Each returns the
 * process exit status (0 success, 1 failure, 2 usage error), and has a
 * usage function writing its --help text (the layout of cli_help.h; the man
 * page, `emotiond help --man`, is made from the same text). */
#ifndef SERVICE_COMMANDS_H
#define SERVICE_COMMANDS_H

#include <stdio.h>

int cmd_train(int argc, char **argv);   /* service/cmd_train.c */
int cmd_eval(int argc, char **argv);    /* service/cmd_eval.c */
int cmd_predict(int argc, char **argv); /* service/cmd_predict.c */
int cmd_serve(int argc, char **argv);   /* service/cmd_serve.c */
int cmd_card(int argc, char **argv);    /* service/cmd_card.c */
int cmd_swa(int argc, char **argv);     /* service/cmd_swa.c */
int cmd_convert_cascade(int argc, char **argv); /* service/cmd_convert_cascade.c */

void cmd_train_usage(FILE *f);
void cmd_eval_usage(FILE *f);
void cmd_predict_usage(FILE *f);
void cmd_serve_usage(FILE *f);
void cmd_card_usage(FILE *f);
void cmd_swa_usage(FILE *f);
void cmd_convert_cascade_usage(FILE *f);

#endif
