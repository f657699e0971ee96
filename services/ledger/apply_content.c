/* Content fields of a message hash (both directions), as key/value script
 * arguments. Field names are the projection's (docs/ledger.md), not the
 * record's. */
#include "ledger.h"

static lst_err file_kv(struct ledger_args *a, const struct lst_content *m, int64_t *n)
{
    ledger_args_kv(a, "blob", m->blob, n);
    ledger_args_kv(a, "mime", m->mime, n);
    ledger_args_kv_i64(a, "size", m->size, n);
    ledger_args_kv(a, "filename", m->filename, n);
    ledger_args_kv(a, "caption", m->caption, n);
    ledger_args_kv(a, "thumb", m->thumbnail_blob, n);
    ledger_args_kv(a, "thumb_mime", m->thumbnail_mime, n);
    ledger_args_kv(a, "tblob", m->threema_blob_id, n);
    return ledger_args_kv(a, "blob_error", m->blob_error, n);
}

static lst_err location_kv(struct ledger_args *a, const struct lst_content *m, int64_t *n)
{
    ledger_args_str(a, "lat");
    ledger_args_dbl(a, m->lat);
    ledger_args_str(a, "lon");
    ledger_args_dbl(a, m->lon);
    *n += 2;
    if (m->has_accuracy) {
        ledger_args_str(a, "acc");
        ledger_args_dbl(a, m->accuracy);
        (*n)++;
    }
    ledger_args_kv(a, "place", m->name, n);
    return ledger_args_kv(a, "addr", m->address, n);
}

lst_err ledger_content_kv(struct ledger_args *a, const struct lst_content *m, int64_t *n)
{
    switch (m->kind) {
    case LST_CONTENT_TEXT:
        ledger_args_kv(a, "text", m->text, n);
        break;
    case LST_CONTENT_FILE:
    case LST_CONTENT_IMAGE:
        file_kv(a, m, n);
        break;
    case LST_CONTENT_LOCATION:
        location_kv(a, m, n);
        break;
    case LST_CONTENT_UNSUPPORTED:
    case LST_CONTENT_UNDECODABLE:
        if (m->has_type)
            ledger_args_kv_i64(a, "type", m->type, n);
        ledger_args_kv(a, "reason", m->reason, n);
        break;
    case LST_CONTENT_TYPING:
    case LST_CONTENT__COUNT:
        break;
    }
    return lst_buf_failed(&a->buf) ? LST_ERR_NOMEM : LST_OK;
}
