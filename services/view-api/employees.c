/* GET /api/employees: the directory, in employee ID order, with search and filters and a
 * cursor (the last ID of the page). The directory is small (hundreds to a few thousand
 * people), so a page walks the ID index and filters the loaded entries; a page examines at
 * most LST_VIEW_SCAN_MAX entries and then returns what it has with a cursor to go on. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "view_api.h"

#define BATCH 200

struct emp_filter {
    struct lst_strv departments, vehicles, tags;
    bool has_active, active;
    const char *q;
};

static void emp_filter_cleanup(struct emp_filter *f)
{
    lst_strv_cleanup(&f->departments);
    lst_strv_cleanup(&f->vehicles);
    lst_strv_cleanup(&f->tags);
}

/* ASCII case-insensitive substring (UTF-8 bytes beyond ASCII compare exactly). */
static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (hay == NULL)
        return false;
    for (const char *p = hay; *p != '\0'; p++) {
        size_t i = 0;
        while (i < n && p[i] != '\0' &&
               tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return false;
}

static bool matches(const struct emp_filter *f, const struct va_employee *e)
{
    if (f->departments.len > 0 && !lst_strv_has(&f->departments, e->department))
        return false;
    if (f->vehicles.len > 0 && !lst_strv_has(&f->vehicles, e->vehicle))
        return false;
    if (f->tags.len > 0) {
        bool any = false;
        for (size_t i = 0; i < e->tags.len && !any; i++)
            any = lst_strv_has(&f->tags, e->tags.items[i]);
        if (!any)
            return false;
    }
    if (f->has_active && e->active != f->active)
        return false;
    if (f->q != NULL && !contains_ci(e->name, f->q) && !contains_ci(e->id, f->q) &&
        !contains_ci(e->vehicle, f->q) && !contains_ci(e->department, f->q))
        return false;
    return true;
}

static const char *const list_params[] = {"q",      "department", "vehicle", "tag",
                                          "active", "limit",      "cursor",  NULL};
const struct va_query_spec va_employees_query = {"GET", "/api/employees", list_params, false};

static bool parse_filter(const struct lst_http_request *req, struct emp_filter *f,
                         struct lst_buf *why)
{
    const char *active = lst_http_query(req, "active");
    if (!va_query_list(req, "department", LST_LABEL_MAX, &f->departments, why) ||
        !va_query_list(req, "vehicle", LST_LABEL_MAX, &f->vehicles, why) ||
        !va_query_list(req, "tag", LST_TAG_MAX, &f->tags, why))
        return false;
    if (active != NULL) {
        if (lst_parse_bool(active, &f->active) != LST_OK) {
            lst_buf_puts(why, "active: true or false");
            return false;
        }
        f->has_active = true;
    }
    f->q = lst_http_query(req, "q");
    if (f->q != NULL &&
        (strlen(f->q) == 0 || strlen(f->q) > LST_NAME_MAX || !lst_utf8_valid(f->q, strlen(f->q)))) {
        lst_buf_printf(why, "q: 1 to %d bytes of UTF-8", LST_NAME_MAX);
        return false;
    }
    return true;
}

/* The employees a page shows, owned; their reach is read once the page is complete. */
struct shown {
    struct va_employee *v;
    bool *found;
    size_t n, cap;
};

static lst_err show(struct shown *s, struct va_employee *e)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct va_employee *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL)
            return LST_ERR_NOMEM;
        s->v = v;
        bool *found = realloc(s->found, cap * sizeof(*found));
        if (found == NULL)
            return LST_ERR_NOMEM;
        s->found = found;
        s->cap = cap;
    }
    s->found[s->n] = true;
    s->v[s->n++] = *e;
    memset(e, 0, sizeof(*e));
    return LST_OK;
}

static void shown_cleanup(struct shown *s)
{
    for (size_t i = 0; i < s->n; i++)
        va_employee_cleanup(&s->v[i]);
    free(s->v);
    free(s->found);
}

/* One batch of IDs: loads them and takes the matches into *page; *last is the last examined
 * ID. */
static lst_err scan_batch(struct view_api *ctx, const struct emp_filter *f,
                          const struct lst_strv *ids, int64_t limit, struct shown *page,
                          char **last)
{
    struct va_employee *emps = calloc(ids->len, sizeof(*emps));
    bool *found = calloc(ids->len, sizeof(*found));
    lst_err result = emps == NULL || found == NULL ? LST_ERR_NOMEM : LST_OK;
    if (result == LST_OK)
        result = va_directory_get(ctx, (const char *const *)ids->items, ids->len, emps, found);
    for (size_t i = 0; i < ids->len && result == LST_OK && (int64_t)page->n < limit; i++) {
        free(*last);
        *last = lst_strdup(ids->items[i]);
        if (found[i] && matches(f, &emps[i]))
            result = show(page, &emps[i]);
    }
    for (size_t i = 0; emps != NULL && i < ids->len; i++)
        va_employee_cleanup(&emps[i]);
    free(emps);
    free(found);
    return result;
}

/* The page's items: how each employee is reached is read for the shown ones only (a batch
 * holds up to BATCH entries to filter); one on the erased list drops out. */
static lst_err page_items(struct view_api *ctx, struct shown *page, struct lst_buf *out)
{
    lst_err result = va_reach_read(ctx, page->v, page->found, page->n);
    bool first = true;
    lst_buf_puts(out, "{\"items\":[");
    for (size_t i = 0; i < page->n && result == LST_OK; i++) {
        if (!page->found[i])
            continue;
        if (!first)
            lst_buf_puts(out, ",");
        va_employee_json(out, &page->v[i]);
        first = false;
    }
    lst_buf_puts(out, "]");
    return result;
}

static bool filtered(const struct emp_filter *f)
{
    return f->departments.len > 0 || f->vehicles.len > 0 || f->tags.len > 0 || f->has_active ||
           f->q != NULL;
}

/* IDs to read next: a filter may drop most, so a full batch; without one every entry is
 * shown, so what the page still needs plus one, which tells whether the index ends with it
 * (the HMGETs of 150 entries the page never showed were a third of its CPU). */
static size_t batch_size(const struct emp_filter *f, int64_t limit, const struct shown *page)
{
    int64_t need = limit - (int64_t)page->n + 1;
    return filtered(f) || need > BATCH ? BATCH : (size_t)need;
}

static lst_err list_page(struct view_api *ctx, const struct emp_filter *f, const char *cursor,
                         int64_t limit, struct lst_buf *out)
{
    lst_err result = LST_OK;
    struct shown page = {0};
    char *last = cursor != NULL ? lst_strdup(cursor) : NULL;
    int64_t scanned = 0;
    bool end = false;
    while ((int64_t)page.n < limit && !end && scanned < ctx->cfg.scan_max && result == LST_OK) {
        struct lst_strv ids = {0};
        size_t want = batch_size(f, limit, &page);
        result = va_directory_ids(ctx, last, want, &ids);
        if (result == LST_OK) {
            scanned += (int64_t)ids.len;
            result = scan_batch(ctx, f, &ids, limit, &page, &last);
            /* the end of the index, unless the page filled before this batch was examined */
            end = ids.len < want && (ids.len == 0 || strcmp(last, ids.items[ids.len - 1]) == 0);
        }
        lst_strv_cleanup(&ids);
    }
    if (result == LST_OK)
        result = page_items(ctx, &page, out);
    lst_buf_puts(out, ",\"next_cursor\":");
    if (!end && last != NULL)
        lst_buf_json_str(out, last, strlen(last));
    else
        lst_buf_puts(out, "null");
    lst_buf_puts(out, "}");
    free(last);
    shown_cleanup(&page);
    return result;
}

static void list(struct va_req *r)
{
    struct emp_filter f = {0};
    struct lst_buf why, out;
    int64_t limit;
    const char *cursor = lst_http_query(r->http, "cursor");
    lst_buf_init(&why);
    lst_buf_init(&out);
    if (cursor != NULL && !va_employee_id_ok(cursor))
        lst_buf_puts(&why, "cursor: not a cursor of this list");
    if (why.len > 0 || !parse_filter(r->http, &f, &why) || !va_query_limit(r, 50, &limit, &why)) {
        lst_http_problem(r->resp, 400, "invalid-query", "Invalid Query Parameter", "%s",
                         why.data ? why.data : "invalid");
        goto out;
    }
    if (list_page(r->ctx, &f, cursor, limit, &out) != LST_OK) {
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the directory could not be read");
        goto out;
    }
    va_reply_json(r, 200, &out);
out:
    emp_filter_cleanup(&f);
    lst_buf_cleanup(&why);
    lst_buf_cleanup(&out);
}

void va_handle_employees(void *ud, const struct lst_http_request *req,
                         struct lst_http_response *resp)
{
    struct va_req r;
    if (!va_begin(ud, req, resp, VA_ROLE_DISPATCHER, &r)) /* also the query (va_employees_query) */
        return;
    list(&r);
}

static void one(struct va_req *r, const char *id)
{
    struct va_employee e = {0};
    bool found = false;
    struct lst_buf out;
    lst_buf_init(&out);
    if (va_directory_get_reach(r->ctx, &id, 1, &e, &found) != LST_OK) {
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the directory could not be read");
    } else if (!found) {
        lst_http_problem(r->resp, 404, "employee-not-found", "Employee Not Found",
                         "no employee with this ID");
    } else {
        va_employee_json(&out, &e);
        va_reply_json(r, 200, &out);
    }
    va_employee_cleanup(&e);
    lst_buf_cleanup(&out);
}

/* /api/employees/{id} and /api/employees/{id}/history */
void va_handle_employee_sub(void *ud, const struct lst_http_request *req,
                            struct lst_http_response *resp)
{
    struct va_req r;
    char id[LST_EMPLOYEE_ID_MAX + 1];
    const char *rest = req->path + strlen("/api/employees/");
    size_t len = strcspn(rest, "/");
    if (!va_begin(ud, req, resp, VA_ROLE_DISPATCHER, &r))
        return;
    if (len == 0 || len > LST_EMPLOYEE_ID_MAX) {
        lst_http_problem(resp, 404, "not-found", "Not Found", "no such resource");
        return;
    }
    memcpy(id, rest, len);
    id[len] = '\0';
    if (!va_employee_id_ok(id)) {
        lst_http_problem(resp, 400, "invalid-employee-id", "Invalid Employee ID",
                         "employee IDs match ^[A-Za-z0-9][A-Za-z0-9._-]*$");
        return;
    }
    if (rest[len] == '\0')
        one(&r, id);
    else if (strcmp(rest + len, "/history") == 0)
        va_history(&r, id);
    else
        lst_http_problem(resp, 404, "not-found", "Not Found", "no such resource");
}
