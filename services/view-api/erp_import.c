/* POST /api/admin/erp-import: employee master data from the ERP, as CSV (the columns of
 * demo/erp-export.csv, found by header name) or JSON. Every row is validated first; a single
 * bad row rejects the whole import (422 listing the bad rows), so the directory never holds
 * half an import. Valid imports are compared with the ledger's directory projection and only
 * what changed is produced to lst.employees (?force=true produces every row), each record
 * waited for. mode=full also deactivates every active employee missing from the import.
 * The report says what was created, updated, deactivated and left unchanged.
 *
 * An employee on the ledger's erased list is not re-created: the ERP keeps former employees
 * for years, and a routine import must not undo a GDPR erasure a day later. Such rows are
 * left out and reported as "erased". ?readmit=<id>,... names the ones an admin brings back
 * on purpose (a former driver hired again); each gets a "readmit" entry in the audit log,
 * produced with the records and waited for like them.
 *
 * The comparison reads the projection, which lags Kafka by the ledger's apply time: two imports
 * in quick succession may both report the same change (the second record is harmless, the
 * ledger keeps the newer updated_at). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lst/log.h"
#include "view_api.h"

#define ERRORS_LISTED 100
#define LOOKUP_CHUNK  500

struct import {
    struct lst_employee *rows;
    int *lines; /* CSV line or JSON index (from 1) of each row */
    size_t n, cap;
    struct lst_buf errors; /* JSON items */
    size_t nerrors;
    bool full, force;
    int64_t now;
    struct lst_strv readmit; /* ?readmit=: erased IDs to re-create */
};

struct change_set {
    struct lst_strv created, updated, unchanged, deactivated;
    struct lst_strv erased;     /* rows left out: the employee was erased */
    struct lst_strv readmitted; /* erased, re-created on request (also in created) */
};

static void import_cleanup(struct import *im)
{
    for (size_t i = 0; i < im->n; i++)
        lst_employee_cleanup(&im->rows[i]);
    free(im->rows);
    free(im->lines);
    lst_buf_cleanup(&im->errors);
    lst_strv_cleanup(&im->readmit);
}

static void changes_cleanup(struct change_set *c)
{
    lst_strv_cleanup(&c->created);
    lst_strv_cleanup(&c->updated);
    lst_strv_cleanup(&c->unchanged);
    lst_strv_cleanup(&c->deactivated);
    lst_strv_cleanup(&c->erased);
    lst_strv_cleanup(&c->readmitted);
}

static void add_error(struct import *im, int line, const char *id, const char *reason)
{
    if (im->nerrors++ >= ERRORS_LISTED)
        return;
    if (im->errors.len > 0)
        lst_buf_puts(&im->errors, ",");
    lst_buf_printf(&im->errors, "{\"row\":%d", line);
    va_json_kv(&im->errors, true, "employee_id", id);
    va_json_kv(&im->errors, true, "reason", reason);
    lst_buf_puts(&im->errors, "}");
}

static struct lst_employee *new_row(struct import *im, int line)
{
    if (im->n == im->cap) {
        size_t cap = im->cap ? im->cap * 2 : 256;
        struct lst_employee *rows = realloc(im->rows, cap * sizeof(*rows));
        if (rows == NULL)
            return NULL;
        im->rows = rows;
        int *lines = realloc(im->lines, cap * sizeof(*lines));
        if (lines == NULL)
            return NULL;
        im->lines = lines;
        im->cap = cap;
    }
    memset(&im->rows[im->n], 0, sizeof(im->rows[0]));
    im->lines[im->n] = line;
    return &im->rows[im->n++];
}

/* Validates the row with the codec (field name and reason) and drops it when invalid. */
static void check_row(struct import *im)
{
    struct lst_employee *e = &im->rows[im->n - 1];
    struct lst_buf why;
    lst_buf_init(&why);
    e->updated_at = im->now;
    if (e->source == NULL)
        e->source = lst_strdup("erp");
    if (lst_employee_validate(e, &why) != LST_OK) {
        add_error(im, im->lines[im->n - 1], e->employee_id, why.data ? why.data : "invalid");
        lst_employee_cleanup(e);
        im->n--;
    }
    lst_buf_cleanup(&why);
}

/* ---- CSV ---- */

enum col {
    C_ID,
    C_FIRST,
    C_LAST,
    C_NAME,
    C_DEPOT,
    C_DEPARTMENT,
    C_VEHICLE,
    C_SHIFT,
    C_PHONE,
    C_EMAIL,
    C_ACTIVE,
    C_TAGS,
    C_THREEMA,
    C__COUNT
};

static const char *const COLS[C__COUNT][2] = {
    {"employee_no", "employee_id"},
    {"first_name", NULL},
    {"last_name", NULL},
    {"name", NULL},
    {"depot", NULL},
    {"department", NULL},
    {"vehicle", NULL},
    {"shift", NULL},
    {"phone", NULL},
    {"email", NULL},
    {"active", NULL},
    {"tags", NULL},
    {"threema_id", NULL},
};

static bool map_header(const struct lst_strv *h, int idx[C__COUNT], struct import *im)
{
    for (int c = 0; c < C__COUNT; c++) {
        idx[c] = -1;
        for (size_t i = 0; i < h->len; i++) {
            if (strcasecmp(h->items[i], COLS[c][0]) == 0 ||
                (COLS[c][1] != NULL && strcasecmp(h->items[i], COLS[c][1]) == 0))
                idx[c] = (int)i;
        }
    }
    if (idx[C_ID] < 0)
        add_error(im, 1, NULL, "missing column employee_no (or employee_id)");
    if (idx[C_NAME] < 0 && (idx[C_FIRST] < 0 || idx[C_LAST] < 0))
        add_error(im, 1, NULL, "missing columns first_name and last_name (or name)");
    return im->nerrors == 0;
}

static const char *col(const struct lst_strv *f, const int idx[C__COUNT], enum col c)
{
    if (idx[c] < 0 || (size_t)idx[c] >= f->len || f->items[idx[c]][0] == '\0')
        return NULL;
    return f->items[idx[c]];
}

static char *opt_dup(const char *s)
{
    return s != NULL ? lst_strdup(s) : NULL;
}

static void push_prefixed(struct lst_strv *tags, const char *prefix, const char *v)
{
    struct lst_buf b;
    if (v == NULL)
        return;
    lst_buf_init(&b);
    lst_buf_puts(&b, prefix);
    lst_buf_puts(&b, v);
    if (!lst_buf_failed(&b))
        lst_strv_push(tags, b.data);
    lst_buf_cleanup(&b);
}

/* "a;b;c" plus depot:<depot> and shift:<shift>, so selectors can address a depot or a shift
 * (lst.employees has no fields for them). */
static void csv_tags(struct lst_employee *e, const char *tags, const char *depot, const char *shift)
{
    const char *p = tags;
    while (p != NULL && *p != '\0') {
        size_t len = strcspn(p, ";");
        char item[LST_TAG_MAX + 2];
        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        size_t n = len;
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n > 0) {
            /* too long: keep a cut so the codec's check names the problem */
            size_t keep = n < sizeof(item) - 1 ? n : sizeof(item) - 1;
            memcpy(item, p, keep);
            item[keep] = '\0';
            lst_strv_push(&e->tags, item);
        }
        p += len;
        if (*p == ';')
            p++;
    }
    push_prefixed(&e->tags, "depot:", depot);
    push_prefixed(&e->tags, "shift:", shift);
}

static bool csv_active(const char *v, bool *out)
{
    if (v == NULL) {
        *out = true;
        return true;
    }
    return lst_parse_bool(v, out) == LST_OK;
}

static void csv_row(struct import *im, const struct lst_strv *f, const int idx[C__COUNT], int line)
{
    struct lst_employee *e = new_row(im, line);
    const char *name = col(f, idx, C_NAME);
    const char *tid = col(f, idx, C_THREEMA);
    if (e == NULL) {
        add_error(im, line, NULL, "out of memory");
        return;
    }
    e->employee_id = opt_dup(col(f, idx, C_ID));
    if (name != NULL) {
        e->name = lst_strdup(name);
    } else if (col(f, idx, C_FIRST) != NULL || col(f, idx, C_LAST) != NULL) {
        struct lst_buf b;
        lst_buf_init(&b);
        lst_buf_printf(&b, "%s%s%s", col(f, idx, C_FIRST) ? col(f, idx, C_FIRST) : "",
                       col(f, idx, C_FIRST) && col(f, idx, C_LAST) ? " " : "",
                       col(f, idx, C_LAST) ? col(f, idx, C_LAST) : "");
        e->name = lst_buf_steal(&b);
        lst_buf_cleanup(&b);
    }
    e->department = opt_dup(col(f, idx, C_DEPARTMENT));
    e->vehicle = opt_dup(col(f, idx, C_VEHICLE));
    e->phone = opt_dup(col(f, idx, C_PHONE));
    e->email = opt_dup(col(f, idx, C_EMAIL));
    /* "none": the driver does not use Threema; the row stays (history, lookups fail) */
    e->threema_id = tid != NULL && strcmp(tid, "none") != 0 ? lst_strdup(tid) : NULL;
    csv_tags(e, col(f, idx, C_TAGS), col(f, idx, C_DEPOT), col(f, idx, C_SHIFT));
    if (!csv_active(col(f, idx, C_ACTIVE), &e->active)) {
        add_error(im, line, e->employee_id, "active: expected 1, 0, true or false");
        lst_employee_cleanup(e);
        im->n--;
        return;
    }
    check_row(im);
}

static bool all_empty(const struct lst_strv *f)
{
    for (size_t i = 0; i < f->len; i++) {
        if (f->items[i][0] != '\0')
            return false;
    }
    return true;
}

static void parse_csv(struct import *im, const char *data, size_t len)
{
    struct va_csv c;
    struct lst_strv header = {0};
    int idx[C__COUNT];
    const char *why = NULL;
    va_csv_init(&c, data, len);
    if (va_csv_next(&c, &header, &why) != 1) {
        add_error(im, 1, NULL, why != NULL ? why : "empty file: a header row is required");
        goto out;
    }
    if (!map_header(&header, idx, im))
        goto out;
    while (1) {
        struct lst_strv f = {0};
        int rc = va_csv_next(&c, &f, &why);
        if (rc < 0)
            add_error(im, c.record_line, NULL, why);
        else if (rc > 0 && !all_empty(&f) && f.len != header.len) {
            struct lst_buf b;
            lst_buf_init(&b);
            lst_buf_printf(&b, "expected %zu fields, found %zu", header.len, f.len);
            add_error(im, c.record_line, f.len > 0 ? f.items[0] : NULL, b.data);
            lst_buf_cleanup(&b);
        } else if (rc > 0 && !all_empty(&f)) {
            csv_row(im, &f, idx, c.record_line);
        }
        lst_strv_cleanup(&f);
        if (rc <= 0)
            break;
    }
out:
    lst_strv_cleanup(&header);
}

/* ---- JSON ---- */

static bool json_str(struct json_object *o, const char *name, size_t max, char **out,
                     struct lst_buf *why)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
        return true;
    if (!json_object_is_type(v, json_type_string)) {
        lst_buf_printf(why, "%s: expected a string", name);
        return false;
    }
    if ((size_t)json_object_get_string_len(v) > max) {
        lst_buf_printf(why, "%s: longer than %zu bytes", name, max);
        return false;
    }
    if (json_object_get_string_len(v) > 0)
        *out = lst_strdup(json_object_get_string(v));
    return true;
}

static bool json_employee(struct json_object *o, struct lst_employee *e, struct lst_buf *why)
{
    struct json_object *v = NULL;
    if (!json_object_is_type(o, json_type_object)) {
        lst_buf_puts(why, "expected an object");
        return false;
    }
    if (!json_str(o, "employee_id", LST_EMPLOYEE_ID_MAX, &e->employee_id, why) ||
        !json_str(o, "name", LST_NAME_MAX, &e->name, why) ||
        !json_str(o, "department", LST_LABEL_MAX, &e->department, why) ||
        !json_str(o, "vehicle", LST_LABEL_MAX, &e->vehicle, why) ||
        !json_str(o, "threema_id", LST_THREEMA_ID_LEN, &e->threema_id, why) ||
        !json_str(o, "phone", LST_PHONE_MAX, &e->phone, why) ||
        !json_str(o, "email", LST_EMAIL_MAX, &e->email, why))
        return false;
    if (json_object_object_get_ex(o, "tags", &v) &&
        !va_json_strv(v, "tags", LST_TAGS_MAX, LST_TAG_MAX, &e->tags, why))
        return false;
    e->active = true;
    if (json_object_object_get_ex(o, "active", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) {
            lst_buf_puts(why, "active: expected true or false");
            return false;
        }
        e->active = json_object_get_boolean(v);
    }
    return true;
}

static void parse_json(struct import *im, struct json_object *body)
{
    struct json_object *arr = NULL, *mode = NULL;
    if (json_object_object_get_ex(body, "mode", &mode)) {
        const char *m = json_object_get_string(mode);
        if (!json_object_is_type(mode, json_type_string) ||
            (strcmp(m, "full") != 0 && strcmp(m, "upsert") != 0)) {
            add_error(im, 0, NULL, "mode: full or upsert");
            return;
        }
        im->full = strcmp(m, "full") == 0;
    }
    if (!json_object_object_get_ex(body, "employees", &arr) ||
        !json_object_is_type(arr, json_type_array)) {
        add_error(im, 0, NULL, "employees: expected an array of employee objects");
        return;
    }
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        struct lst_buf why;
        struct lst_employee *e = new_row(im, (int)i + 1);
        lst_buf_init(&why);
        if (e == NULL) {
            add_error(im, (int)i + 1, NULL, "out of memory");
        } else if (!json_employee(json_object_array_get_idx(arr, i), e, &why)) {
            add_error(im, (int)i + 1, e->employee_id, why.data);
            lst_employee_cleanup(e);
            im->n--;
        } else {
            check_row(im);
        }
        lst_buf_cleanup(&why);
    }
}

/* ---- duplicates, comparison, full sync ---- */

static int cmp_row(const void *a, const void *b)
{
    const struct lst_employee *x = a, *y = b;
    return strcmp(x->employee_id, y->employee_id);
}

static void sort_and_check_duplicates(struct import *im)
{
    /* the lines travel with the rows: sort pairs through a temporary index */
    size_t n = im->n;
    struct pair {
        struct lst_employee e;
        int line;
    } *p = malloc((n ? n : 1) * sizeof(*p));
    if (p == NULL) {
        add_error(im, 0, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        p[i].e = im->rows[i];
        p[i].line = im->lines[i];
    }
    qsort(p, n, sizeof(*p), cmp_row);
    for (size_t i = 0; i < n; i++) {
        im->rows[i] = p[i].e;
        im->lines[i] = p[i].line;
        if (i > 0 && strcmp(p[i].e.employee_id, p[i - 1].e.employee_id) == 0)
            add_error(im, p[i].line, p[i].e.employee_id, "employee_id: duplicate in this import");
    }
    free(p);
}

static bool strv_eq(const struct lst_strv *a, const struct lst_strv *b)
{
    if (a->len != b->len)
        return false;
    for (size_t i = 0; i < a->len; i++) {
        if (strcmp(a->items[i], b->items[i]) != 0)
            return false;
    }
    return true;
}

static bool str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool same(const struct lst_employee *e, const struct va_employee *d)
{
    return str_eq(e->name, d->name) && str_eq(e->department, d->department) &&
           str_eq(e->vehicle, d->vehicle) && strv_eq(&e->tags, &d->tags) &&
           e->active == d->active && str_eq(e->threema_id, d->threema_id) &&
           str_eq(e->phone, d->phone) && str_eq(e->email, d->email);
}

/* Sorts one row: an erased employee stays out unless readmitted (then created, as a new one). */
static struct lst_strv *classify_row(const struct import *im, const struct lst_employee *e,
                                     bool found, const struct va_employee *d, bool erased,
                                     struct change_set *cs)
{
    if (erased && !lst_strv_has(&im->readmit, e->employee_id))
        return &cs->erased;
    if (erased)
        lst_strv_push(&cs->readmitted, e->employee_id);
    return erased || !found ? &cs->created : !same(e, d) ? &cs->updated : &cs->unchanged;
}

/* Classifies rows [from, from + n) against the directory; changed[i] marks what to produce. */
static lst_err classify_chunk(struct view_api *ctx, struct import *im, size_t from, size_t n,
                              bool *changed, struct change_set *cs)
{
    struct va_employee *d = calloc(n, sizeof(*d));
    bool *found = calloc(n, sizeof(*found)), *erased = calloc(n, sizeof(*erased));
    const char **ids = calloc(n, sizeof(*ids));
    lst_err result =
        d == NULL || found == NULL || erased == NULL || ids == NULL ? LST_ERR_NOMEM : LST_OK;
    for (size_t i = 0; i < n && result == LST_OK; i++)
        ids[i] = im->rows[from + i].employee_id;
    if (result == LST_OK)
        result = va_directory_get(ctx, ids, n, d, found);
    if (result == LST_OK)
        result = va_directory_erased(ctx, ids, n, erased);
    for (size_t i = 0; i < n && result == LST_OK; i++) {
        const struct lst_employee *e = &im->rows[from + i];
        struct lst_strv *to = classify_row(im, e, found[i], &d[i], erased[i], cs);
        lst_strv_push(to, e->employee_id);
        changed[from + i] =
            to == &cs->created || to == &cs->updated || (to == &cs->unchanged && im->force);
    }
    for (size_t i = 0; d != NULL && i < n; i++)
        va_employee_cleanup(&d[i]);
    free(d);
    free(found);
    free(erased);
    free(ids);
    return result;
}

static bool imported(const struct import *im, const char *id)
{
    struct lst_employee key = {.employee_id = (char *)(uintptr_t)id};
    return bsearch(&key, im->rows, im->n, sizeof(im->rows[0]), cmp_row) != NULL;
}

/* The record that deactivates a directory entry: its data as projected, active false. */
static lst_err deactivation(const struct va_employee *d, int64_t now, struct lst_employee *e)
{
    memset(e, 0, sizeof(*e));
    e->employee_id = lst_strdup(d->id);
    e->name = lst_strdup(d->name != NULL ? d->name : d->id);
    e->department = opt_dup(d->department);
    e->vehicle = opt_dup(d->vehicle);
    for (size_t i = 0; i < d->tags.len; i++)
        lst_strv_push(&e->tags, d->tags.items[i]);
    e->threema_id = opt_dup(d->threema_id);
    e->phone = opt_dup(d->phone);
    e->email = opt_dup(d->email);
    e->active = false;
    e->updated_at = now;
    e->source = lst_strdup("erp");
    return lst_employee_validate(e, NULL);
}

/* Active directory entries missing from the import (full sync). */
static lst_err missing_active(struct view_api *ctx, const struct import *im,
                              struct lst_employee **out, size_t *nout, struct change_set *cs)
{
    lst_err result = LST_OK;
    char *after = NULL;
    size_t cap = 0;
    while (result == LST_OK) {
        struct lst_strv ids = {0}, gone = {0};
        result = va_directory_ids(ctx, after, LOOKUP_CHUNK, &ids);
        for (size_t i = 0; i < ids.len && result == LST_OK; i++) {
            if (!imported(im, ids.items[i]))
                result = lst_strv_push(&gone, ids.items[i]);
        }
        struct va_employee *d = calloc(gone.len ? gone.len : 1, sizeof(*d));
        bool *found = calloc(gone.len ? gone.len : 1, sizeof(*found));
        if (result == LST_OK && (d == NULL || found == NULL))
            result = LST_ERR_NOMEM;
        if (result == LST_OK)
            result = va_directory_get(ctx, (const char *const *)gone.items, gone.len, d, found);
        for (size_t i = 0; i < gone.len && result == LST_OK; i++) {
            if (!found[i] || !d[i].active)
                continue;
            if (*nout == cap) {
                cap = cap ? cap * 2 : 64;
                struct lst_employee *grown = realloc(*out, cap * sizeof(**out));
                if (grown == NULL) {
                    result = LST_ERR_NOMEM;
                    break;
                }
                *out = grown;
            }
            if (deactivation(&d[i], im->now, &(*out)[*nout]) == LST_OK) {
                lst_strv_push(&cs->deactivated, d[i].id);
                (*nout)++;
            } else {
                lst_employee_cleanup(&(*out)[*nout]);
            }
        }
        for (size_t i = 0; d != NULL && i < gone.len; i++)
            va_employee_cleanup(&d[i]);
        free(d);
        free(found);
        bool last = ids.len < LOOKUP_CHUNK;
        free(after);
        after = ids.len > 0 ? lst_strdup(ids.items[ids.len - 1]) : NULL;
        lst_strv_cleanup(&ids);
        lst_strv_cleanup(&gone);
        if (last)
            break;
    }
    free(after);
    return result;
}

/* ---- producing and the report ---- */

static lst_err produce_one(struct view_api *ctx, struct va_batch *b, const struct lst_employee *e,
                           struct lst_buf *enc)
{
    lst_err err = lst_employee_encode(e, enc);
    if (err == LST_OK)
        err = va_batch_produce(b, ctx->svc->producer, ctx->topic_employees, e->employee_id,
                               enc->data, enc->len);
    return err;
}

/* The audit entries of the re-admissions, in the batch of the records they let through. */
static lst_err produce_readmits(struct va_req *r, struct va_batch *b,
                                const struct lst_strv *readmitted, struct lst_buf *enc)
{
    lst_err err = LST_OK;
    for (size_t i = 0; i < readmitted->len && err == LST_OK; i++) {
        const char *eid = readmitted->items[i];
        char id[LST_MESSAGE_ID_LEN + 1];
        lst_buf_reset(enc);
        err = va_audit_encode(r, LST_AUDIT_READMIT, eid, "erp-import", id, enc);
        if (err == LST_OK)
            err = va_batch_produce(b, r->ctx->svc->producer, r->ctx->topic_audit, eid, enc->data,
                                   enc->len);
    }
    return err;
}

static lst_err produce_all(struct va_req *r, const struct import *im, const bool *changed,
                           const struct change_set *cs, const struct lst_employee *deact,
                           size_t ndeact, size_t *produced)
{
    struct view_api *ctx = r->ctx;
    struct va_batch *b = NULL;
    struct lst_buf enc;
    size_t acked = 0;
    lst_err err = va_batch_create(&b);
    lst_buf_init(&enc);
    if (err == LST_OK)
        err = produce_readmits(r, b, &cs->readmitted, &enc);
    size_t audits = cs->readmitted.len;
    for (size_t i = 0; i < im->n && err == LST_OK; i++) {
        if (changed[i])
            err = produce_one(ctx, b, &im->rows[i], &enc);
    }
    for (size_t i = 0; i < ndeact && err == LST_OK; i++)
        err = produce_one(ctx, b, &deact[i], &enc);
    if (b != NULL) {
        lst_err werr = va_batch_wait(b, ctx->cfg.kafka_wait_ms, &acked);
        if (err == LST_OK)
            err = werr;
    }
    /* the report counts lst.employees records; the audit entries came first */
    *produced = acked > audits ? acked - audits : 0;
    va_batch_release(b);
    lst_buf_cleanup(&enc);
    return err;
}

static void report_list(struct lst_buf *b, const char *name, const struct lst_strv *v)
{
    lst_buf_printf(b, ",\"%s\":{\"count\":%zu,\"ids\":", name, v->len);
    va_json_strv_out(b, v);
    lst_buf_puts(b, "}");
}

static void report(struct va_req *r, const struct import *im, const struct change_set *cs,
                   size_t produced)
{
    struct lst_buf b;
    lst_buf_init(&b);
    lst_buf_printf(&b, "{\"mode\":\"%s\",\"rows\":%zu,\"produced\":%zu",
                   im->full ? "full" : "upsert", im->n, produced);
    report_list(&b, "created", &cs->created);
    report_list(&b, "updated", &cs->updated);
    report_list(&b, "deactivated", &cs->deactivated);
    report_list(&b, "unchanged", &cs->unchanged);
    report_list(&b, "erased", &cs->erased);
    report_list(&b, "readmitted", &cs->readmitted);
    lst_buf_puts(&b, "}");
    va_reply_json(r, 200, &b);
    lst_buf_cleanup(&b);
}

static void reject(struct va_req *r, struct import *im)
{
    struct lst_buf ext, detail;
    lst_buf_init(&ext);
    lst_buf_init(&detail);
    lst_buf_printf(&ext, "\"error_count\":%zu,\"errors\":[", im->nerrors);
    lst_buf_append(&ext, im->errors.data ? im->errors.data : "", im->errors.len);
    lst_buf_puts(&ext, "]");
    lst_buf_printf(&detail, "%zu invalid row(s); nothing was imported (the first %d are listed)",
                   im->nerrors, ERRORS_LISTED);
    va_problem_ext(r->resp, 422, "invalid-import", "Invalid Import", detail.data, ext.data);
    lst_buf_cleanup(&ext);
    lst_buf_cleanup(&detail);
}

static bool parse_body(struct va_req *r, struct import *im)
{
    const char *ct = lst_http_header(r->http, "Content-Type");
    if (ct != NULL && strncasecmp(ct, "text/csv", 8) == 0) {
        if (!lst_utf8_valid(r->http->body, r->http->body_len)) {
            lst_http_problem(r->resp, 400, "invalid-csv", "Invalid CSV", "the file is not UTF-8");
            return false;
        }
        parse_csv(im, r->http->body, r->http->body_len);
        return true;
    }
    if (ct != NULL && strncasecmp(ct, "application/json", 16) == 0) {
        struct json_object *body = va_json_body_max(r, r->ctx->cfg.upload_max_body);
        if (body == NULL)
            return false;
        parse_json(im, body);
        json_object_put(body);
        return true;
    }
    lst_http_problem(r->resp, 415, "unsupported-media-type", "Unsupported Media Type",
                     "send text/csv or application/json");
    return false;
}

static const char *const import_params[] = {"mode", "force", "readmit", NULL};
const struct va_query_spec va_import_query = {"POST", "/api/admin/erp-import", import_params,
                                              false};

static bool parse_query(struct va_req *r, struct import *im)
{
    const char *mode = lst_http_query(r->http, "mode");
    const char *force = lst_http_query(r->http, "force");
    /* va_begin checked the query against va_import_query */
    if (mode != NULL && strcmp(mode, "full") != 0 && strcmp(mode, "upsert") != 0) {
        lst_http_problem(r->resp, 400, "invalid-query", "Invalid Query Parameter",
                         "mode: full or upsert");
        return false;
    }
    im->full = mode != NULL && strcmp(mode, "full") == 0;
    if (force != NULL && lst_parse_bool(force, &im->force) != LST_OK) {
        lst_http_problem(r->resp, 400, "invalid-query", "Invalid Query Parameter",
                         "force: true or false");
        return false;
    }
    struct lst_buf why;
    lst_buf_init(&why);
    bool ok = va_query_list(r->http, "readmit", LST_EMPLOYEE_ID_MAX, &im->readmit, &why);
    for (size_t i = 0; ok && i < im->readmit.len; i++) {
        ok = va_employee_id_ok(im->readmit.items[i]);
        if (!ok)
            lst_buf_printf(&why, "readmit: not an employee ID: %.64s", im->readmit.items[i]);
    }
    if (!ok)
        lst_http_problem(r->resp, 400, "invalid-query", "Invalid Query Parameter", "%s",
                         why.data != NULL ? why.data : "readmit");
    lst_buf_cleanup(&why);
    return ok;
}

/* A readmit ID must be a row of this import: a typo must not pass unnoticed. */
static bool readmits_imported(struct va_req *r, const struct import *im)
{
    for (size_t i = 0; i < im->readmit.len; i++) {
        if (!imported(im, im->readmit.items[i])) {
            lst_http_problem(r->resp, 400, "invalid-query", "Invalid Query Parameter",
                             "readmit: %.64s is not in the import", im->readmit.items[i]);
            return false;
        }
    }
    return true;
}

static void run_import(struct va_req *r, struct import *im)
{
    struct change_set cs = {0};
    struct lst_employee *deact = NULL;
    size_t ndeact = 0, produced = 0;
    bool *changed = calloc(im->n ? im->n : 1, sizeof(*changed));
    lst_err err = changed == NULL ? LST_ERR_NOMEM : LST_OK;
    for (size_t i = 0; i < im->n && err == LST_OK; i += LOOKUP_CHUNK) {
        size_t n = im->n - i < LOOKUP_CHUNK ? im->n - i : LOOKUP_CHUNK;
        err = classify_chunk(r->ctx, im, i, n, changed, &cs);
    }
    if (err == LST_OK && im->full)
        err = missing_active(r->ctx, im, &deact, &ndeact, &cs);
    if (err != LST_OK) {
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the directory could not be read; nothing was imported");
        goto out;
    }
    err = produce_all(r, im, changed, &cs, deact, ndeact, &produced);
    if (err != LST_OK) {
        lst_http_problem(r->resp, 503, "kafka-unavailable", "Kafka Unavailable",
                         "%zu record(s) acknowledged before: %s; the import is safe to repeat",
                         produced, lst_strerror(err));
        lst_http_add_header(r->resp, "Retry-After", "5");
        goto out;
    }
    LST_INFO("view_api.erp_import",
             "user=%s mode=%s rows=%zu created=%zu updated=%zu deactivated=%zu erased=%zu "
             "readmitted=%zu produced=%zu",
             r->who->user, im->full ? "full" : "upsert", im->n, cs.created.len, cs.updated.len,
             cs.deactivated.len, cs.erased.len, cs.readmitted.len, produced);
    report(r, im, &cs, produced);
out:
    for (size_t i = 0; i < ndeact; i++)
        lst_employee_cleanup(&deact[i]);
    free(deact);
    free(changed);
    changes_cleanup(&cs);
}

void va_handle_erp_import(void *ud, const struct lst_http_request *req,
                          struct lst_http_response *resp)
{
    struct va_req r;
    struct import im = {0};
    if (!va_begin(ud, req, resp, VA_ROLE_ADMIN, &r))
        return;
    lst_buf_init(&im.errors);
    im.now = lst_wall_ms();
    if (!parse_query(&r, &im) || !parse_body(&r, &im))
        goto out;
    if (im.nerrors == 0)
        sort_and_check_duplicates(&im);
    if (im.nerrors == 0 && im.n == 0)
        add_error(&im, 0, NULL, "the import holds no employees");
    if (im.nerrors > 0) {
        reject(&r, &im);
        goto out;
    }
    if (readmits_imported(&r, &im))
        run_import(&r, &im);
out:
    import_cleanup(&im);
}
