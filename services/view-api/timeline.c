/* GET /api/timeline: all communication, newest first, filtered (feed.c). */
#include "view_api.h"

/* The query of a timeline page (and of an employee's history, the same page): the filter,
 * a saved view, the page. */
static const char *const page_params[] = {"view", "limit", "cursor", NULL};
const struct va_query_spec va_timeline_query = {"GET", "/api/timeline", page_params, true};
const struct va_query_spec va_history_query = {"GET", "/api/employees/{id}/history", page_params,
                                               true};

/* Whether the employee is known: in the directory (as GET /api/employees/{id} decides) or
 * with a history left (x:emp:<id>). 1, 0, or -1 when the store could not be read. */
static int employee_known(struct va_req *r, const char *id)
{
    struct va_employee e = {0};
    struct lst_buf k;
    redisReply *rep = NULL;
    bool found = false;
    int known = -1;
    lst_buf_init(&k);
    if (va_directory_get(r->ctx, &id, 1, &e, &found) == LST_OK)
        known = found ? 1 : 0;
    if (known == 0 && va_lkey(r->ctx, &k, "x:emp:%s", id) == LST_OK) {
        const char *argv[] = {"EXISTS", k.data};
        known = lst_redis_cmd(r->ctx->svc->redis, &rep, 2, argv, NULL) == LST_OK &&
                        rep->type == REDIS_REPLY_INTEGER
                    ? rep->integer > 0
                    : -1;
    }
    if (rep != NULL)
        freeReplyObject(rep);
    va_employee_cleanup(&e);
    lst_buf_cleanup(&k);
    return known;
}

/* GDPR: a page that shows one person's traffic is audited once it is answered with data (a
 * refused request shows nothing). Every page counts (a crafted cursor does not dodge it);
 * the detail tells the first page from the following ones. */
static void audit_page(struct va_req *r, const char *recipient, const struct va_filter *f,
                       bool next)
{
    if (recipient != NULL)
        va_audit_view(r, recipient, next ? "history: next page" : "history: first page");
    else
        va_audit_filter(r, f, next ? "timeline: next page" : "timeline: first page");
}

static void page(struct va_req *r, const char *recipient, struct va_filter *f)
{
    struct lst_buf why, out;
    struct va_cursor cur = {0};
    int64_t limit = 0;
    const char *c = lst_http_query(r->http, "cursor");
    lst_buf_init(&why);
    lst_buf_init(&out);
    const char *view = lst_http_query(r->http, "view");
    if (c != NULL && !va_cursor_parse(c, &cur))
        lst_buf_puts(&why, "cursor: not a cursor of this list");
    /* a saved view (views.c): its filter, the request's parameters overriding it */
    int vst = why.len == 0 && view != NULL ? va_view_filter(r, view, f, &why) : 0;
    if (vst == 404 || vst == 503) {
        if (vst == 404)
            lst_http_problem(r->resp, 404, "view-not-found", "View Not Found", "no such view");
        else
            lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                             "the projections could not be read");
        goto out;
    }
    if (why.len > 0 || vst != 0 || (view == NULL && !va_filter_parse(r->http, f, &why)) ||
        !va_query_limit(r, 50, &limit, &why)) {
        lst_http_problem(r->resp, 400, "invalid-query", "Invalid Query Parameter", "%s",
                         why.data ? why.data : "invalid");
        goto out;
    }
    if (!va_readvis_filter(&r->ctx->readvis, f, &why)) {
        lst_http_problem(r->resp, 400, "read-status-hidden", "Read Status Not Visible", "%s",
                         why.data ? why.data : "read information is off");
        goto out;
    }
    int known = recipient != NULL ? employee_known(r, recipient) : 1;
    if (known == 0) {
        lst_http_problem(r->resp, 404, "employee-not-found", "Employee Not Found",
                         "no employee with this ID");
        goto out;
    }
    if (known < 0 || va_feed_page(r->ctx, f, &cur, limit, recipient, &out) != LST_OK) {
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the projections could not be read");
        goto out;
    }
    audit_page(r, recipient, f, c != NULL);
    va_reply_json(r, 200, &out);
out:
    lst_buf_cleanup(&why);
    lst_buf_cleanup(&out);
}

void va_handle_timeline(void *ud, const struct lst_http_request *req,
                        struct lst_http_response *resp)
{
    struct va_req r;
    struct va_filter f = {0};
    if (!va_begin(ud, req, resp, VA_ROLE_DISPATCHER, &r)) /* also the query (va_timeline_query) */
        return;
    page(&r, NULL, &f);
    va_filter_cleanup(&f);
}

/* Everything to and from one employee (the ledger indexes both directions under x:emp:<id>),
 * with that employee's own delivery state on each outgoing message. The other timeline
 * filters apply too. 404 for an unknown employee; audited (GDPR: who opened whose history)
 * when answered. */
void va_history(struct va_req *r, const char *employee_id)
{
    struct va_filter f = {0};
    page(r, employee_id, &f); /* va_begin checked the query (va_history_query) */
    va_filter_cleanup(&f);
}
