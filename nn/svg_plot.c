/* svg_plot.c - see svg_plot.h. Writes with stdio; returns 0 or -1. */
#include <stdio.h>

#include "svg_plot.h"

int svg_line_chart(const char *path, const char *title, const char *xlabel,
                   const char *ylabel, const svg_series *s, int ns,
                   double ymin, double ymax)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    const int W = 640, H = 400, L = 60, R = 20, T = 40, B = 50;
    const int pw = W - L - R, ph = H - T - B;
    int n = 1;
    for (int i = 0; i < ns; i++) if (s[i].n > n) n = s[i].n;
    if (ymax <= ymin) ymax = ymin + 1;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">%s</text>\n", W / 2, title);
    for (int g = 0; g <= 5; g++) { /* horizontal grid with y labels */
        double v = ymin + (ymax - ymin) * g / 5;
        double y = T + ph - ph * (v - ymin) / (ymax - ymin);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, y, L + pw, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n", L - 6, y + 4, v);
    }
    for (int g = 1; g <= n; g += (n + 9) / 10) {
        double x = L + (n == 1 ? pw / 2.0 : pw * (g - 1) / (double)(n - 1));
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", x, T + ph + 16, g);
    }
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", L, T, pw, ph);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", L + pw / 2, H - 12, xlabel);
    fprintf(f, "<text x=\"14\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 14 %d)\">%s</text>\n",
            T + ph / 2, T + ph / 2, ylabel);
    for (int i = 0; i < ns; i++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", s[i].color);
        for (int j = 0; j < s[i].n; j++) {
            double v = s[i].y[j];
            if (v < ymin) v = ymin;
            if (v > ymax) v = ymax;
            double x = L + (n == 1 ? pw / 2.0 : pw * j / (double)(n - 1));
            fprintf(f, "%.1f,%.1f ", x, T + ph - ph * (v - ymin) / (ymax - ymin));
        }
        fprintf(f, "\"/>\n");
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"3\" fill=\"%s\"/>"
                   "<text x=\"%d\" y=\"%d\">%s</text>\n",
                L + 10, T + 12 + 16 * i, s[i].color, L + 28, T + 17 + 16 * i, s[i].name);
    }
    fprintf(f, "</svg>\n");
    return fclose(f) ? -1 : 0;
}

int svg_confusion(const char *path, const char *title, const int *conf, int K,
                  const char *const *names)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    const int cell = 56, L = 90, T = 60;
    const int W = L + K * cell + 20, H = T + K * cell + 50;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"20\" text-anchor=\"middle\" font-size=\"15\">%s</text>\n", W / 2, title);
    for (int i = 0; i < K; i++) {
        long row = 0;
        for (int j = 0; j < K; j++) row += conf[i * K + j];
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", L - 6, T + i * cell + cell / 2 + 4, names[i]);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", L + i * cell + cell / 2, T - 8, names[i]);
        for (int j = 0; j < K; j++) {
            double r = row ? (double)conf[i * K + j] / row : 0; /* row-normalised: recall */
            int shade = 255 - (int)(r * 200);
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,255)\" stroke=\"#fff\"/>",
                    L + j * cell, T + i * cell, cell, cell, shade, shade);
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d</text>\n",
                    L + j * cell + cell / 2, T + i * cell + cell / 2 + 4, conf[i * K + j]);
        }
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">predicted (columns) vs true (rows)</text>\n",
            L + K * cell / 2, T + K * cell + 30);
    fprintf(f, "</svg>\n");
    return fclose(f) ? -1 : 0;
}
