#include "gateway_in.h"

int gateway_in_run(struct gateway_in *ctx)
{
    struct lst_service_opts opts = {
        .name = gateway_in_program.name,
        .common = &ctx->cfg.common,
        .http_port = (uint16_t)ctx->cfg.http_port,
        .ud = ctx,
    };
    if (lst_service_start(&opts, &ctx->svc) != LST_OK)
        return 1;
    int code = lst_service_run(ctx->svc, NULL, ctx, 500);
    lst_service_destroy(ctx->svc);
    ctx->svc = NULL;
    return code;
}
