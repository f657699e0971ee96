/* ledger: records every send, delivery and read and builds the projections in Redis */
#ifndef LST_SVC_LEDGER_H
#define LST_SVC_LEDGER_H

#include <stdint.h>

#include "lst/config.h"
#include "lst/service.h"

struct ledger_config {
    struct lst_common_config common;
    int64_t http_port; /* LST_HTTP_PORT */
};

/* The one context of the service: it owns every resource. */
struct ledger {
    struct ledger_config cfg;
    struct lst_service *svc;
};

extern const struct lst_config_program ledger_program;

/* The service's own configuration section (the common one comes from the library). */
struct lst_config_section ledger_config_section(struct ledger_config *cfg);

/* Runs the service with its loaded configuration until SIGTERM; returns the exit code. */
int ledger_run(struct ledger *ctx);

#endif
