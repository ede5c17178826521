/*
 * dev_flags.h — one bit per CUDA device ordinal, read and written atomically: the kernel
 * launchers' per-device state. A function attribute such as the dynamic shared-memory
 * limit belongs to one device's context, so "already raised" must be remembered per
 * device (a single process-wide flag would leave the second GPU of `--tp 2` without it),
 * and rank threads of different devices update it concurrently. Plain C with the GCC
 * atomic builtins, so the host compiler of both C and CUDA files accepts it and its
 * bookkeeping is tested without a GPU (tests/backend/test_dev_flags.c).
 */
#ifndef IG_DEV_FLAGS_H
#define IG_DEV_FLAGS_H

#include <stdbool.h>

#define IG_MAX_DEVICES 256

typedef struct ig_dev_flags {
    unsigned long long w[IG_MAX_DEVICES / 64]; /* bit (dev % 64) of word dev / 64; zero-initialized: all clear */
} ig_dev_flags;

/* Whether device dev's bit is set (false for an ordinal out of range: callers then redo
 * their per-device work every time, which is correct, only slower). */
static inline bool ig_dev_flags_get(const ig_dev_flags *f, int dev)
{
    if (dev < 0 || dev >= IG_MAX_DEVICES) return false;
    return (__atomic_load_n(&f->w[dev / 64], __ATOMIC_ACQUIRE) >> (dev % 64)) & 1ull;
}

/* Sets (on) or clears device dev's bit; other devices' bits are untouched even when
 * another thread updates them at the same time. Out-of-range ordinals are ignored. */
static inline void ig_dev_flags_put(ig_dev_flags *f, int dev, bool on)
{
    if (dev < 0 || dev >= IG_MAX_DEVICES) return;
    unsigned long long bit = 1ull << (dev % 64);
    if (on)
        __atomic_fetch_or(&f->w[dev / 64], bit, __ATOMIC_RELEASE);
    else
        __atomic_fetch_and(&f->w[dev / 64], ~bit, __ATOMIC_RELEASE);
}

/* Whether any device's bit is set (a launcher's fast path skips the device query when
 * none is). */
static inline bool ig_dev_flags_any(const ig_dev_flags *f)
{
    for (int i = 0; i < IG_MAX_DEVICES / 64; i++)
        if (__atomic_load_n(&f->w[i], __ATOMIC_ACQUIRE)) return true;
    return false;
}

#endif
