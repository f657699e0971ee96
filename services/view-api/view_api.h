/* view-api: serves the dispatchers' views and takes send requests for the single-page apps */
#ifndef LST_SVC_VIEW_API_H
#define LST_SVC_VIEW_API_H

#include <stdint.h>

#include "lst/config.h"
#include "lst/service.h"

struct view_api_config {
    struct lst_common_config common;
    int64_t http_port; /* LST_HTTP_PORT */
};

/* The one context of the service: it owns every resource. */
struct view_api {
    struct view_api_config cfg;
    struct lst_service *svc;
};

extern const struct lst_config_program view_api_program;

/* The service's own configuration section (the common one comes from the library). */
struct lst_config_section view_api_config_section(struct view_api_config *cfg);

/* Runs the service with its loaded configuration until SIGTERM; returns the exit code. */
int view_api_run(struct view_api *ctx);

#endif
