#include "lst/error.h"
#include <stddef.h>

struct err_desc {
    const char *name;
    const char *text;
};

/* Indexed by lst_err; the unit test checks every code has an entry. */
static const struct err_desc descs[LST_ERR__COUNT] = {
    [LST_OK] = {"ok", "success"},
    [LST_ERR_NOMEM] = {"nomem", "out of memory"},
    [LST_ERR_INVALID] = {"invalid", "invalid input"},
    [LST_ERR_RANGE] = {"range", "value out of range"},
    [LST_ERR_TOO_LARGE] = {"too_large", "value too large"},
    [LST_ERR_UTF8] = {"utf8", "invalid UTF-8"},
    [LST_ERR_VERSION] = {"version", "unknown schema version"},
    [LST_ERR_NOT_FOUND] = {"not_found", "not found"},
    [LST_ERR_IO] = {"io", "input/output error"},
    [LST_ERR_TIMEOUT] = {"timeout", "timed out"},
    [LST_ERR_CONFIG] = {"config", "configuration error"},
    [LST_ERR_KAFKA] = {"kafka", "kafka error"},
    [LST_ERR_KAFKA_FATAL] = {"kafka_fatal", "fatal kafka producer error"},
    [LST_ERR_REDIS] = {"redis", "redis error"},
    [LST_ERR_HTTP] = {"http", "http error"},
    [LST_ERR_CRYPTO] = {"crypto", "authentication or decryption failed"},
    [LST_ERR_STATE] = {"state", "invalid state"},
    [LST_ERR_SHUTDOWN] = {"shutdown", "shutting down"},
};

static const struct err_desc *desc_of(lst_err err)
{
    if ((int)err < 0 || err >= LST_ERR__COUNT || descs[err].name == NULL)
        return NULL;
    return &descs[err];
}

const char *lst_strerror(lst_err err)
{
    const struct err_desc *d = desc_of(err);
    return d ? d->text : "unknown error";
}

const char *lst_err_name(lst_err err)
{
    const struct err_desc *d = desc_of(err);
    return d ? d->name : "unknown";
}
