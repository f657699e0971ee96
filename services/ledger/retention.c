/* Retention: messages older than LST_LEDGER_RETENTION_MS are purged from the projections by
 * a script of their own (prelude + employee_erase helpers + retention.lua), at most
 * LST_LEDGER_RETENTION_BATCH items per run, one run every LST_LEDGER_RETENTION_INTERVAL_MS
 * (sooner while a backlog remains), so a purge never blocks Redis for long. */
#include <stdio.h>
#include <stdlib.h>

#include "ledger.h"
#include "lst/log.h"
#include "scripts.h"

struct ledger_retention {
    struct lst_redis_script *script;
    int64_t next; /* mono ms of the next run */
    struct lst_counter *m_purged;
    struct lst_counter *m_held;
};

static char *source(void)
{
    const char *parts[] = {ledger_lua_prelude, ledger_lua_employee_erase, ledger_lua_retention};
    struct lst_buf b;

    lst_buf_init(&b);
    for (size_t i = 0; i < LST_ARRAY_LEN(parts); i++) {
        lst_buf_puts(&b, parts[i]);
        lst_buf_puts(&b, "\n");
    }
    if (lst_buf_failed(&b)) {
        lst_buf_cleanup(&b);
        return NULL;
    }
    return lst_buf_steal(&b);
}

lst_err ledger_retention_create(struct lst_metrics *metrics, struct ledger_retention **out)
{
    struct ledger_retention *r = calloc(1, sizeof(*r));
    char *src = source();
    lst_err err = r != NULL && src != NULL ? LST_OK : LST_ERR_NOMEM;

    if (err == LST_OK)
        err = lst_redis_script_create(src, true, &r->script);
    free(src);
    if (err != LST_OK) {
        ledger_retention_destroy(r);
        return err;
    }
    if (metrics != NULL) {
        r->m_purged = lst_metrics_counter(metrics, "lst_ledger_retention_purged_total",
                                          "Items purged by the retention period", NULL);
        r->m_held = lst_metrics_counter(
            metrics, "lst_ledger_retention_held_purged_total",
            "Held receipts (no send outcome ever matched them) purged by the retention period",
            NULL);
    }
    *out = r;
    return LST_OK;
}

void ledger_retention_destroy(struct ledger_retention *r)
{
    if (r == NULL)
        return;
    lst_redis_script_destroy(r->script);
    free(r);
}

/* One run: purges up to batch items at or before the cutoff, then up to batch held receipts.
 * *purged, *oldest (ms, -1: none left), *held. A purge is repeatable (removing what is gone is a
 * no-op), so the script counts as idempotent and is retried after a reconnect. */
lst_err ledger_retention_run(struct ledger_retention *r, struct lst_redis *redis, int64_t cutoff,
                             int64_t batch, int64_t *purged, int64_t *oldest, int64_t *held)
{
    char a_rrn[] = "0", a_win[] = "0", a_cut[24], a_max[24];
    const char *argv[] = {a_rrn, a_win, a_cut, a_max};
    redisReply *reply = NULL;
    lst_err err;

    snprintf(a_cut, sizeof(a_cut), "%lld", (long long)cutoff);
    snprintf(a_max, sizeof(a_max), "%lld", (long long)batch);
    err = lst_redis_script_call(redis, r->script, &reply, 0, 4, argv, NULL);
    if (err == LST_OK && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
                          reply->element[0]->type != REDIS_REPLY_INTEGER ||
                          reply->element[1]->type != REDIS_REPLY_INTEGER ||
                          reply->element[2]->type != REDIS_REPLY_INTEGER))
        err = LST_ERR_REDIS;
    if (err == LST_OK) {
        *purged = reply->element[0]->integer;
        *oldest = reply->element[1]->integer;
        if (held != NULL)
            *held = reply->element[2]->integer;
        lst_counter_add(r->m_purged, (uint64_t)*purged);
        lst_counter_add(r->m_held, (uint64_t)reply->element[2]->integer);
    }
    if (reply != NULL)
        freeReplyObject(reply);
    return err;
}

void ledger_retention_tick(struct ledger *ctx)
{
    const struct ledger_config *cfg = &ctx->cfg;
    int64_t now = lst_mono_ms(), purged = 0, oldest = -1, held = 0;

    if (cfg->retention_ms <= 0 || ctx->retention == NULL || now < ctx->retention->next)
        return;
    lst_err err =
        ledger_retention_run(ctx->retention, ctx->core.redis, lst_wall_ms() - cfg->retention_ms,
                             cfg->retention_batch, &purged, &oldest, &held);
    if (err != LST_OK)
        LST_WARN("ledger.retention_failed", "%s", lst_strerror(err));
    else if (purged > 0 || held > 0)
        LST_INFO("ledger.retention", "purged %lld items and %lld held receipts older than %lld ms",
                 (long long)purged, (long long)held, (long long)cfg->retention_ms);
    /* a full batch means more is due: go on soon, but let the consumer run in between */
    bool more = purged >= cfg->retention_batch || held >= cfg->retention_batch;
    ctx->retention->next = now + (err == LST_OK && more ? 100 : cfg->retention_interval_ms);
}
