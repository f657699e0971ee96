/* The gateway-out context: creates the parts in order, runs the poll loop as the service's
 * step, and shuts down so that nothing finished is lost and nothing unfinished is stored:
 * stop dispatching, close the consumer (its revoke hook lets sends in flight finish, bounded,
 * and stores the completion watermarks), stop the lanes, flush the producer. */
#include "gateway_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lst/log.h"
#include "lst/signals.h"

/* ---- metrics ---- */

#define SENDS_HELP    "Gateway send calls by outcome class and HTTP status (0: no answer)"
#define OUTCOMES_HELP "Final outcomes published to lst.sent"
#define LOOP_HELP                                                                                  \
    "Requests the event loop finished itself (path loop) or handed to a lane's thread (thread: "   \
    "lookups, key fetches, files, the 402 pause, dead letters)"
#define CACHE_HELP                                                                                 \
    "Cache lookups: hit_local (in-process), hit (Redis), miss (asked the Gateway or uploaded)"

static void metrics_init(struct gateway_out *ctx)
{
    struct lst_metrics *m = ctx->svc->metrics;
    struct go_metrics *g = &ctx->m;
    g->send_seconds = lst_metrics_histogram(
        m, "lst_gateway_out_send_seconds", "Duration of one Gateway send call", NULL,
        lst_metrics_latency_buckets, lst_metrics_latency_nbuckets);
    g->inflight = lst_metrics_gauge(m, "lst_gateway_out_inflight",
                                    "Records consumed and not yet finished", NULL);
    g->retries = lst_metrics_counter(m, "lst_gateway_out_retries_total",
                                     "Transient failures retried after a backoff", NULL);
    g->retry_after =
        lst_metrics_counter(m, "lst_gateway_out_retry_after_total",
                            "Retries that waited at least the Gateway's Retry-After", NULL);
    g->republished = lst_metrics_counter(m, "lst_gateway_out_republished_total",
                                         "Redelivered requests whose known outcome was "
                                         "published again without sending",
                                         NULL);
    g->possible_dup = lst_metrics_counter(m, "lst_gateway_out_possible_duplicates_total",
                                          "Outcomes flagged possible_duplicate", NULL);
    g->dlq = lst_metrics_counter(m, "lst_gateway_out_dlq_total",
                                 "Undecodable records sent to the DLQ", NULL);
    g->key_changed = lst_metrics_counter(m, "lst_gateway_out_public_key_changed_total",
                                         "ALERT: a known Threema ID presented another public "
                                         "key; its sends fail",
                                         NULL);
    g->paused =
        lst_metrics_gauge(m, "lst_gateway_out_paused",
                          "ALERT: 1 while sending is paused for lack of credits (402)", NULL);
    g->credits = lst_metrics_gauge(m, "lst_gateway_out_credits",
                                   "Remaining Gateway credits (last /credits answer)", NULL);
    g->credits_low =
        lst_metrics_gauge(m, "lst_gateway_out_credits_low",
                          "1 while credits are below LST_GATEWAY_OUT_CREDITS_WARN", NULL);
    g->rate_limit = lst_metrics_gauge(m, "lst_gateway_out_rate_limit",
                                      "Effective shared Gateway requests per second", NULL);
    g->rate_waits = lst_metrics_counter(m, "lst_gateway_out_rate_limit_waits_total",
                                        "Times a lane waited for the shared rate limit", NULL);
    g->abandoned =
        lst_metrics_counter(m, "lst_gateway_out_abandoned_total",
                            "Records given up on revoke or shutdown (redelivered)", NULL);
    lst_gauge_set(g->rate_limit, ctx->cfg.rate_limit);
    g->send_ok = lst_metrics_counter(m, "lst_gateway_out_sends_total", SENDS_HELP,
                                     "outcome=\"ok\",code=\"200\"");
    g->outcome_ok = lst_metrics_counter(m, "lst_gateway_out_outcomes_total", OUTCOMES_HELP,
                                        "outcome=\"accepted\",code=\"ok\"");
    g->pubkey_local = lst_metrics_counter(m, "lst_gateway_out_cache_total", CACHE_HELP,
                                          "cache=\"pubkey\",result=\"hit_local\"");
    g->lookup_local = lst_metrics_counter(m, "lst_gateway_out_cache_total", CACHE_HELP,
                                          "cache=\"lookup\",result=\"hit_local\"");
    g->loop_jobs =
        lst_metrics_counter(m, "lst_gateway_out_loop_jobs_total", LOOP_HELP, "path=\"loop\"");
    g->loop_handed =
        lst_metrics_counter(m, "lst_gateway_out_loop_jobs_total", LOOP_HELP, "path=\"thread\"");
}

void go_metrics_send(struct lst_metrics *m, enum lst_gateway_outcome oc, long status)
{
    char labels[80];
    snprintf(labels, sizeof(labels), "outcome=\"%s\",code=\"%ld\"", lst_gateway_outcome_name(oc),
             status);
    lst_counter_inc(lst_metrics_counter(m, "lst_gateway_out_sends_total", SENDS_HELP, labels));
}

void go_metrics_outcome(struct lst_metrics *m, bool accepted, const char *code)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "outcome=\"%s\",code=\"%s\"", accepted ? "accepted" : "failed",
             code);
    lst_counter_inc(
        lst_metrics_counter(m, "lst_gateway_out_outcomes_total", OUTCOMES_HELP, labels));
}

void go_metrics_cache(struct lst_metrics *m, const char *cache, const char *result)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "cache=\"%s\",result=\"%s\"", cache, result);
    lst_counter_inc(lst_metrics_counter(m, "lst_gateway_out_cache_total", CACHE_HELP, labels));
}

/* ---- jobs ---- */

void go_job_free(struct go_job *j)
{
    if (j == NULL)
        return;
    free(j->key);
    free(j->value);
    lst_buf_cleanup(&j->out);
    free(j);
}

void go_complete(struct gateway_out *ctx, struct go_job *j, enum go_job_state state)
{
    j->state = state;
    j->next = NULL;
    pthread_mutex_lock(&ctx->done_lock);
    if (ctx->done_tail != NULL)
        ctx->done_tail->next = j;
    else
        ctx->done_head = j;
    ctx->done_tail = j;
    pthread_cond_signal(&ctx->done_cond);
    pthread_mutex_unlock(&ctx->done_lock);
}

void go_fatal(struct gateway_out *ctx, const char *why)
{
    if (atomic_exchange(&ctx->fatal, true))
        return;
    LST_ERROR("gateway_out.fatal", "stopping: %s", why);
}

/* ---- lifecycle ---- */

static lst_err load_key(struct gateway_out *ctx)
{
    struct lst_buf why;
    lst_buf_init(&why);
    lst_err err = lst_gateway_settings_private_key(&ctx->cfg.gw, ctx->sk, &why);
    if (err != LST_OK)
        LST_ERROR("gateway_out.private_key", "LST_PRIVATE_KEY: %s",
                  why.len ? why.data : lst_strerror(err));
    lst_buf_cleanup(&why);
    if (err == LST_OK)
        err = lst_threema_keycache_create(ctx->sk, 4096, &ctx->keys);
    return err;
}

static lst_err topics(struct gateway_out *ctx)
{
    lst_err err = lst_service_topic(ctx->svc, "lst.outbound", ctx->topic_in, sizeof(ctx->topic_in));
    if (err == LST_OK)
        err = lst_service_topic(ctx->svc, "lst.sent", ctx->topic_sent, sizeof(ctx->topic_sent));
    if (err == LST_OK)
        err =
            lst_service_topic(ctx->svc, "lst.outbound.dlq", ctx->topic_dlq, sizeof(ctx->topic_dlq));
    if (err == LST_OK) /* so the first outcomes do not wait for librdkafka to learn lst.sent */
        err = lst_kafka_producer_prepare(
            ctx->svc->producer, (const char *const[]){ctx->topic_sent, ctx->topic_dlq, NULL});
    return err;
}

/* The Gateway rate shared by every worker and gateway-in (lst/gateway_rate.h), under
 * <LST_GATEWAY_OUT_KEY_PREFIX>rl: with its own Redis connection; a limit of 0 disables it. */
static lst_err ratelimit_create(struct gateway_out *ctx)
{
    char prefix[160];
    struct lst_redis *redis = NULL;
    snprintf(prefix, sizeof(prefix), "%srl:", ctx->cfg.key_prefix);
    const struct lst_gateway_rate_config rc = {.limit = ctx->cfg.rate_limit,
                                               .floor = ctx->cfg.rate_min,
                                               .key_prefix = prefix,
                                               .service = "gateway_out"};
    lst_err err = lst_service_redis_new(&ctx->cfg.common, &redis);
    if (err == LST_OK)
        err = lst_gateway_rate_create(&rc, redis, &ctx->rl);
    if (err == LST_OK)
        lst_gateway_rate_set_metrics(ctx->rl, ctx->m.rate_limit, ctx->m.rate_waits);
    return err;
}

static lst_err setup(struct gateway_out *ctx)
{
    lst_err err = lst_threema_init();
    if (err == LST_OK)
        err = lst_gateway_global_init();
    if (err == LST_OK)
        err = topics(ctx);
    if (err == LST_OK)
        err = load_key(ctx);
    if (err == LST_OK)
        err = go_local_cache_create(100000, &ctx->pk_cache);
    if (err == LST_OK)
        err = go_local_cache_create(100000, &ctx->cap_cache);
    if (err == LST_OK)
        err = go_local_cache_create(100000, &ctx->lk_cache);
    if (err == LST_OK)
        err = lst_blobstore_create(ctx->cfg.blob_dir, &ctx->blobs);
    if (err == LST_OK)
        err = go_outcome_scripts_create(ctx);
    if (err == LST_OK)
        err = ratelimit_create(ctx);
    if (err == LST_OK && ctx->cfg.bulk)
        err = go_bulk_create(ctx);
    if (err == LST_OK)
        err = go_lanes_start(ctx);
    if (err == LST_OK)
        err = go_credits_start(ctx);
    if (err == LST_OK)
        err = go_consumer_create(ctx);
    return err;
}

static lst_err step(void *ud)
{
    return go_consumer_step(ud);
}

static void free_done_queue(struct gateway_out *ctx)
{
    struct go_job *j = ctx->done_head;
    while (j != NULL) {
        struct go_job *next = j->next;
        go_job_free(j);
        j = next;
    }
    ctx->done_head = ctx->done_tail = NULL;
}

static void teardown(struct gateway_out *ctx)
{
    atomic_store(&ctx->stopping, true);
    go_consumer_close(ctx);
    go_lanes_stop(ctx);
    go_bulk_destroy(ctx);
    go_credits_stop(ctx);
    lst_service_destroy(ctx->svc); /* flushes the producer: the last delivery reports */
    ctx->svc = NULL;
    free_done_queue(ctx);
    lst_gateway_rate_destroy(ctx->rl);
    ctx->rl = NULL;
    go_outcome_scripts_destroy(ctx);
    lst_blobstore_destroy(ctx->blobs);
    go_local_cache_destroy(ctx->pk_cache);
    go_local_cache_destroy(ctx->cap_cache);
    go_local_cache_destroy(ctx->lk_cache);
    lst_threema_keycache_destroy(ctx->keys);
    lst_threema_wipe(ctx->sk, sizeof(ctx->sk));
    pthread_cond_destroy(&ctx->done_cond);
    pthread_mutex_destroy(&ctx->done_lock);
    pthread_cond_destroy(&ctx->pause_cond);
    pthread_mutex_destroy(&ctx->pause_lock);
}

int gateway_out_run(struct gateway_out *ctx)
{
    /* librdkafka 2.0.2's broker thread spins (poll with a zero timeout) through the last
     * millisecond before every partition's linger deadline; at 5 ms with 12 partitions of
     * lst.sent it was busy most of the time (41 % of the service's CPU in the benchmark). A
     * longer linger makes those windows rare and the batches larger. */
    char linger[48];
    snprintf(linger, sizeof(linger), "linger.ms=%lld", (long long)ctx->cfg.linger_ms);
    const char *const kafka_extra[] = {linger, NULL};
    struct lst_service_opts opts = {
        .name = gateway_out_program.name,
        .common = &ctx->cfg.common,
        .http_port = (uint16_t)ctx->cfg.http_port,
        .kafka_extra = kafka_extra,
        .ud = ctx,
    };
    int code = 1;
    pthread_mutex_init(&ctx->done_lock, NULL);
    pthread_cond_init(&ctx->done_cond, NULL);
    pthread_mutex_init(&ctx->pause_lock, NULL);
    pthread_cond_init(&ctx->pause_cond, NULL);
    atomic_init(&ctx->fatal, false);
    atomic_init(&ctx->stopping, false);
    atomic_init(&ctx->lanes_stop, false);
    if (lst_service_start(&opts, &ctx->svc) != LST_OK)
        goto out;
    metrics_init(ctx);
    lst_err err = setup(ctx);
    if (err != LST_OK) {
        LST_ERROR("gateway_out.start_failed", "%s", lst_strerror(err));
        goto out;
    }
    LST_INFO("gateway_out.running", "consuming %s as group %s with %u lanes%s", ctx->topic_in,
             ctx->cfg.group_id, ctx->nlanes,
             ctx->cfg.event_loop ? " driven by the event loop" : ", one thread each");
    code = lst_service_run(ctx->svc, step, ctx, 50);
    if (atomic_load(&ctx->fatal))
        code = 1;
out:
    teardown(ctx);
    return code;
}
