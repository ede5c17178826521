/* Error reporting inside the library: set a thread-local message and return the code. */
#ifndef IG_ERROR_H
#define IG_ERROR_H

#include "ignis.h"

#if defined(__GNUC__)
#define IG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define IG_PRINTF(a, b)
#endif

/* Records "msg" as the calling thread's last error and returns `s`, so failures read as
 * `return ig_err(IGNIS_E_FORMAT, "%s: tensor %s: ...", path, name);`. */
ignis_status ig_err(ignis_status s, const char *fmt, ...) IG_PRINTF(2, 3);
/* Prefixes the current message with context ("loading workspace: " + old message). */
ignis_status ig_err_prefix(ignis_status s, const char *fmt, ...) IG_PRINTF(2, 3);
void ig_err_clear(void);

/* Library logging through the caller's sink (ignis_set_log). */
void ig_log(ignis_log_level level, const char *fmt, ...) IG_PRINTF(2, 3);
bool ig_log_enabled(ignis_log_level level);

#define IG_TRY(expr)                                                                                                   \
    do {                                                                                                               \
        ignis_status ig_try_s_ = (expr);                                                                               \
        if (ig_try_s_ != IGNIS_OK) return ig_try_s_;                                                                   \
    } while (0)

#endif
