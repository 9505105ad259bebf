/* svg_plot.h - small dependency-free SVG charts for training curves and the
 * model card. */
#ifndef NN_SVG_PLOT_H
#define NN_SVG_PLOT_H

typedef struct {
    const char *name;
    const char *color;
    const double *y;
    int n;            /* points at x = 1..n */
} svg_series;

/* Line chart of the series against x = 1..n on the y range [ymin, ymax]. */
int svg_line_chart(const char *path, const char *title, const char *xlabel,
                   const char *ylabel, const svg_series *s, int ns,
                   double ymin, double ymax);

/* Confusion matrix heat map; rows are true classes, columns predictions. */
int svg_confusion(const char *path, const char *title, const int *conf, int K,
                  const char *const *names);

#endif
