#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One message per thread: the scheduler thread and callers fail independently. */
static _Thread_local char tl_msg[1024];

const char *ignis_last_error(void) { return tl_msg; }

void ig_err_clear(void) { tl_msg[0] = 0; }

ignis_status ig_err(ignis_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    va_end(ap);
    return s;
}

ignis_status ig_err_prefix(ignis_status s, const char *fmt, ...)
{
    char old[sizeof tl_msg];
    memcpy(old, tl_msg, sizeof old);
    char pre[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    /* truncation is acceptable: a message is a single line for a human */
    size_t np = strnlen(pre, sizeof tl_msg - 1), no = strnlen(old, sizeof tl_msg - 1 - np);
    memcpy(tl_msg, pre, np);
    memcpy(tl_msg + np, old, no);
    tl_msg[np + no] = 0;
    return s;
}

const char *ignis_status_name(ignis_status s)
{
    switch (s) {
    case IGNIS_OK:
        return "ok";
    case IGNIS_E_ARG:
        return "invalid argument";
    case IGNIS_E_IO:
        return "I/O error";
    case IGNIS_E_FORMAT:
        return "malformed input";
    case IGNIS_E_UNSUPPORTED:
        return "unsupported";
    case IGNIS_E_NOMEM:
        return "out of memory";
    case IGNIS_E_DEVICE:
        return "device error";
    case IGNIS_E_CAPACITY:
        return "capacity exceeded";
    case IGNIS_E_CANCELLED:
        return "cancelled";
    case IGNIS_E_STATE:
        return "invalid state";
    case IGNIS_E_NOT_FOUND:
        return "not found";
    case IGNIS_E_INTERNAL:
        return "internal error";
    }
    return "unknown status";
}

const char *ignis_version(void) { return IGNIS_VERSION; }

static ignis_log_level g_level = IGNIS_LOG_WARN;
static ignis_log_fn g_fn = NULL;
static void *g_user = NULL;
static bool g_custom = false;

void ignis_set_log(ignis_log_level level, ignis_log_fn fn, void *user)
{
    g_level = level;
    g_fn = fn;
    g_user = user;
    g_custom = true;
}

bool ig_log_enabled(ignis_log_level level)
{
    if (g_custom && !g_fn) return false;
    return level <= g_level;
}

void ig_log(ignis_log_level level, const char *fmt, ...)
{
    if (!ig_log_enabled(level)) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_fn) {
        g_fn(g_user, level, msg);
    } else {
        static const char *names[] = {"error", "warning", "info", "debug"};
        fprintf(stderr, "ignis %s: %s\n", names[level], msg);
    }
}
