/* The ledger's context and lifecycle: the service frame (metrics, Redis,
 * producer, HTTP), the core (scripts, rules, batches) and the Kafka reader. */
#include "ledger.h"
#include "lst/log.h"

static void cleanup(struct ledger *ctx)
{
    lst_kafka_reader_destroy(ctx->reader);
    ctx->reader = NULL;
    ledger_retention_destroy(ctx->retention);
    ctx->retention = NULL;
    ledger_refill_destroy(ctx->refill);
    ctx->refill = NULL;
    if (ctx->core_ready)
        ledger_core_cleanup(&ctx->core);
    ctx->core_ready = false;
    lst_service_destroy(ctx->svc);
    ctx->svc = NULL;
}

int ledger_run(struct ledger *ctx, bool rebuild)
{
    struct lst_service_opts opts = {
        .name = ledger_program.name,
        .common = &ctx->cfg.common,
        .http_port = (uint16_t)ctx->cfg.http_port,
        .ud = ctx,
    };
    int code = 1;
    int64_t dropped = 0;

    if (lst_service_start(&opts, &ctx->svc) != LST_OK)
        return 1;
    lst_err err = ledger_core_init(&ctx->core, &ctx->cfg, ctx->svc->redis, ctx->svc->producer,
                                   ctx->svc->metrics);
    ctx->core_ready = true;
    if (err == LST_OK && rebuild) {
        err = ledger_drop_projections(ctx->svc->redis, &dropped);
        if (err == LST_OK)
            LST_INFO("ledger.rebuild", "projections dropped (%lld keys); replaying Kafka",
                     (long long)dropped);
    }
    if (err == LST_OK && ctx->cfg.retention_ms > 0)
        err = ledger_retention_create(ctx->svc->metrics, &ctx->retention);
    if (err == LST_OK)
        err = ledger_refill_create(ctx->svc->metrics, &ctx->refill);
    if (err == LST_OK)
        err = ledger_consume_init(ctx);
    if (err == LST_OK)
        code = lst_service_run(ctx->svc, ledger_consume_step, ctx, ctx->cfg.poll_ms);
    else
        LST_ERROR("ledger.start_failed", "%s", lst_strerror(err));
    cleanup(ctx);
    return code;
}
