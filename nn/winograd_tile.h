/* winograd_tile.h - what the per-tile transforms of winograd_f43.c and
 * winograd_f63.c share: their 1-D passes are inlined into each
 * target_clones clone (NN_WINO_CLONES), and their channel loops are marked
 * free of aliasing between the rows they read and write (GCC; clang
 * vectorises them without the hint). */
#ifndef NN_WINOGRAD_TILE_H
#define NN_WINOGRAD_TILE_H

#if defined(__GNUC__) && !defined(__clang__)
#define IVDEP _Pragma("GCC ivdep")
#else
#define IVDEP
#endif
#define INLINE static inline __attribute__((always_inline))

#endif
