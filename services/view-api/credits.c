/* GET /api/credits: sends and the credits they cost per department or dispatcher over a time
 * range, from the ledger's day buckets (cr:<day>, docs/ledger.md), plus the Gateway's current
 * balance. The balance is asked from the Gateway (GET /credits, lst/gateway.h) with the shared
 * Gateway settings and cached for LST_VIEW_BALANCE_TTL_MS, so any number of dashboards cost
 * the Gateway one call per TTL; without LST_GATEWAY_ID/SECRET the balance is null with a
 * reason. One accepted send costs one credit (the ledger counts each once). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lst/gateway.h"
#include "lst/gateway_config.h"
#include "lst/log.h"
#include "view_api.h"

#define DAY_MS    INT64_C(86400000)
#define MAX_DAYS  400
#define MAX_GROUP 2000

struct va_balance {
    pthread_mutex_t mu;
    bool fetched;    /* a call was made (ok or not) */
    int64_t at_mono; /* when */
    int64_t at_wall;
    int64_t credits; /* valid when ok */
    bool ok;
    char error[160];
};

lst_err va_balance_create(struct va_balance **out)
{
    struct va_balance *b = calloc(1, sizeof(*b));
    *out = NULL;
    if (b == NULL)
        return LST_ERR_NOMEM;
    pthread_mutex_init(&b->mu, NULL);
    *out = b;
    return LST_OK;
}

void va_balance_destroy(struct va_balance *b)
{
    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static void fetch(struct view_api *ctx, struct va_balance *b)
{
    struct lst_gateway *gw = NULL;
    struct lst_gateway_result res = {0};
    int64_t credits = 0;
    b->ok = false;
    b->error[0] = '\0';
    if (ctx->cfg.gw.gateway_id == NULL || ctx->cfg.gw.secret == NULL) {
        snprintf(b->error, sizeof(b->error), "the Gateway is not configured (LST_GATEWAY_ID)");
        return;
    }
    if (lst_gateway_settings_client(&ctx->cfg.gw, &gw) != LST_OK) {
        snprintf(b->error, sizeof(b->error), "the Gateway client could not be created");
        return;
    }
    if (lst_gateway_credits(gw, &credits, &res) == LST_GATEWAY_OK) {
        b->ok = true;
        b->credits = credits;
    } else {
        snprintf(b->error, sizeof(b->error), "the Gateway answered %s (HTTP %ld)",
                 lst_gateway_outcome_name(res.outcome), res.http_status);
        LST_WARN("view_api.balance_failed", "%s", b->error);
    }
    lst_gateway_destroy(gw);
}

/* Appends "balance":{...}: cached, refreshed when older than the TTL (failures too, so a
 * Gateway outage does not turn every request into a slow call). One caller refreshes; the
 * others wait for it and take its answer. */
static void balance_json(struct view_api *ctx, struct lst_buf *out)
{
    struct va_balance *b = ctx->balance;
    if (b == NULL) {
        lst_buf_puts(out, ",\"balance\":null");
        return;
    }
    pthread_mutex_lock(&b->mu);
    int64_t now = lst_mono_ms();
    if (!b->fetched || now - b->at_mono >= ctx->cfg.balance_ttl_ms) {
        fetch(ctx, b);
        b->fetched = true;
        b->at_mono = lst_mono_ms();
        b->at_wall = lst_wall_ms();
    }
    if (b->ok)
        lst_buf_printf(out, ",\"balance\":{\"credits\":%lld,\"fetched_at\":%lld}",
                       (long long)b->credits, (long long)b->at_wall);
    else {
        lst_buf_printf(out, ",\"balance\":{\"credits\":null,\"fetched_at\":%lld",
                       (long long)b->at_wall);
        va_json_kv(out, true, "error", b->error);
        lst_buf_puts(out, "}");
    }
    pthread_mutex_unlock(&b->mu);
}

struct group {
    char *name;
    int64_t credits;
};

struct tally {
    struct group *g;
    size_t n, cap;
    int64_t total;
    int64_t beyond; /* sends of the groups past MAX_GROUP: in the total, in no group */
};

static lst_err tally_add(struct tally *t, const char *name, int64_t v)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->g[i].name, name) == 0) {
            t->g[i].credits += v;
            return LST_OK;
        }
    }
    if (t->n >= MAX_GROUP) {
        t->beyond += v; /* more groups than any dashboard shows: the total still counts */
        return LST_OK;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        struct group *g = realloc(t->g, cap * sizeof(*g));
        if (g == NULL)
            return LST_ERR_NOMEM;
        t->g = g;
        t->cap = cap;
    }
    t->g[t->n].name = lst_strdup(name);
    if (t->g[t->n].name == NULL)
        return LST_ERR_NOMEM;
    t->g[t->n++].credits = v;
    return LST_OK;
}

static void tally_cleanup(struct tally *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->g[i].name);
    free(t->g);
}

static int cmp_group(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    if (x->credits != y->credits)
        return x->credits > y->credits ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Sums the day hashes: field "all" into the total, "<prefix><name>" per group. */
static lst_err sum_days(struct view_api *ctx, int64_t d0, int64_t d1, const char *prefix,
                        struct tally *t)
{
    struct lst_redis_pipe *p = NULL;
    struct lst_buf k;
    size_t plen = strlen(prefix);
    lst_err err = lst_redis_pipe_create(&p);
    lst_buf_init(&k);
    for (int64_t d = d0; d <= d1 && err == LST_OK; d++) {
        va_lkey(ctx, &k, "cr:%lld", (long long)d);
        const char *argv[] = {"HGETALL", k.data};
        err = lst_redis_pipe_add(p, 2, argv, NULL);
    }
    if (err == LST_OK)
        err = lst_redis_pipe_exec(ctx->svc->redis, p);
    for (int64_t d = d0; d <= d1 && err == LST_OK; d++) {
        const redisReply *h = lst_redis_pipe_reply(p, (size_t)(d - d0));
        for (size_t i = 0;
             h != NULL && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements && err == LST_OK;
             i += 2) {
            int64_t v = 0;
            const char *f = h->element[i]->str;
            if (lst_parse_i64(h->element[i + 1]->str, 0, INT64_MAX / 4, &v) != LST_OK)
                continue;
            if (strcmp(f, "all") == 0)
                t->total += v;
            else if (strncmp(f, prefix, plen) == 0 && f[plen] != '\0')
                err = tally_add(t, f + plen, v);
        }
    }
    lst_redis_pipe_destroy(p);
    lst_buf_cleanup(&k);
    return err;
}

static const char *const range_params[] = {"from", "to", "group", NULL};
const struct va_query_spec va_credits_query = {"GET", "/api/credits", range_params, false};

static bool parse_range(const struct va_req *r, int64_t *from, int64_t *to, const char **group,
                        struct lst_buf *why)
{
    const char *f = lst_http_query(r->http, "from"), *t = lst_http_query(r->http, "to");
    const char *g = lst_http_query(r->http, "group");
    *to = lst_wall_ms();
    if (t != NULL && !va_parse_time_ms("to", t, to, why))
        return false;
    *from = *to - 30 * DAY_MS;
    if (*from < 0)
        *from = 0;
    if (f != NULL && !va_parse_time_ms("from", f, from, why))
        return false;
    if (*from > *to) {
        lst_buf_puts(why, "from: must not be after to");
        return false;
    }
    if (*to / DAY_MS - *from / DAY_MS >= MAX_DAYS) {
        lst_buf_printf(why, "from: the range may span at most %d days", MAX_DAYS);
        return false;
    }
    *group = g == NULL ? "department" : g;
    if (strcmp(*group, "department") != 0 && strcmp(*group, "dispatcher") != 0) {
        lst_buf_puts(why, "group: department or dispatcher");
        return false;
    }
    return true;
}

static void respond(struct va_req *r, int64_t from, int64_t to, const char *group, struct tally *t)
{
    struct lst_buf b;
    lst_buf_init(&b);
    if (t->n > 0)
        qsort(t->g, t->n, sizeof(*t->g), cmp_group);
    lst_buf_printf(&b, "{\"from\":%lld,\"to\":%lld,\"first_day\":%lld,\"last_day\":%lld",
                   (long long)from, (long long)to, (long long)(from / DAY_MS * DAY_MS),
                   (long long)(to / DAY_MS * DAY_MS));
    va_json_kv(&b, true, "group", group);
    lst_buf_printf(&b, ",\"total\":{\"sends\":%lld,\"credits\":%lld},\"groups\":[",
                   (long long)t->total, (long long)t->total);
    int64_t grouped = 0;
    for (size_t i = 0; i < t->n; i++) {
        lst_buf_puts(&b, i > 0 ? ",{" : "{");
        va_json_kv(&b, false, "name", t->g[i].name);
        lst_buf_printf(&b, ",\"sends\":%lld,\"credits\":%lld}", (long long)t->g[i].credits,
                       (long long)t->g[i].credits);
        grouped += t->g[i].credits;
    }
    /* Sends of messages without the group's value (a dispatcher token without a department):
     * the groups add up to the total, and a null name cannot be mistaken for a department. */
    int64_t none = t->total - grouped - t->beyond;
    if (none > 0)
        lst_buf_printf(&b, "%s{\"name\":null,\"sends\":%lld,\"credits\":%lld}", t->n ? "," : "",
                       (long long)none, (long long)none);
    lst_buf_puts(&b, "]");
    balance_json(r->ctx, &b);
    lst_buf_puts(&b, "}");
    va_reply_json(r, 200, &b);
    lst_buf_cleanup(&b);
}

void va_handle_credits(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct va_req r;
    struct lst_buf why;
    struct tally t = {0};
    int64_t from = 0, to = 0;
    const char *group = NULL;
    if (!va_begin(ud, req, resp, VA_ROLE_DISPATCHER, &r)) /* also the query (va_credits_query) */
        return;
    lst_buf_init(&why);
    if (!parse_range(&r, &from, &to, &group, &why)) {
        lst_http_problem(resp, 400, "invalid-query", "Invalid Query Parameter", "%s",
                         why.data ? why.data : "invalid");
        goto out;
    }
    if (sum_days(r.ctx, from / DAY_MS, to / DAY_MS,
                 strcmp(group, "department") == 0 ? "dep:" : "disp:", &t) != LST_OK) {
        lst_http_problem(resp, 503, "store-unavailable", "Store Unavailable",
                         "the projections could not be read");
        goto out;
    }
    respond(&r, from, to, group, &t);
out:
    tally_cleanup(&t);
    lst_buf_cleanup(&why);
}

/* The Gateway settings as an optional section: the same variables as every other program
 * (lst/gateway_config.h), none required, since the view-api only asks for the balance. */
struct lst_config_section view_api_gateway_section(struct view_api_config *cfg)
{
    struct lst_config_section s = lst_gateway_config_section_optional(&cfg->gw);
    s.title = "Threema Gateway (optional: the credit balance)";
    return s;
}
