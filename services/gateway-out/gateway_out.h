/* gateway-out: sends requests from lst.outbound to the Threema Gateway, end-to-end encrypted */
#ifndef LST_SVC_GATEWAY_OUT_H
#define LST_SVC_GATEWAY_OUT_H

#include <stdint.h>

#include "lst/config.h"
#include "lst/service.h"

struct gateway_out_config {
    struct lst_common_config common;
    int64_t http_port; /* LST_HTTP_PORT */
};

/* The one context of the service: it owns every resource. */
struct gateway_out {
    struct gateway_out_config cfg;
    struct lst_service *svc;
};

extern const struct lst_config_program gateway_out_program;

/* The service's own configuration section (the common one comes from the library). */
struct lst_config_section gateway_out_config_section(struct gateway_out_config *cfg);

/* Runs the service with its loaded configuration until SIGTERM; returns the exit code. */
int gateway_out_run(struct gateway_out *ctx);

#endif
