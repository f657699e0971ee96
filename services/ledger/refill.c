/* Refill markers: tell the readers of the projections (the view API) that Redis lost progress
 * and the ledger is replaying Kafka to get back to where it was.
 *
 * Why: the watermarks make the ledger itself safe against a Redis restarted from an older
 * AOF/RDB (it resumes at watermark + 1 and refills), but until the refill is done the
 * projections are older than what the view API already showed, so a recipient shown "read"
 * would be shown "delivered" again. The ledger is the only one that knows how far it had
 * applied, so it writes that down in Redis before it applies anything:
 *
 *   refill (hash)  field "<topic>:<partition>" -> the offset the watermark must reach again
 *                  field "run"                 -> run_id of the Redis server whose watermarks a
 *                                                 ledger has checked (after every new connection)
 *
 * A field is set when a partition's watermark is behind the offset this process had applied
 * (Redis lost progress while the ledger ran), behind the group's committed offset at start
 * (Redis went back while no ledger ran), or behind the end of the partition when Redis
 * holds no watermark at all (an empty Redis: a rebuild). Its removal is atomic with the check
 * that the watermark reached it (clear script), by whichever ledger gets there; every ledger
 * adopts the fields it finds (a marker left by a crashed or slower instance). A marker beyond
 * the end of its partition (topic re-created) is cut back to the end. The view API answers 503
 * while any partition field exists, or while "run" is not the run_id of the server it talks to
 * (Redis restarted and no ledger has checked it yet). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "lst/log.h"

#define RUN_ID_MAX        64
#define HIGH_WAIT_MS      2000
#define COMMITTED_WAIT_MS 3000 /* the group coordinator's answer, once per start */
#define LAST_UNKNOWN      "-2"

/* KEYS[1] wm, KEYS[2] refill; ARGV[1] field, ARGV[2] the offset this process had applied (-1:
 * none), ARGV[3] the partition's last offset in Kafka (-1: empty; -2: not known). Returns {wm,
 * target}: target -1 when no refill is needed, -2 when the last offset is needed to decide
 * (nothing written then). Idempotent. */
static const char CHECK_LUA[] =
    "local f, applied, last = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local wm = tonumber(redis.call('HGET', KEYS[1], f) or '-1')\n"
    "local marked = redis.call('HGET', KEYS[2], f)\n"
    "local want = tonumber(marked or '-1')\n"
    "if applied > want then want = applied end\n"
    "local empty = wm < 0 and redis.call('EXISTS', KEYS[1]) == 0\n"
    "if last == -2 then\n"
    "  if marked or empty then return {wm, -2} end\n"
    "else\n"
    "  if empty and last > want then want = last end\n"
    "  if want > last then want = last end\n"
    "end\n"
    "if want > wm then\n"
    "  if want ~= tonumber(marked or '-1') then redis.call('HSET', KEYS[2], f, want) end\n"
    "  return {wm, want}\n"
    "end\n"
    "if marked then redis.call('HDEL', KEYS[2], f) end\n"
    "return {wm, -1}\n";

/* KEYS[1] wm, KEYS[2] refill; ARGV[1] field. Removes the field when the watermark reached it;
 * returns the target still to reach (-1: none). Idempotent. */
static const char CLEAR_LUA[] =
    "local t = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "if not t then return -1 end\n"
    "local wm = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')\n"
    "if tonumber(t) <= wm then redis.call('HDEL', KEYS[2], ARGV[1]) return -1 end\n"
    "return tonumber(t)\n";

struct refill_part {
    int64_t applied; /* the highest offset this process applied (-1: none); never goes back;
                        at start the group's committed offset - 1 (what an earlier ledger
                        applied to this Redis) */
    int64_t pos;     /* the last offset applied since the partition was (re)assigned */
    int64_t target;  /* a marker this process knows of (-1: none) */
    bool asked;      /* the group's committed offset was asked for (once per process) */
};

struct ledger_refill {
    struct lst_redis_script *check, *clear;
    struct refill_part *parts[LEDGER_T__COUNT];
    int32_t nparts[LEDGER_T__COUNT];
    size_t tracked;             /* partitions with a target */
    bool committed_unavailable; /* the group coordinator did not answer: ask no more */
    char run_id[RUN_ID_MAX];
    unsigned long conns; /* Redis connections when run_id was read */
    struct lst_gauge *m_refilling;
    struct lst_buf tmp;
};

lst_err ledger_refill_create(struct lst_metrics *metrics, struct ledger_refill **out)
{
    struct ledger_refill *r = calloc(1, sizeof(*r));
    lst_err err = r != NULL ? LST_OK : LST_ERR_NOMEM;

    *out = NULL;
    if (err != LST_OK)
        return err;
    lst_buf_init(&r->tmp);
    err = lst_redis_script_create(CHECK_LUA, true, &r->check);
    if (err == LST_OK)
        err = lst_redis_script_create(CLEAR_LUA, true, &r->clear);
    if (err != LST_OK) {
        ledger_refill_destroy(r);
        return err;
    }
    if (metrics != NULL)
        r->m_refilling = lst_metrics_gauge(
            metrics, "lst_ledger_refill_partitions",
            "Partitions being refilled after Redis lost progress (the view API answers 503)", NULL);
    *out = r;
    return LST_OK;
}

void ledger_refill_destroy(struct ledger_refill *r)
{
    if (r == NULL)
        return;
    lst_redis_script_destroy(r->check);
    lst_redis_script_destroy(r->clear);
    for (int t = 0; t < LEDGER_T__COUNT; t++)
        free(r->parts[t]);
    lst_buf_cleanup(&r->tmp);
    free(r);
}

static struct refill_part *part(struct ledger_refill *r, enum ledger_topic t, int32_t p)
{
    if ((unsigned)t >= LEDGER_T__COUNT || p < 0 || p > 100000)
        return NULL;
    if (p >= r->nparts[t]) {
        int32_t n = p + 1;
        struct refill_part *parts = realloc(r->parts[t], (size_t)n * sizeof(*parts));
        if (parts == NULL)
            return NULL;
        for (int32_t i = r->nparts[t]; i < n; i++)
            parts[i] = (struct refill_part){.applied = -1, .pos = -1, .target = -1};
        r->parts[t] = parts;
        r->nparts[t] = n;
    }
    return &r->parts[t][p];
}

static void set_target(struct ledger_refill *r, struct refill_part *pt, int64_t target)
{
    if (pt->target < 0 && target >= 0)
        r->tracked++;
    else if (pt->target >= 0 && target < 0)
        r->tracked--;
    pt->target = target;
    lst_gauge_set(r->m_refilling, (double)r->tracked);
}

bool ledger_refill_active(const struct ledger_refill *r)
{
    return r != NULL && r->tracked > 0;
}

/* "run_id:<hex>" from INFO server. */
static lst_err read_run_id(struct lst_redis *redis, char *out, size_t cap)
{
    redisReply *reply = NULL;
    lst_err err = lst_redis_cmdf(redis, &reply, "INFO server");
    const char *p = NULL;

    if (err == LST_OK && reply->type == REDIS_REPLY_STRING)
        p = strstr(reply->str, "run_id:");
    if (p != NULL) {
        p += strlen("run_id:");
        size_t len = strcspn(p, "\r\n");
        if (len == 0 || len >= cap)
            p = NULL;
        else {
            memcpy(out, p, len);
            out[len] = '\0';
        }
    }
    if (reply != NULL)
        freeReplyObject(reply);
    if (err == LST_ERR_INVALID || (err == LST_OK && p == NULL)) {
        /* INFO refused (an ACL) or without run_id: the markers still work, only the check of a
         * restarted server is not confirmed (the view API then goes by the markers alone) */
        LST_WARN("ledger.refill_no_run_id", "INFO server gave no run_id");
        out[0] = '\0';
        err = LST_OK;
    }
    return err;
}

lst_err ledger_refill_begin(struct ledger_refill *r, struct lst_redis *redis)
{
    lst_err err = read_run_id(redis, r->run_id, sizeof(r->run_id));

    r->conns = lst_redis_connect_count(redis);
    if (err != LST_OK)
        r->run_id[0] = '\0';
    return err;
}

lst_err ledger_refill_confirm(struct ledger_refill *r, struct lst_redis *redis)
{
    /* Another connection since begin may be another server (a restart): its watermarks were
     * not all checked, so it is not confirmed; the new connection forces another check. */
    if (lst_redis_connect_count(redis) != r->conns)
        return LST_ERR_STATE;
    if (r->run_id[0] == '\0')
        return LST_OK;
    return lst_redis_cmdf(redis, NULL, "HSET " LEDGER_PREFIX "refill run %s", r->run_id);
}

static void field_of(struct ledger_refill *r, const struct ledger *ctx, enum ledger_topic t,
                     int32_t p)
{
    lst_buf_reset(&r->tmp);
    lst_buf_printf(&r->tmp, "%s:%d", ctx->core.topics[t], (int)p);
}

/* Runs the check script; *wm and *target from its reply. */
static lst_err run_check(struct ledger_refill *r, struct lst_redis *redis, int64_t applied,
                         const char *last, int64_t *wm, int64_t *target)
{
    char abuf[24];
    redisReply *reply = NULL;
    const char *argv[] = {LEDGER_PREFIX "wm", LEDGER_PREFIX "refill", r->tmp.data, abuf, last};
    lst_err err;

    snprintf(abuf, sizeof(abuf), "%lld", (long long)applied);
    err = lst_redis_script_call(redis, r->check, &reply, 2, 5, argv, NULL);
    if (err == LST_OK && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
                          reply->element[0]->type != REDIS_REPLY_INTEGER ||
                          reply->element[1]->type != REDIS_REPLY_INTEGER))
        err = LST_ERR_REDIS;
    if (err == LST_OK) {
        *wm = reply->element[0]->integer;
        *target = reply->element[1]->integer;
    }
    if (reply != NULL)
        freeReplyObject(reply);
    return err == LST_ERR_INVALID ? LST_ERR_REDIS : err;
}

/* The partition's last offset in Kafka as decimal text ("-1": empty). */
static lst_err last_offset(struct ledger *ctx, enum ledger_topic t, int32_t p, char *out,
                           size_t cap)
{
    int64_t high = -1;
    lst_err err = lst_kafka_reader_high(ctx->reader, ctx->core.topics[t], p, HIGH_WAIT_MS, &high);

    if (err == LST_OK)
        snprintf(out, cap, "%lld", (long long)(high > 0 ? high - 1 : -1));
    return err;
}

/* A restarted ledger knows nothing of what it applied before; the group's committed offsets
 * do (committed only after the Redis flush of what they cover). A watermark behind them means
 * Redis went back while no ledger ran (restored from an older copy): without this the view
 * would serve the older projections while they are refilled. Asked once per partition and
 * process; a coordinator that does not answer costs one timeout, and then none is asked. */
static void learn_committed(struct ledger *ctx, enum ledger_topic t, int32_t p,
                            struct refill_part *pt)
{
    struct ledger_refill *r = ctx->refill;
    int64_t committed = -1;
    if (pt->asked || pt->applied >= 0 || r->committed_unavailable || ctx->reader == NULL)
        return;
    pt->asked = true;
    lst_err err = lst_kafka_reader_committed(ctx->reader, ctx->core.topics[t], p, COMMITTED_WAIT_MS,
                                             &committed);
    if (err != LST_OK) {
        r->committed_unavailable = true;
        LST_WARN("ledger.committed_unknown",
                 "the group's committed offsets are not available (%s): a Redis that went back "
                 "while no ledger ran is not detected at this start",
                 lst_strerror(err));
        return;
    }
    if (committed > 0)
        pt->applied = committed - 1;
}

lst_err ledger_refill_check(struct ledger *ctx, enum ledger_topic t, int32_t p)
{
    struct ledger_refill *r = ctx->refill;
    struct refill_part *pt = part(r, t, p);
    char last[24];
    int64_t wm = -1, target = -1;
    lst_err err;

    if (pt == NULL)
        return LST_ERR_NOMEM;
    learn_committed(ctx, t, p, pt);
    field_of(r, ctx, t, p);
    err = run_check(r, ctx->core.redis, pt->applied, LAST_UNKNOWN, &wm, &target);
    if (err == LST_OK && target == -2) {
        err = last_offset(ctx, t, p, last, sizeof(last));
        field_of(r, ctx, t, p);
        if (err == LST_OK)
            err = run_check(r, ctx->core.redis, pt->applied, last, &wm, &target);
    }
    if (err != LST_OK) {
        LST_WARN("ledger.refill_check_failed", "%s [%d]: %s", ledger_topic_base(t), (int)p,
                 lst_strerror(err));
        return err;
    }
    if (target >= 0 && target != pt->target)
        LST_WARN("ledger.refill",
                 "%s [%d]: watermark %lld behind %lld (%s): the view answers 503 until it is "
                 "refilled",
                 ledger_topic_base(t), (int)p, (long long)wm, (long long)target,
                 wm < 0 ? "no watermark in Redis" : "Redis lost progress");
    set_target(r, pt, target >= 0 ? target : -1);
    pt->pos = wm;
    return LST_OK;
}

bool ledger_refill_applied(struct ledger_refill *r, enum ledger_topic t, int32_t p, int64_t offset)
{
    struct refill_part *pt = part(r, t, p);
    bool ahead;

    if (pt == NULL)
        return true;
    ahead = offset > pt->applied;
    if (ahead)
        pt->applied = offset;
    if (offset > pt->pos)
        pt->pos = offset;
    return ahead;
}

/* Clears one partition's marker once its watermark reached it (or learns a higher one). */
static void try_clear(struct ledger *ctx, enum ledger_topic t, int32_t p, struct refill_part *pt)
{
    struct ledger_refill *r = ctx->refill;
    redisReply *reply = NULL;
    lst_err err;

    field_of(r, ctx, t, p);
    const char *argv[] = {LEDGER_PREFIX "wm", LEDGER_PREFIX "refill", r->tmp.data};
    err = lst_redis_script_call(ctx->core.redis, r->clear, &reply, 2, 3, argv, NULL);
    if (err == LST_OK && reply->type == REDIS_REPLY_INTEGER) {
        if (reply->integer < 0)
            LST_INFO("ledger.refill_done", "%s [%d]: refilled up to %lld", ledger_topic_base(t),
                     (int)p, (long long)pt->target);
        set_target(r, pt, reply->integer >= 0 ? reply->integer : -1);
    }
    if (reply != NULL)
        freeReplyObject(reply);
}

void ledger_refill_reached(struct ledger *ctx)
{
    struct ledger_refill *r = ctx->refill;

    for (int t = 0; r != NULL && r->tracked > 0 && t < LEDGER_T__COUNT; t++) {
        for (int32_t p = 0; p < r->nparts[t]; p++) {
            struct refill_part *pt = &r->parts[t][p];
            if (pt->target >= 0 && pt->pos >= pt->target)
                try_clear(ctx, (enum ledger_topic)t, p, pt);
        }
    }
}

/* "<full topic>:<partition>" of one of our topics. */
static bool parse_field(const struct ledger *ctx, const char *f, enum ledger_topic *t, int32_t *p)
{
    const char *colon = strrchr(f, ':');
    int64_t v = -1;

    if (colon == NULL || lst_parse_i64(colon + 1, 0, 100000, &v) != LST_OK)
        return false;
    for (int i = 0; i < LEDGER_T__COUNT; i++) {
        size_t len = strlen(ctx->core.topics[i]);
        if ((size_t)(colon - f) == len && strncmp(f, ctx->core.topics[i], len) == 0) {
            *t = (enum ledger_topic)i;
            *p = (int32_t)v;
            return true;
        }
    }
    return false;
}

static void adopt(struct ledger *ctx, const char *f, const char *v)
{
    enum ledger_topic t;
    int32_t p;
    int64_t target = -1;
    struct refill_part *pt;

    if (!parse_field(ctx, f, &t, &p) || lst_parse_i64(v, 0, INT64_MAX - 1, &target) != LST_OK)
        return;
    pt = part(ctx->refill, t, p);
    if (pt != NULL && target > pt->target)
        set_target(ctx->refill, pt, target);
}

void ledger_refill_sync(struct ledger *ctx)
{
    redisReply *reply = NULL;
    lst_err err = lst_redis_cmdf(ctx->core.redis, &reply, "HGETALL " LEDGER_PREFIX "refill");

    /* Markers written by another ledger (or left by one that crashed) are ours to clear as
     * soon as our own position is past them. */
    for (size_t i = 0; err == LST_OK && reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements;
         i += 2) {
        const redisReply *f = reply->element[i], *v = reply->element[i + 1];
        if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
            adopt(ctx, f->str, v->str);
    }
    if (reply != NULL)
        freeReplyObject(reply);
    ledger_refill_reached(ctx);
}
