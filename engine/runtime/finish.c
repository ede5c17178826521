#include "runtime/finish.h"

static bool is_stop_id(const ig_finish_rule *r, int32_t tok)
{
    for (int i = 0; i < r->n_stop_ids; i++)
        if (tok == r->stop_ids[i]) return true;
    if (!r->ignore_eos)
        for (int i = 0; i < r->n_eos; i++)
            if (tok == r->eos[i]) return true;
    return false;
}

ignis_finish_reason ig_finish_after_token(const ig_finish_rule *r, int32_t tok, bool stop_word, int n_gen, int n_tokens)
{
    if (stop_word || is_stop_id(r, tok)) return IGNIS_FINISH_STOP;
    if (r->max_new_tokens > 0 && n_gen >= r->max_new_tokens) return IGNIS_FINISH_LENGTH;
    if (n_tokens >= r->max_len) return IGNIS_FINISH_CAPACITY;
    return IGNIS_FINISH_NONE;
}

const char *ignis_finish_reason_name(ignis_finish_reason r)
{
    switch (r) {
    case IGNIS_FINISH_NONE:
        return "none";
    case IGNIS_FINISH_LENGTH:
        return "length";
    case IGNIS_FINISH_STOP:
        return "stop";
    case IGNIS_FINISH_CALLBACK:
        return "callback";
    case IGNIS_FINISH_CANCELLED:
        return "cancelled";
    case IGNIS_FINISH_CAPACITY:
        return "capacity";
    case IGNIS_FINISH_ERROR:
        return "error";
    }
    return "?";
}
