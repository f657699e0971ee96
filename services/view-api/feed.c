/* The timeline engine behind GET /api/timeline and the per-employee history, over the
 * ledger's indexes (docs/ledger.md): sorted sets of item IDs scored by time,
 *   <P>x:all, <P>x:<dim>:<value>           dims: dir, kind, emp, dep, veh, disp, st
 *   <P>xc:<category>:all, <P>xc:<category>:<dim>:<value>
 * and the item hashes <P>m:<id>.
 *
 * One page: the most selective index the filter allows drives the scan (newest first, from
 * the cursor). A batch is two pipelined rounds: the entry IDs (with the hidden categories'
 * own indexes over the same range, so hidden entries are dropped without their hashes), then
 * the hashes of the visible entries, checked against the remaining filters (category, kind,
 * direction, handled, text search on the hash; employee, department, vehicle, dispatcher, status
 * through ZSCORE in the other indexes, in the same round). A page examines at most
 * LST_VIEW_SCAN_MAX entries, then returns what it found with a cursor, so a very selective
 * filter costs bounded work per request.
 *
 * Cursor: "<score>_<id>" of the last entry examined; entries with the same score come in
 * descending ID order (ZREVRANGEBYSCORE), so the page after it starts below that pair. A page
 * looks one match beyond its limit, so the page that ends with the data has none. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view_api.h"

#define BATCH 100

void va_filter_cleanup(struct va_filter *f)
{
    lst_strv_cleanup(&f->kinds);
    lst_strv_cleanup(&f->categories);
    lst_strv_cleanup(&f->hidden);
    lst_strv_cleanup(&f->employees);
    lst_strv_cleanup(&f->departments);
    lst_strv_cleanup(&f->vehicles);
    lst_strv_cleanup(&f->dispatchers);
    lst_strv_cleanup(&f->tags);
    lst_strv_cleanup(&f->depots);
    free(f->q);
    memset(f, 0, sizeof(*f));
}

static bool parse_time(va_param_fn get, void *ud, const char *name, bool *has, int64_t *out,
                       struct lst_buf *why)
{
    const char *v = get(ud, name);
    if (v == NULL)
        return true;
    if (!va_parse_time_ms(name, v, out, why))
        return false;
    *has = true;
    return true;
}

static bool parse_status(const char *v, enum va_status_filter *out, struct lst_buf *why)
{
    if (v == NULL)
        return true;
    if (strcmp(v, "failed") == 0)
        *out = VA_ST_FAILED;
    else if (strcmp(v, "unread") == 0)
        *out = VA_ST_UNREAD;
    else if (strcmp(v, "undelivered") == 0)
        *out = VA_ST_UNDELIVERED;
    else {
        lst_buf_puts(why, "status: failed, unread or undelivered");
        return false;
    }
    return true;
}

static bool parse_handled(const char *v, enum va_handled_filter *out, struct lst_buf *why)
{
    if (v == NULL)
        return true;
    if (strcmp(v, "true") == 0)
        *out = VA_HANDLED_YES;
    else if (strcmp(v, "false") == 0)
        *out = VA_HANDLED_NO;
    else {
        lst_buf_puts(why, "handled: true or false");
        return false;
    }
    return true;
}

/* depot=<d>,... is the tag depot:<d> (the ERP import's tags, docs/view-api.md). */
static bool parse_depots(const char *v, struct lst_strv *tags, struct lst_buf *why)
{
    struct lst_strv depots = {0};
    struct lst_buf t;
    bool ok = va_list_split(v, "depot", LST_TAG_MAX - strlen("depot:"), &depots, why);
    lst_buf_init(&t);
    for (size_t i = 0; ok && i < depots.len; i++) {
        lst_buf_reset(&t);
        lst_buf_printf(&t, "depot:%s", depots.items[i]);
        ok = !lst_buf_failed(&t) && lst_strv_push(tags, t.data) == LST_OK;
    }
    lst_buf_cleanup(&t);
    lst_strv_cleanup(&depots);
    return ok;
}

static bool check_slugs(const struct lst_strv *v, const char *name, struct lst_buf *why)
{
    for (size_t i = 0; i < v->len; i++) {
        const char *s = v->items[i];
        bool ok = isalnum((unsigned char)s[0]) && !isupper((unsigned char)s[0]);
        for (size_t j = 0; ok && s[j] != '\0'; j++)
            ok = islower((unsigned char)s[j]) || isdigit((unsigned char)s[j]) || s[j] == '.' ||
                 s[j] == '_' || s[j] == '-';
        if (!ok) {
            lst_buf_printf(why, "%s: '%s' is not a category/kind slug ([a-z0-9._-])", name, s);
            return false;
        }
    }
    return true;
}

const char *va_filter_param(size_t i)
{
    if (i < LST_VIEW_FILTER_PARAMS)
        return lst_view_filter_name(i);
    return i == LST_VIEW_FILTER_PARAMS ? "hidden" : NULL;
}

static const char *query_param(void *ud, const char *name)
{
    return lst_http_query(ud, name);
}

bool va_filter_parse(const struct lst_http_request *req, struct va_filter *f, struct lst_buf *why)
{
    return va_filter_parse_from(query_param, (void *)(uintptr_t)req, f, why);
}

bool va_filter_parse_from(va_param_fn get, void *ud, struct va_filter *f, struct lst_buf *why)
{
    const char *dir = get(ud, "direction");
    const char *q = get(ud, "q");
    const char *hidden = get(ud, "hidden");
    if (dir != NULL && strcmp(dir, "in") != 0 && strcmp(dir, "out") != 0) {
        lst_buf_puts(why, "direction: in or out");
        return false;
    }
    f->dir = dir;
    if (!va_list_split(get(ud, "type"), "type", 32, &f->kinds, why) ||
        !va_list_split(get(ud, "category"), "category", LST_SLUG_MAX, &f->categories, why) ||
        /* hidden= (empty): no hidden categories, also none of a saved view's */
        !va_list_split(hidden != NULL && hidden[0] == '\0' ? NULL : hidden, "hidden", LST_SLUG_MAX,
                       &f->hidden, why) ||
        !va_list_split(get(ud, "employee"), "employee", LST_EMPLOYEE_ID_MAX, &f->employees, why) ||
        !va_list_split(get(ud, "department"), "department", LST_LABEL_MAX, &f->departments, why) ||
        !va_list_split(get(ud, "vehicle"), "vehicle", LST_LABEL_MAX, &f->vehicles, why) ||
        !va_list_split(get(ud, "dispatcher"), "dispatcher", LST_USER_ID_MAX, &f->dispatchers,
                       why) ||
        !va_list_split(get(ud, "tag"), "tag", LST_TAG_MAX, &f->tags, why) ||
        !parse_depots(get(ud, "depot"), &f->depots, why) || !check_slugs(&f->kinds, "type", why) ||
        !check_slugs(&f->categories, "category", why) || !check_slugs(&f->hidden, "hidden", why) ||
        !parse_status(get(ud, "status"), &f->status, why) ||
        !parse_handled(get(ud, "handled"), &f->handled, why) ||
        !parse_time(get, ud, "from", &f->has_from, &f->from, why) ||
        !parse_time(get, ud, "to", &f->has_to, &f->to, why))
        return false;
    for (size_t i = 0; i < f->employees.len; i++) {
        if (!va_employee_id_ok(f->employees.items[i])) {
            lst_buf_printf(why, "employee: '%s' is not an employee ID", f->employees.items[i]);
            return false;
        }
    }
    if (f->has_from && f->has_to && f->from > f->to) {
        lst_buf_puts(why, "from: later than to");
        return false;
    }
    if (q != NULL) {
        size_t len = strlen(q);
        if (len == 0 || len > 256 || !lst_utf8_valid(q, len)) {
            lst_buf_puts(why, "q: 1 to 256 bytes of UTF-8");
            return false;
        }
        f->q = lst_strdup(q);
    }
    return true;
}

bool va_cursor_parse(const char *s, struct va_cursor *c)
{
    char num[24];
    const char *us = s != NULL ? strchr(s, '_') : NULL;
    memset(c, 0, sizeof(*c));
    if (us == NULL || (size_t)(us - s) >= sizeof(num) || strlen(us + 1) == 0 ||
        strlen(us + 1) >= sizeof(c->id))
        return false;
    memcpy(num, s, (size_t)(us - s));
    num[us - s] = '\0';
    if (lst_parse_i64(num, 0, LST_TIME_MS_MAX, &c->score) != LST_OK)
        return false;
    for (const char *p = us + 1; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != ':' && *p != '*')
            return false;
    }
    memcpy(c->id, us + 1, strlen(us + 1) + 1);
    c->set = true;
    return true;
}

/* ---- choosing the index ---- */

static const char *status_name(enum va_status_filter s)
{
    return s == VA_ST_FAILED ? "failed" : s == VA_ST_UNREAD ? "unread" : "undelivered";
}

/* The driving index "<dim>:<value>" (or "all") and which filter it already satisfies. */
struct driver {
    char dim[8];
    const char *value;
};

static struct driver choose(const struct va_filter *f, const char *recipient)
{
    struct driver d = {"all", NULL};
    const char *dim = NULL;
    if (recipient != NULL) {
        dim = "emp";
        d.value = recipient;
    } else if (f->employees.len == 1) {
        dim = "emp";
        d.value = f->employees.items[0];
    } else if (f->vehicles.len == 1) {
        dim = "veh";
        d.value = f->vehicles.items[0];
    } else if (f->dispatchers.len == 1) {
        dim = "disp";
        d.value = f->dispatchers.items[0];
    } else if (f->depots.len == 1 || f->tags.len == 1) {
        dim = "tag"; /* a depot or a shift: usually smaller than a department */
        d.value = f->depots.len == 1 ? f->depots.items[0] : f->tags.items[0];
    } else if (f->departments.len == 1) {
        dim = "dep";
        d.value = f->departments.items[0];
    } else if (f->status != VA_ST_ANY) {
        dim = "st";
        d.value = status_name(f->status);
    } else if (f->kinds.len == 1) {
        dim = "kind";
        d.value = f->kinds.items[0];
    } else if (f->dir != NULL) {
        dim = "dir";
        d.value = f->dir;
    } else if (f->handled == VA_HANDLED_NO) {
        dim = "dir"; /* the open inbox holds incoming items only */
        d.value = "in";
    }
    if (dim != NULL)
        snprintf(d.dim, sizeof(d.dim), "%s", dim);
    return d;
}

/* Whether the ledger keeps per-category copies xc:<cat>:<dim>:<value> of a dimension: not of
 * an employee's or a vehicle's history (docs/ledger.md), the hashes' category filters those. */
static bool per_category(const char *dim)
{
    return strcmp(dim, "emp") != 0 && strcmp(dim, "veh") != 0;
}

static lst_err driver_key(struct view_api *ctx, const struct va_filter *f, const struct driver *d,
                          struct lst_buf *key)
{
    /* one wanted category: its own index family holds only that category */
    if (f->categories.len == 1 && d->value != NULL && per_category(d->dim))
        return va_lkey(ctx, key, "xc:%s:%s:%s", f->categories.items[0], d->dim, d->value);
    /* (an employee's or a vehicle's history with one category: its x: index drives, the
     * category is checked on the rows; xc:<cat>:all would lose the employee filter, which
     * member_checks leaves to the driving index) */
    if (f->categories.len == 1 && d->value == NULL)
        return va_lkey(ctx, key, "xc:%s:all", f->categories.items[0]);
    if (d->value != NULL)
        return va_lkey(ctx, key, "x:%s:%s", d->dim, d->value);
    return va_lkey(ctx, key, "x:all");
}

/* ---- checks on one item ---- */

static const char *hget(const redisReply *h, const char *field)
{
    if (h == NULL || h->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, field) == 0)
            return h->element[i + 1]->type == REDIS_REPLY_STRING ? h->element[i + 1]->str : NULL;
    }
    return NULL;
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; p != NULL && *p != '\0'; p++) {
        size_t i = 0;
        while (i < n && p[i] != '\0' &&
               tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return false;
}

/* ---- an item hash, read once ---- */

/* The fields of an item hash the views use, in the order of ITEM_FIELDS. */
enum item_field {
    IF_DIR,
    IF_AT,
    IF_CAT,
    IF_KIND,
    IF_TEXT,
    IF_CAPTION,
    IF_FILENAME,
    IF_MIME,
    IF_SIZE,
    IF_BLOB,
    IF_THUMB,
    IF_BLOB_ERROR,
    IF_LAT,
    IF_LON,
    IF_ACC,
    IF_PLACE,
    IF_ADDR,
    IF_DISP,
    IF_DISP_NAME,
    IF_DEP,
    IF_VEH,
    IF_EID,
    IF_FROM,
    IF_REPLY_TO,
    IF_AUDIENCE,
    IF_HANDLED_BY,
    IF_HANDLED_AT,
    IF_CGONE, /* rendered as content_erased: true (item_json) */
    IF__COUNT
};

static const struct {
    const char *field, *json;
    bool number;
} ITEM_FIELDS[IF__COUNT] = {
    [IF_DIR] = {"dir", "direction", false},
    [IF_AT] = {"at", "at", true},
    [IF_CAT] = {"cat", "category", false},
    [IF_KIND] = {"kind", "kind", false},
    [IF_TEXT] = {"text", "text", false},
    [IF_CAPTION] = {"caption", "caption", false},
    [IF_FILENAME] = {"filename", "filename", false},
    [IF_MIME] = {"mime", "mime", false},
    [IF_SIZE] = {"size", "size", true},
    [IF_BLOB] = {"blob", "blob", false},
    [IF_THUMB] = {"thumb", "thumbnail_blob", false},
    [IF_BLOB_ERROR] = {"blob_error", "blob_error", false},
    [IF_LAT] = {"lat", "lat", true},
    [IF_LON] = {"lon", "lon", true},
    [IF_ACC] = {"acc", "accuracy", true},
    [IF_PLACE] = {"place", "place", false},
    [IF_ADDR] = {"addr", "address", false},
    [IF_DISP] = {"disp", "dispatcher", false},
    [IF_DISP_NAME] = {"disp_name", "dispatcher_name", false},
    [IF_DEP] = {"dep", "department", false},
    [IF_VEH] = {"veh", "vehicle", false},
    [IF_EID] = {"eid", "employee_id", false},
    [IF_FROM] = {"from", "from", false},
    [IF_REPLY_TO] = {"reply_to", "reply_to", false},
    [IF_AUDIENCE] = {"audience", "audience_count", true},
    [IF_HANDLED_BY] = {"handled_by", "handled_by", false},
    [IF_HANDLED_AT] = {"handled_at", "handled_at", true},
    [IF_CGONE] = {"cgone", "content_erased", false},
};

static const char *const STATES[] = {"queued",    "retrying", "failed",       "sent",
                                     "delivered", "read",     "acknowledged", "declined"};

/* The values of one HGETALL reply by field, found in one pass: a page reads ~40 fields of
 * 50 hashes, and looking each up by name in the reply cost more than building the JSON. */
struct hview {
    bool exists; /* a non-empty hash (an erased or purged item has none) */
    const char *v[IF__COUNT];
    const char *id, *msg, *n;
    const char *ver;                       /* v: the ledger's version of the hash */
    const char *st[LST_ARRAY_LEN(STATES)]; /* s:<state> */
};

static bool is(const char *a, const char *b)
{
    return a[0] == b[0] && strcmp(a, b) == 0;
}

static void hview_field(struct hview *hv, const char *name, const char *val)
{
    if (name[0] == 's' && name[1] == ':') {
        for (size_t i = 0; i < LST_ARRAY_LEN(STATES); i++) {
            if (is(name + 2, STATES[i]))
                hv->st[i] = val;
        }
    } else if (is(name, "id")) {
        hv->id = val;
    } else if (is(name, "msg")) {
        hv->msg = val;
    } else if (is(name, "n")) {
        hv->n = val;
    } else if (is(name, "v")) {
        hv->ver = val;
    } else {
        for (size_t i = 0; i < IF__COUNT; i++) {
            if (is(name, ITEM_FIELDS[i].field)) {
                hv->v[i] = val;
                break;
            }
        }
    }
}

static void hview_of(const redisReply *h, struct hview *hv)
{
    memset(hv, 0, sizeof(*hv));
    if (h == NULL || h->type != REDIS_REPLY_ARRAY)
        return;
    hv->exists = h->elements > 0;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i], *v = h->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
            hview_field(hv, k->str, v->str);
    }
}

/* handled=true: someone handled it (handled_by is set); handled=false: the open inbox, an
 * incoming item nobody handled. An outgoing item is never in the inbox. */
static bool handled_matches(enum va_handled_filter want, const struct hview *h)
{
    bool handled = h->v[IF_HANDLED_BY] != NULL;
    if (want == VA_HANDLED_YES)
        return handled;
    if (want == VA_HANDLED_NO)
        return !handled && h->v[IF_DIR] != NULL && strcmp(h->v[IF_DIR], "in") == 0;
    return true;
}

static bool hash_matches(const struct va_filter *f, const struct hview *h)
{
    const char *cat = h->v[IF_CAT];
    if (!h->exists)
        return false; /* erased or purged since it was indexed */
    if (f->categories.len > 0 && !lst_strv_has(&f->categories, cat))
        return false;
    if (f->hidden.len > 0 && lst_strv_has(&f->hidden, cat))
        return false;
    /* "not read by everyone" is read information: never for a category where it is off */
    if (f->status == VA_ST_UNREAD && f->readvis != NULL &&
        va_readvis_of(f->readvis, cat) == VA_READ_OFF)
        return false;
    if (f->kinds.len > 0 && !lst_strv_has(&f->kinds, h->v[IF_KIND]))
        return false;
    if (f->dir != NULL && (h->v[IF_DIR] == NULL || strcmp(f->dir, h->v[IF_DIR]) != 0))
        return false;
    if (!handled_matches(f->handled, h))
        return false;
    if (f->q != NULL && !contains_ci(h->v[IF_TEXT], f->q) && !contains_ci(h->v[IF_CAPTION], f->q) &&
        !contains_ci(h->v[IF_FILENAME], f->q) && !contains_ci(h->v[IF_PLACE], f->q) &&
        !contains_ci(h->v[IF_ADDR], f->q))
        return false;
    return true;
}

/* The index memberships still to check: (dim, values) pairs. */
struct member_check {
    const char *dim;
    const struct lst_strv *values;
    const char *single;
};

static size_t member_checks(const struct va_filter *f, const struct driver *d,
                            struct member_check out[7])
{
    size_t n = 0;
    const struct {
        const char *dim;
        const struct lst_strv *v;
    } lists[] = {{"emp", &f->employees},    {"dep", &f->departments}, {"veh", &f->vehicles},
                 {"disp", &f->dispatchers}, {"tag", &f->tags},        {"tag", &f->depots}};
    for (size_t i = 0; i < LST_ARRAY_LEN(lists); i++) {
        if (lists[i].v->len == 0)
            continue;
        /* the list the driving index came from (the same string) is already satisfied */
        if (d->value != NULL && lists[i].v->len == 1 && d->value == lists[i].v->items[0])
            continue;
        out[n].dim = lists[i].dim;
        out[n].values = lists[i].v;
        out[n].single = NULL;
        n++;
    }
    if (f->status != VA_ST_ANY && strcmp(d->dim, "st") != 0) {
        out[n].dim = "st";
        out[n].values = NULL;
        out[n].single = status_name(f->status);
        n++;
    }
    return n;
}

/* ---- the item JSON ---- */

static bool numeric(const char *s)
{
    double d;
    size_t digits = s != NULL ? strspn(s, "0123456789") : 0;
    if (digits > 0 && digits < 16 && s[digits] == '\0')
        return true; /* the usual case (times, counts) without strtod */
    return s != NULL && lst_parse_double(s, -1e300, 1e300, &d) == LST_OK;
}

/* ,"<key>":<number> (both trusted: a field name of ours, a value numeric() accepted) */
static void put_number(struct lst_buf *b, const char *key, const char *num)
{
    lst_buf_puts(b, ",\"");
    lst_buf_puts(b, key);
    lst_buf_puts(b, "\":");
    lst_buf_puts(b, num);
}

/* The aggregates; with read information off, read/acknowledged/declined recipients count as
 * delivered and those three figures are left out. */
static void counts_json(struct lst_buf *b, const struct hview *h, enum va_readvis vis)
{
    const char *n = h->n;
    int64_t folded = 0;
    lst_buf_printf(b, ",\"counts\":{\"recipients\":%s", numeric(n) ? n : "0");
    for (size_t i = 0; i < LST_ARRAY_LEN(STATES); i++) {
        int64_t c = 0;
        const char *v = h->st[i];
        bool reader = strcmp(va_readvis_state(VA_READ_OFF, STATES[i]), STATES[i]) != 0;
        if (vis == VA_READ_OFF && (reader || strcmp(STATES[i], "delivered") == 0)) {
            if (v != NULL && lst_parse_i64(v, 0, INT64_MAX, &c) == LST_OK)
                folded += c;
            continue;
        }
        put_number(b, STATES[i], numeric(v) ? v : "0");
    }
    if (vis == VA_READ_OFF)
        lst_buf_printf(b, ",\"delivered\":%lld", (long long)folded);
    lst_buf_puts(b, "}");
}

static void item_json(struct lst_buf *b, const struct hview *h, const struct va_readvis_cfg *rv);

void va_item_json(struct lst_buf *b, const redisReply *h)
{
    va_item_json_vis(b, h, NULL);
}

void va_item_json_vis(struct lst_buf *b, const redisReply *h, const struct va_readvis_cfg *rv)
{
    struct hview hv;
    hview_of(h, &hv);
    item_json(b, &hv, rv);
}

static void item_json(struct lst_buf *b, const struct hview *h, const struct va_readvis_cfg *rv)
{
    const char *id = h->id;
    enum va_readvis vis = rv != NULL ? va_readvis_of(rv, h->v[IF_CAT]) : VA_READ_PERSON;
    lst_buf_puts(b, "{");
    va_json_kv(b, false, "id", id != NULL ? id : "");
    for (size_t i = 0; i < IF__COUNT; i++) {
        const char *v = h->v[i];
        if (v == NULL)
            continue;
        if (i == IF_CGONE) /* GDPR: sent to erased employees alone, content deleted */
            lst_buf_puts(b, ",\"content_erased\":true");
        else if (ITEM_FIELDS[i].number && numeric(v))
            put_number(b, ITEM_FIELDS[i].json, v);
        else if (!ITEM_FIELDS[i].number)
            va_json_kv(b, true, ITEM_FIELDS[i].json, v);
    }
    if (h->msg != NULL) {
        counts_json(b, h, vis);
        if (rv != NULL)
            va_json_kv(b, true, "read_visibility", va_readvis_name(vis));
    }
    lst_buf_puts(b, "}");
}

/* ---- one page ---- */

struct name_mark {
    size_t pos; /* the offset of the row's closing brace in page.items */
    size_t idx; /* the employee in page.names */
};

struct page {
    struct view_api *ctx;
    struct va_rconn *rc; /* one of the read connections, held for the whole page */
    bool exact;  /* every entry of the driving index matches: fetch only what the page needs */
    bool hidden; /* only hidden categories to drop: fetch a little more than needed */
    /* the hidden categories' own indexes (xc:<cat>:...) tell which entries to drop, so only
     * the hashes of visible entries are read */
    bool prefilter;
    /* exactly the hashes the page needs are read (exact, or hidden with prefilter): the last
     * entry examined is known before the hashes come, and only its score is asked for */
    bool capped;
    /* rows come from the row cache (ctx->rows) where the hash's version matches: the page
     * reads v of each entry, the hashes of the misses only (no text search: it needs them) */
    struct va_rowcache *rows;
    const struct va_filter *f;
    const char *recipient;
    struct driver d;
    struct member_check checks[7];
    size_t nchecks;
    struct lst_buf key, tmp, items;
    struct lst_buf skey, scheck; /* the state cache's key and check (state_json) */
    /* employee_name: the employees the shown rows are about, read once the page is complete
     * (one round for the page, names.c), and where each row's name goes (the offset of the
     * row's closing brace in items) */
    struct va_names names;
    struct name_mark *marks;
    size_t nmarks, capmarks;
    /* limit is one more than the page shows: the extra match (counted, not rendered) tells
     * that a next page has items, so the page that ends with the data has no cursor */
    int64_t count, limit, scanned;
    struct va_cursor last;     /* last entry examined */
    struct va_cursor last_out; /* last entry returned */
    bool end;
};

/* How many entries the next batch asks for. Every entry whose hash is read costs an HGETALL,
 * the bulk of a page's work in Redis and here, so an index that needs no further filtering
 * is read exactly as far as the page goes. With hidden categories, entry IDs are cheap when
 * the prefilter drops the hidden ones without their hashes (twice the page's need), else a
 * quarter further than needed. */
static int64_t batch_size(const struct page *pg)
{
    int64_t need = pg->limit - pg->count, n = BATCH;
    if (pg->exact)
        n = need;
    else if (pg->hidden && pg->prefilter)
        n = 2 * need + 4;
    else if (pg->hidden)
        n = need + need / 4 + 4;
    return n < 1 ? 1 : n > BATCH ? BATCH : n;
}

/* One index entry of a batch: its ID (borrowed from the connection's replies until the page
 * ends) and its score where known. */
struct entry {
    const char *id;
    int64_t score;
    bool scored;
    bool hidden; /* in a hidden category's index: dropped without reading its hash */
};

/* An entry's row in a page with the row cache: from the cache (json[off, off + len) of the
 * batch's hits buffer, fields), else the reply index of its hash. */
struct cached_row {
    bool hit;
    size_t off, len;
    size_t reply;
    struct va_row_fields f;
};

struct batch {
    struct entry e[BATCH];
    struct cached_row row[BATCH];
    struct lst_buf hits; /* the JSON of the hits */
    size_t n;
    bool more;       /* the index may hold entries after the last one */
    bool group_full; /* only entries of the cursor's score, and maybe more of them */
};

/* The key of a hidden category's copy of the driving index. */
static lst_err hidden_key(struct page *pg, const char *cat)
{
    if (pg->d.value != NULL)
        return va_lkey(pg->ctx, &pg->tmp, "xc:%s:%s:%s", cat, pg->d.dim, pg->d.value);
    return va_lkey(pg->ctx, &pg->tmp, "xc:%s:all", cat);
}

static void add_entries(struct batch *b, const redisReply *r, bool scores, size_t want)
{
    size_t step = scores ? 2 : 1;
    for (size_t i = 0; i + step <= r->elements && b->n < want; i += step) {
        struct entry *e = &b->e[b->n++];
        memset(e, 0, sizeof(*e));
        e->id = r->element[i]->str;
        e->scored = scores && lst_parse_i64(r->element[i + 1]->str, INT64_MIN, INT64_MAX,
                                            &e->score) == LST_OK;
    }
}

/* Marks the entries from `from` on that a hidden category's index holds: that index is a
 * subset of the driving one with the same scores, so over the same score range its first
 * entries are exactly the hidden ones among the driving index's first, in the same order. */
static void mark_hidden(struct batch *b, size_t from, const redisReply *sub)
{
    size_t j = 0;
    for (size_t i = from; i < b->n && j < sub->elements; i++) {
        if (strcmp(b->e[i].id, sub->element[j]->str) == 0) {
            b->e[i].hidden = true;
            j++;
        }
    }
}

static bool is_array(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return false;
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            return false;
    }
    return true;
}

/* One batch of entries after the cursor, newest first, in one round trip: with a cursor,
 * the entries of its score (descending IDs, those below the cursor's ID taken; `group` skips
 * as many of them as earlier batches saw) and those below it; the hidden categories' entries
 * over the same range. Without WITHSCORES where the page is capped: Redis 7.0 formats each
 * score with printf's %.17g, 30 of the 35 us a 66-entry range took; the page needs one. */
static lst_err fetch(struct page *pg, const struct va_cursor *cur, int64_t group, int64_t want,
                     struct batch *b)
{
    char max[32], min[32], eq[24], off[24], cnt[24];
    bool scores = !pg->capped;
    size_t first = 0, at = 0;
    lst_err err = LST_OK;
    b->n = 0;
    b->more = b->group_full = false;
    if (pg->f->has_from)
        snprintf(min, sizeof(min), "%lld", (long long)pg->f->from);
    else
        snprintf(min, sizeof(min), "-inf");
    if (cur->set)
        snprintf(max, sizeof(max), "(%lld", (long long)cur->score);
    else if (pg->f->has_to)
        snprintf(max, sizeof(max), "%lld", (long long)pg->f->to);
    else
        snprintf(max, sizeof(max), "+inf");
    snprintf(eq, sizeof(eq), "%lld", (long long)cur->score);
    snprintf(off, sizeof(off), "%lld", (long long)group);
    snprintf(cnt, sizeof(cnt), "%lld", (long long)want);
    if (cur->set) {
        const char *a[] = {"ZREVRANGEBYSCORE", pg->key.data, eq, eq, "LIMIT", off, cnt};
        err = va_rconn_add(pg->rc, (int)LST_ARRAY_LEN(a), a);
    }
    const char *below[] = {"ZREVRANGEBYSCORE", pg->key.data, max, min, "LIMIT", "0", cnt,
                           "WITHSCORES"};
    if (err == LST_OK)
        err = va_rconn_add(pg->rc, (int)LST_ARRAY_LEN(below) - (scores ? 0 : 1), below);
    for (size_t h = 0; pg->prefilter && err == LST_OK && h < pg->f->hidden.len; h++) {
        err = hidden_key(pg, pg->f->hidden.items[h]);
        const char *s[] = {"ZREVRANGEBYSCORE", pg->tmp.data, max, min, "LIMIT", "0", cnt};
        if (err == LST_OK)
            err = va_rconn_add(pg->rc, (int)LST_ARRAY_LEN(s), s);
    }
    if (err == LST_OK)
        err = va_rconn_exec(pg->rc, &first);
    if (err != LST_OK)
        return err;
    if (cur->set) {
        const redisReply *a = va_rconn_reply(pg->rc, first + at++);
        if (!is_array(a))
            return LST_ERR_REDIS;
        for (size_t i = 0; i < a->elements; i++) {
            if (strcmp(a->element[i]->str, cur->id) >= 0)
                continue; /* at or before the cursor */
            b->e[b->n] = (struct entry){a->element[i]->str, cur->score, true, false};
            b->n++;
        }
        b->group_full = (int64_t)a->elements >= want;
    }
    const redisReply *r = va_rconn_reply(pg->rc, first + at++);
    if (!is_array(r) || (scores && r->elements % 2 != 0))
        return LST_ERR_REDIS;
    if (b->group_full) {
        b->more = true; /* the entries below the cursor's score come after the whole group */
        return LST_OK;
    }
    size_t from = b->n;
    size_t got = r->elements / (scores ? 2 : 1);
    add_entries(b, r, scores, (size_t)want);
    b->more = (int64_t)got >= want || b->n < from + got; /* full, or cut to the batch */
    for (size_t h = 0; pg->prefilter && h < pg->f->hidden.len; h++) {
        const redisReply *s = va_rconn_reply(pg->rc, first + at++);
        if (!is_array(s))
            return LST_ERR_REDIS;
        mark_hidden(b, from, s);
    }
    return LST_OK;
}

/* Where the membership checks go: a library pipeline (the live stream) or a read
 * connection (pages). */
struct sink {
    struct lst_redis_pipe *pipe;
    struct va_rconn *rc;
    size_t base; /* rc: the reply index of the first check */
};

static void sink_add(struct sink *k, int argc, const char **argv)
{
    if (k->pipe != NULL)
        lst_redis_pipe_add(k->pipe, argc, argv, NULL);
    else
        va_rconn_add(k->rc, argc, argv);
}

static const redisReply *sink_reply(const struct sink *k, size_t i)
{
    return k->pipe != NULL ? lst_redis_pipe_reply(k->pipe, i) : va_rconn_reply(k->rc, k->base + i);
}

/* Queues the membership checks of one item; returns how many commands were queued. */
static size_t queue_checks(struct page *pg, struct sink *p, const char *id)
{
    size_t n = 0;
    for (size_t c = 0; c < pg->nchecks; c++) {
        size_t nv = pg->checks[c].values != NULL ? pg->checks[c].values->len : 1;
        for (size_t v = 0; v < nv; v++) {
            const char *val = pg->checks[c].values != NULL ? pg->checks[c].values->items[v]
                                                           : pg->checks[c].single;
            va_lkey(pg->ctx, &pg->tmp, "x:%s:%s", pg->checks[c].dim, val);
            const char *argv[] = {"ZSCORE", pg->tmp.data, id};
            sink_add(p, 3, argv);
            n++;
        }
    }
    return n;
}

/* True when for every check at least one of its values holds the item. */
static bool checks_pass(struct page *pg, const struct sink *p, size_t *at)
{
    bool all = true;
    for (size_t c = 0; c < pg->nchecks; c++) {
        size_t nv = pg->checks[c].values != NULL ? pg->checks[c].values->len : 1;
        bool any = false;
        for (size_t v = 0; v < nv; v++) {
            const redisReply *r = sink_reply(p, (*at)++);
            any = any || (r != NULL && r->type == REDIS_REPLY_STRING);
        }
        all = all && any;
    }
    return all;
}

static void recipient_json(struct lst_buf *b, const char *state_json, bool rroff,
                           enum va_readvis vis);

/* <ledger prefix><kind><id> into pg->tmp, without a format string: ~100 keys per page. */
static void item_key(struct page *pg, const char *kind, const char *id)
{
    lst_buf_reset(&pg->tmp);
    lst_buf_puts(&pg->tmp, pg->ctx->cfg.ledger_prefix);
    lst_buf_puts(&pg->tmp, kind);
    lst_buf_puts(&pg->tmp, id);
}

/* How far a batch is examined: in a capped page up to the entry that fills the page if every
 * visible entry matches (so its score is the only one needed; the look-ahead is then any
 * visible entry after it, see peek_capped), and in a full page only its leading hidden
 * entries; else the whole batch. */
static size_t examine_stop(const struct page *pg, const struct batch *b)
{
    int64_t cands = 0, shows = pg->limit - 1 - pg->count;
    for (size_t i = 0; pg->capped && i < b->n; i++) {
        if (b->e[i].hidden)
            continue;
        if (shows == 0)
            return i;
        if (++cands == shows)
            return i + 1;
    }
    return b->n;
}

/* The look-ahead of a capped page that is full: every visible entry matches, so one after
 * the last examined is the next page's first item, without its hash (a hash gone meanwhile
 * costs an empty next page at worst). */
static void peek_capped(struct page *pg, const struct batch *b, size_t stop)
{
    for (size_t i = stop; pg->capped && pg->count == pg->limit - 1 && i < b->n; i++) {
        if (!b->e[i].hidden) {
            pg->count++;
            return;
        }
    }
}

/* Queues the reads of one batch: the visible entries' hashes (and the recipient's state),
 * their membership checks, the score of the last entry examined when unknown. */
static size_t queue_batch(struct page *pg, const struct batch *b, size_t stop, struct sink *checks)
{
    size_t nchecks = 0;
    for (size_t i = 0; i < stop; i++) {
        if (b->e[i].hidden)
            continue;
        item_key(pg, "m:", b->e[i].id);
        /* HGETALL, not HGETALL of the ~40 fields a row may show: Redis parses every argument
         * of a command, and that cost more than sending the unused fields (3.0 against
         * 4.3 us of Redis CPU per hash, pipelined). With the row cache only the version. */
        const char *argv[] = {"HGETALL", pg->tmp.data};
        const char *ver[] = {"HGET", pg->tmp.data, "v"};
        if (pg->rows != NULL)
            va_rconn_add(pg->rc, 3, ver);
        else
            va_rconn_add(pg->rc, 2, argv);
        if (pg->recipient != NULL) {
            item_key(pg, "r:", b->e[i].id);
            const char *rv[] = {"HGET", pg->tmp.data, pg->recipient};
            va_rconn_add(pg->rc, 3, rv);
        }
    }
    for (size_t i = 0; i < stop; i++) {
        if (!b->e[i].hidden)
            nchecks += queue_checks(pg, checks, b->e[i].id);
    }
    if (stop > 0 && !b->e[stop - 1].scored) {
        const char *zs[] = {"ZSCORE", pg->key.data, b->e[stop - 1].id};
        va_rconn_add(pg->rc, 3, zs);
    }
    return nchecks;
}

/* The filter fields of a hash for the row cache; false when one does not fit (not cached). */
static bool row_fields(const struct hview *h, struct va_row_fields *f)
{
    const char *v[] = {h->v[IF_CAT], h->v[IF_KIND], h->v[IF_DIR], h->v[IF_EID]};
    char *dst[] = {f->cat, f->kind, f->dir, f->eid};
    size_t cap[] = {sizeof(f->cat), sizeof(f->kind), sizeof(f->dir), sizeof(f->eid)};
    bool *has[] = {&f->has_cat, &f->has_kind, &f->has_dir, &f->has_eid};
    f->handled = h->v[IF_HANDLED_BY] != NULL;
    for (size_t i = 0; i < LST_ARRAY_LEN(v); i++) {
        *has[i] = v[i] != NULL;
        dst[i][0] = '\0';
        if (v[i] != NULL && strlen(v[i]) >= cap[i])
            return false;
        if (v[i] != NULL)
            memcpy(dst[i], v[i], strlen(v[i]) + 1);
    }
    return true;
}

/* The view hash_matches needs of a cached row: it exists (only rows of existing hashes are
 * cached), and its filter fields. */
static void hview_of_row(const struct va_row_fields *f, struct hview *hv)
{
    memset(hv, 0, sizeof(*hv));
    hv->exists = true;
    hv->v[IF_CAT] = f->has_cat ? f->cat : NULL;
    hv->v[IF_KIND] = f->has_kind ? f->kind : NULL;
    hv->v[IF_DIR] = f->has_dir ? f->dir : NULL;
    hv->v[IF_EID] = f->has_eid ? f->eid : NULL;
    hv->v[IF_HANDLED_BY] = f->handled ? "" : NULL; /* only whether it is set counts */
}

/* Appends the recipient's state of item id (the stored JSON st) as read visibility vis shows
 * it. The fragment is a function of vis and st alone, so the state cache keeps it by (item,
 * employee) with both as the check: a changed state or visibility is a miss and rendered anew.
 * This saves the json-c parse and the formatting, half of a history page's CPU when every row
 * paid them. */
static void state_json(struct page *pg, const char *id, const redisReply *st, enum va_readvis vis)
{
    struct va_rowcache *c = pg->ctx->states;
    if (c != NULL) {
        lst_buf_reset(&pg->skey);
        lst_buf_puts(&pg->skey, id);
        lst_buf_puts(&pg->skey, "/"); /* not in an item ID */
        lst_buf_puts(&pg->skey, pg->recipient);
        char vc = (char)('0' + (int)vis);
        lst_buf_reset(&pg->scheck);
        lst_buf_append(&pg->scheck, &vc, 1);
        lst_buf_append(&pg->scheck, st->str, st->len);
        if (lst_buf_failed(&pg->skey) || lst_buf_failed(&pg->scheck))
            c = NULL;
        else if (va_rowcache_get_by(c, pg->skey.data, pg->scheck.data, pg->scheck.len, &pg->items))
            return;
    }
    size_t start = pg->items.len;
    recipient_json(&pg->items, st->str, false, vis);
    if (c != NULL && !lst_buf_failed(&pg->items))
        va_rowcache_put_by(c, pg->skey.data, pg->scheck.data, pg->scheck.len,
                           pg->items.data + start, pg->items.len - start);
}

/* Notes that the row just appended (ending with its closing brace) is about employee eid:
 * her name goes there once the page is complete (splice_names). Not for a row that failed. */
static void mark_name(struct page *pg, const char *eid)
{
    size_t idx = va_names_add(&pg->names, eid);
    if (idx == SIZE_MAX || lst_buf_failed(&pg->items) || pg->items.len == 0)
        return;
    if (pg->nmarks == pg->capmarks) {
        size_t cap = pg->capmarks ? pg->capmarks * 2 : 64;
        struct name_mark *m = realloc(pg->marks, cap * sizeof(*m));
        if (m == NULL)
            return; /* the row goes without a name */
        pg->marks = m;
        pg->capmarks = cap;
    }
    pg->marks[pg->nmarks++] = (struct name_mark){pg->items.len - 1, idx};
}

/* Appends the row of entry id: json (a cached row) or rendered from h (and then cached when
 * the hash has a version), and marks where its employee's name goes. */
static void append_item(struct page *pg, const char *id, const struct hview *h, const char *json,
                        size_t len, const redisReply *st)
{
    if (pg->count == pg->limit - 1) {
        pg->count++; /* the look-ahead: only that it exists matters */
        return;
    }
    if (pg->count > 0)
        lst_buf_puts(&pg->items, ",");
    size_t start = pg->items.len;
    if (json != NULL) {
        lst_buf_append(&pg->items, json, len);
    } else {
        item_json(&pg->items, h, &pg->ctx->readvis);
        int64_t v;
        struct va_row_fields f;
        if (pg->rows != NULL && !lst_buf_failed(&pg->items) && h->ver != NULL &&
            lst_parse_i64(h->ver, 1, INT64_MAX, &v) == LST_OK && row_fields(h, &f))
            va_rowcache_put(pg->rows, id, v, &f, pg->items.data + start, pg->items.len - start);
    }
    if (pg->recipient != NULL && st != NULL && st->type == REDIS_REPLY_STRING) {
        pg->items.len--; /* reopen the object */
        lst_buf_puts(&pg->items, ",\"recipient_status\":");
        state_json(pg, id, st, va_readvis_of(&pg->ctx->readvis, h->v[IF_CAT]));
        lst_buf_puts(&pg->items, "}");
    }
    if (h->v[IF_EID] != NULL)
        mark_name(pg, h->v[IF_EID]);
    pg->count++;
    pg->last_out = pg->last;
}

/* With the row cache: looks up every visible entry's row by the version the first round
 * read (reply per * v from first), then reads the hashes of the misses in one more round. A
 * hash without v (absent: erased, purged; or written before versions) is a miss: only what
 * its HGETALL says counts. */
static lst_err rows_resolve(struct page *pg, struct batch *b, size_t stop, size_t first, size_t per)
{
    size_t misses = 0, second = 0;
    lst_buf_reset(&b->hits);
    for (size_t i = 0, v = 0; i < stop; i++) {
        if (b->e[i].hidden)
            continue;
        struct cached_row *r = &b->row[i];
        const redisReply *ver = va_rconn_reply(pg->rc, first + per * v++);
        int64_t n = 0;
        r->off = b->hits.len;
        r->hit = ver != NULL && ver->type == REDIS_REPLY_STRING &&
                 lst_parse_i64(ver->str, 1, INT64_MAX, &n) == LST_OK &&
                 va_rowcache_get(pg->rows, b->e[i].id, n, &r->f, &b->hits);
        r->len = b->hits.len - r->off;
        if (r->hit)
            continue;
        item_key(pg, "m:", b->e[i].id);
        const char *argv[] = {"HGETALL", pg->tmp.data};
        va_rconn_add(pg->rc, 2, argv);
        r->reply = misses++;
    }
    if (misses == 0)
        return lst_buf_failed(&b->hits) ? LST_ERR_NOMEM : LST_OK;
    lst_err err = va_rconn_exec(pg->rc, &second);
    for (size_t i = 0; i < stop; i++) {
        if (!b->e[i].hidden && !b->row[i].hit)
            b->row[i].reply += second;
    }
    return err;
}

/* Examines the entries of one batch: their hashes (and the recipient's state) and the
 * remaining membership checks in one round trip. LST_ERR_NOT_FOUND: the last entry examined
 * left the index meanwhile (its score is unknown); the caller runs the batch again. */
static lst_err examine(struct page *pg, struct batch *b)
{
    size_t stop = examine_stop(pg, b), per = pg->recipient != NULL ? 2 : 1, first = 0, at = 0;
    size_t visible = 0;
    struct sink checks = {.rc = pg->rc};
    lst_err err = LST_OK;
    for (size_t i = 0; i < stop; i++)
        visible += !b->e[i].hidden;
    size_t nchecks = queue_batch(pg, b, stop, &checks);
    if (stop > 0)
        err = va_rconn_exec(pg->rc, &first);
    checks.base = first + per * visible;
    if (err == LST_OK && stop > 0 && pg->rows != NULL)
        err = rows_resolve(pg, b, stop, first, per);
    if (err == LST_OK && stop > 0 && !b->e[stop - 1].scored) {
        const redisReply *zs = va_rconn_reply(pg->rc, checks.base + nchecks);
        struct entry *e = &b->e[stop - 1];
        if (zs == NULL || zs->type != REDIS_REPLY_STRING ||
            lst_parse_i64(zs->str, INT64_MIN, INT64_MAX, &e->score) != LST_OK)
            return LST_ERR_NOT_FOUND;
        e->scored = true;
    }
    for (size_t i = 0, v = 0; i < stop && err == LST_OK && pg->count < pg->limit; i++) {
        const struct entry *e = &b->e[i];
        pg->scanned++;
        pg->last = (struct va_cursor){.set = true, .score = e->score};
        snprintf(pg->last.id, sizeof(pg->last.id), "%s", e->id);
        if (e->hidden)
            continue;
        struct hview h;
        const struct cached_row *row = pg->rows != NULL ? &b->row[i] : NULL;
        if (row != NULL && row->hit)
            hview_of_row(&row->f, &h);
        else
            hview_of(va_rconn_reply(pg->rc, row != NULL ? row->reply : first + per * v), &h);
        const redisReply *st =
            pg->recipient != NULL ? va_rconn_reply(pg->rc, first + per * v + 1) : NULL;
        v++;
        if (checks_pass(pg, &checks, &at) && hash_matches(pg->f, &h))
            append_item(pg, e->id, &h, row != NULL && row->hit ? b->hits.data + row->off : NULL,
                        row != NULL ? row->len : 0, st);
    }
    if (err == LST_OK)
        peek_capped(pg, b, stop);
    return err;
}

static lst_err run_page(struct page *pg, const struct va_cursor *start)
{
    struct va_cursor cur = *start;
    int64_t group = 0; /* entries of the cursor's score already seen */
    int again = 0;
    lst_err err = LST_OK;
    struct batch *b = malloc(sizeof(*b));
    if (b == NULL)
        return LST_ERR_NOMEM;
    lst_buf_init(&b->hits);
    while (pg->count < pg->limit && !pg->end && pg->scanned < pg->ctx->cfg.scan_max) {
        int64_t want = batch_size(pg);
        err = fetch(pg, &cur, group, want, b);
        if (err != LST_OK)
            break;
        size_t len = pg->items.len, nmarks = pg->nmarks;
        int64_t count = pg->count, scanned = pg->scanned;
        struct va_cursor last = pg->last, last_out = pg->last_out;
        err = examine(pg, b);
        if (err == LST_ERR_NOT_FOUND && again++ < 3) {
            pg->items.len = len; /* undone: the batch runs again without that entry */
            pg->nmarks = nmarks;
            pg->count = count;
            pg->scanned = scanned;
            pg->last = last;
            pg->last_out = last_out;
            err = LST_OK;
            continue;
        }
        if (err != LST_OK)
            break;
        if (b->n == 0 && b->group_full) {
            group += want; /* a whole batch at the cursor's score was at or before the cursor */
            continue;
        }
        pg->end = !b->more && pg->scanned - scanned == (int64_t)b->n;
        if (pg->count >= pg->limit && b->n > 0)
            pg->end = false;
        if (pg->last.set) {
            cur = pg->last;
            group = 0;
        }
    }
    lst_buf_cleanup(&b->hits);
    free(b);
    return err == LST_ERR_NOT_FOUND ? LST_ERR_REDIS : err;
}

/* One page on one read connection. A connection that failed (Redis restarted, a timeout)
 * is dropped, so the page runs once more from the start on a fresh one: pages only read. */
static lst_err run_page_conn(struct page *pg, const struct va_cursor *cur)
{
    lst_err err = LST_ERR_REDIS;
    for (int attempt = 0; attempt < 2 && err == LST_ERR_REDIS; attempt++) {
        pg->rc = va_read_conn(pg->ctx);
        pg->count = pg->scanned = 0;
        memset(&pg->last, 0, sizeof(pg->last));
        memset(&pg->last_out, 0, sizeof(pg->last_out));
        pg->end = false;
        lst_buf_reset(&pg->items);
        pg->nmarks = 0;
        va_names_reset(&pg->names);
        err = va_rconn_begin(pg->rc);
        if (err != LST_OK)
            continue;
        err = run_page(pg, cur);
        /* the names as the directory holds them now, for the whole page in one round: never
         * part of a cached row, whose version a rename does not change */
        if (err == LST_OK)
            err = va_names_read(pg->ctx, pg->rc, &pg->names);
        va_rconn_end(pg->rc);
    }
    return err;
}

/* Which filters the driving index (with its category family) does not already satisfy. */
static void classify(struct page *pg)
{
    const struct va_filter *f = pg->f;
    bool rest = pg->nchecks > 0 || f->q != NULL || f->categories.len > 1 ||
                (f->categories.len == 1 && pg->d.value != NULL && !per_category(pg->d.dim)) ||
                (f->kinds.len > 0 && !(f->kinds.len == 1 && strcmp(pg->d.dim, "kind") == 0)) ||
                (f->dir != NULL && strcmp(pg->d.dim, "dir") != 0) || f->handled != VA_HANDLED_ANY ||
                (f->status == VA_ST_UNREAD && f->readvis != NULL);
    pg->exact = !rest && f->hidden.len == 0;
    pg->hidden = !rest && f->hidden.len > 0;
    pg->prefilter = f->hidden.len > 0 && f->hidden.len <= 8 && f->categories.len == 0 &&
                    (pg->d.value == NULL || per_category(pg->d.dim));
    pg->capped = pg->exact || (pg->hidden && pg->prefilter);
    /* text search looks at the text fields, which a cached row does not keep */
    pg->rows = f->q == NULL ? pg->ctx->rows : NULL;
}

/* Appends the page's rows with each marked row's employee_name inserted before its closing
 * brace (rows of unknown or erased employees stay as they are). */
static void splice_names(struct lst_buf *out, const struct page *pg)
{
    size_t from = 0;
    for (size_t i = 0; i < pg->nmarks; i++) {
        const struct name_mark *m = &pg->marks[i];
        lst_buf_append(out, pg->items.data + from, m->pos - from);
        va_names_json(out, &pg->names, m->idx);
        from = m->pos;
    }
    lst_buf_append(out, pg->items.data != NULL ? pg->items.data + from : "", pg->items.len - from);
}

lst_err va_feed_page(struct view_api *ctx, const struct va_filter *f, const struct va_cursor *cur,
                     int64_t limit, const char *recipient, struct lst_buf *out)
{
    struct page pg = {.ctx = ctx, .f = f, .recipient = recipient, .limit = limit + 1};
    lst_err err;
    lst_buf_init(&pg.key);
    lst_buf_init(&pg.tmp);
    lst_buf_init(&pg.items);
    lst_buf_init(&pg.skey);
    lst_buf_init(&pg.scheck);
    va_names_init(&pg.names);
    pg.d = choose(f, recipient);
    pg.nchecks = member_checks(f, &pg.d, pg.checks);
    classify(&pg);
    err = driver_key(ctx, f, &pg.d, &pg.key);
    if (err == LST_OK)
        err = run_page_conn(&pg, cur);
    if (err == LST_OK) {
        lst_buf_puts(out, "{\"items\":[");
        splice_names(out, &pg);
        lst_buf_puts(out, "]");
        /* the signal that status=unread left out categories without read information */
        if (f->status == VA_ST_UNREAD && va_readvis_any_off(&ctx->readvis)) {
            lst_buf_puts(out, ",\"read_hidden_categories\":");
            va_readvis_off_json(&ctx->readvis, out);
        }
        lst_buf_puts(out, ",\"next_cursor\":");
        /* a page followed by a match continues after its last item; a page cut by the scan
         * budget (full or not) after the last entry examined; a page that reached the end of
         * the index has none */
        bool more = pg.count >= pg.limit;
        const struct va_cursor *next = more ? &pg.last_out : &pg.last;
        if ((more || !pg.end) && next->set)
            lst_buf_printf(out, "\"%lld_%s\"", (long long)next->score, next->id);
        else
            lst_buf_puts(out, "null");
        lst_buf_puts(out, "}");
    }
    lst_buf_cleanup(&pg.key);
    lst_buf_cleanup(&pg.tmp);
    lst_buf_cleanup(&pg.items);
    lst_buf_cleanup(&pg.skey);
    lst_buf_cleanup(&pg.scheck);
    va_names_cleanup(&pg.names);
    free(pg.marks);
    return lst_buf_failed(out) ? LST_ERR_NOMEM : err;
}

/* ---- per-recipient state (the ledger's compact JSON) ---- */

static const struct {
    const char *key, *json;
} STATE_TIMES[] = {{"q", "queued_at"},       {"w", "retrying_at"},  {"f", "failed_at"},
                   {"s", "sent_at"},         {"d", "delivered_at"}, {"r", "read_at"},
                   {"a", "acknowledged_at"}, {"x", "declined_at"}};

/* ,"<key>":<t>, as "%lld" prints it but without printf: a recipient has up to nine times, and
 * vfprintf was an eighth of a history page's CPU before the state cache. */
static void put_time(struct lst_buf *b, const char *key, int64_t t)
{
    char num[24];
    size_t i = sizeof(num);
    uint64_t u = t < 0 ? 0 - (uint64_t)t : (uint64_t)t;
    do {
        num[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (t < 0)
        num[--i] = '-';
    lst_buf_puts(b, ",\"");
    lst_buf_puts(b, key);
    lst_buf_puts(b, "\":");
    lst_buf_append(b, num + i, sizeof(num) - i);
}

/* Under counts/off: no read, acknowledged or declined time; a recipient whose only evidence
 * of delivery is a read receipt shows that time as delivered_at (it is when the phone had the
 * message, nothing more). */
static void times_json(struct lst_buf *b, struct json_object *o, enum va_readvis vis)
{
    struct json_object *v = NULL;
    int64_t delivered = -1;
    for (size_t i = 0; o != NULL && i < LST_ARRAY_LEN(STATE_TIMES); i++) {
        if (!json_object_object_get_ex(o, STATE_TIMES[i].key, &v) ||
            !json_object_is_type(v, json_type_int))
            continue;
        int64_t t = json_object_get_int64(v);
        bool reader = strchr("rax", STATE_TIMES[i].key[0]) != NULL;
        if (vis != VA_READ_PERSON && (reader || STATE_TIMES[i].key[0] == 'd')) {
            if (delivered < 0 || t < delivered)
                delivered = t;
            continue;
        }
        put_time(b, STATE_TIMES[i].json, t);
    }
    if (delivered >= 0)
        put_time(b, "delivered_at", delivered);
}

static void recipient_json(struct lst_buf *b, const char *state_json, bool rroff,
                           enum va_readvis vis)
{
    struct json_object *o = json_tokener_parse(state_json), *v = NULL;
    const char *st = NULL;
    lst_buf_puts(b, "{");
    if (o != NULL && json_object_object_get_ex(o, "st", &v))
        st = va_readvis_state(vis, json_object_get_string(v));
    va_json_kv(b, false, "state", st != NULL ? st : "unknown");
    times_json(b, o, vis);
    if (o != NULL && json_object_object_get_ex(o, "tm", &v))
        va_json_kv(b, true, "threema_message_id", json_object_get_string(v));
    if (o != NULL && json_object_object_get_ex(o, "fc", &v))
        va_json_kv(b, true, "failure_code", json_object_get_string(v));
    if (o != NULL && json_object_object_get_ex(o, "fr", &v))
        va_json_kv(b, true, "failure_reason", json_object_get_string(v));
    if (o != NULL && json_object_object_get_ex(o, "dup", &v) && json_object_get_int64(v) > 0)
        lst_buf_puts(b, ",\"possible_duplicate\":true");
    /* "read receipts evidently off" is read information about the person */
    if (rroff && vis == VA_READ_PERSON && st != NULL && strcmp(st, "delivered") == 0)
        lst_buf_puts(b, ",\"read_unknown\":true");
    lst_buf_puts(b, "}");
    json_object_put(o);
}

void va_recipient_json(struct lst_buf *b, const char *state_json, bool rroff)
{
    recipient_json(b, state_json, rroff, VA_READ_PERSON);
}

void va_recipient_json_vis(struct lst_buf *b, const char *state_json, bool rroff,
                           enum va_readvis vis)
{
    recipient_json(b, state_json, rroff, vis);
}

/* ---- the live stream's check (stream.c) ---- */

static bool time_matches(const struct va_filter *f, const struct hview *h)
{
    int64_t at = 0;
    const char *v = h->v[IF_AT];
    if (!f->has_from && !f->has_to)
        return true;
    if (v == NULL || lst_parse_i64(v, INT64_MIN, INT64_MAX, &at) != LST_OK)
        return false;
    return (!f->has_from || at >= f->from) && (!f->has_to || at <= f->to);
}

lst_err va_feed_match(struct view_api *ctx, const struct va_filter *f, const char *const *ids,
                      size_t n, bool *match, struct lst_redis_pipe **hashes)
{
    struct page pg = {.ctx = ctx, .f = f, .d = {"all", NULL}};
    struct sink checks = {0};
    lst_err err;
    *hashes = NULL;
    lst_buf_init(&pg.tmp);
    pg.nchecks = member_checks(f, &pg.d, pg.checks);
    err = lst_redis_pipe_create(hashes);
    if (err == LST_OK)
        err = lst_redis_pipe_create(&checks.pipe);
    for (size_t i = 0; i < n && err == LST_OK; i++) {
        va_lkey(ctx, &pg.tmp, "m:%s", ids[i]);
        const char *argv[] = {"HGETALL", pg.tmp.data};
        err = lst_redis_pipe_add(*hashes, 2, argv, NULL);
        queue_checks(&pg, &checks, ids[i]);
    }
    if (err == LST_OK && n > 0)
        err = lst_redis_pipe_exec(ctx->svc->redis, *hashes);
    if (err == LST_OK && n > 0 && lst_redis_pipe_len(checks.pipe) > 0)
        err = lst_redis_pipe_exec(ctx->svc->redis, checks.pipe);
    size_t at = 0;
    for (size_t i = 0; i < n && err == LST_OK; i++) {
        struct hview h;
        hview_of(lst_redis_pipe_reply(*hashes, i), &h);
        bool members = checks_pass(&pg, &checks, &at);
        match[i] = members && hash_matches(f, &h) && time_matches(f, &h);
    }
    lst_redis_pipe_destroy(checks.pipe);
    lst_buf_cleanup(&pg.tmp);
    if (err != LST_OK) {
        lst_redis_pipe_destroy(*hashes);
        *hashes = NULL;
    }
    return err;
}

const char *va_feed_hget(const redisReply *hash, const char *field)
{
    return hget(hash, field);
}
