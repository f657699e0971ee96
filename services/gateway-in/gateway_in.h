/* gateway-in: takes the Threema Gateway's callbacks (messages, delivery receipts) into lst.inbound */
#ifndef LST_SVC_GATEWAY_IN_H
#define LST_SVC_GATEWAY_IN_H

#include <stdint.h>

#include "lst/config.h"
#include "lst/service.h"

struct gateway_in_config {
    struct lst_common_config common;
    int64_t http_port; /* LST_HTTP_PORT */
};

/* The one context of the service: it owns every resource. */
struct gateway_in {
    struct gateway_in_config cfg;
    struct lst_service *svc;
};

extern const struct lst_config_program gateway_in_program;

/* The service's own configuration section (the common one comes from the library). */
struct lst_config_section gateway_in_config_section(struct gateway_in_config *cfg);

/* Runs the service with its loaded configuration until SIGTERM; returns the exit code. */
int gateway_in_run(struct gateway_in *ctx);

#endif
