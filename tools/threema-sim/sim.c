/* The simulator's context: builds every part from the loaded configuration, serves the
 * Gateway and /_sim/ routes on one HTTP server, and tears down in order (stop accepting,
 * let hanging handlers return, stop the callback workers, free). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "lst/log.h"
#include "lst/threema.h"
#include "sim.h"

/* Room for the multipart framing around the largest blob. */
#define MULTIPART_SLACK (64 * 1024)

double sim_random_unit(void)
{
    return (double)randombytes_random() / 4294967296.0;
}

void sim_count_request(struct sim *sim, const char *endpoint, int status)
{
    struct lst_buf labels;
    lst_buf_init(&labels);
    lst_buf_puts(&labels, "endpoint=\"");
    lst_metrics_label_escape(&labels, endpoint);
    lst_buf_printf(&labels, "\",code=\"%d\"", status);
    if (!lst_buf_failed(&labels))
        lst_counter_inc(lst_metrics_counter(sim->metrics, "lst_sim_gateway_requests_total",
                                            "Gateway API requests answered, by endpoint and code.",
                                            labels.data));
    lst_buf_cleanup(&labels);
    lst_gauge_set(sim->m.credits, (double)sim_faults_credits(&sim->faults));
}

static lst_err make_metrics(struct sim *sim)
{
    struct lst_metrics *m = lst_metrics_create();
    sim->metrics = m;
    if (m == NULL)
        return LST_ERR_NOMEM;
    sim->m.callbacks_sent = lst_metrics_counter(m, "lst_sim_callbacks_total",
                                                "Callback attempts by result.", "result=\"sent\"");
    sim->m.callbacks_failed = lst_metrics_counter(
        m, "lst_sim_callbacks_total", "Callback attempts by result.", "result=\"failed\"");
    sim->m.callbacks_dropped = lst_metrics_counter(
        m, "lst_sim_callbacks_dropped_total",
        "Callbacks given up after the last retry or refused by a full queue.", NULL);
    sim->m.phone_messages = lst_metrics_counter(m, "lst_sim_phone_messages_total",
                                                "Messages delivered to simulated phones.", NULL);
    sim->m.phone_invalid = lst_metrics_counter(
        m, "lst_sim_phone_invalid_total",
        "Messages a phone could not read (box, padding or container invalid).", NULL);
    sim->m.credits = lst_metrics_gauge(m, "lst_sim_credits", "Credits left.", NULL);
    lst_gauge_set(sim->m.credits, (double)sim->cfg.credits);
    return LST_OK;
}

static lst_err load_keys(struct sim *sim)
{
    if (sim->cfg.gateway_public_key == NULL) {
        LST_WARN("sim.config.no_gateway_key",
                 "LST_SIM_GATEWAY_PUBLIC_KEY is not set: phones cannot decrypt and send no "
                 "callbacks");
        return LST_OK;
    }
    struct lst_buf why;
    lst_buf_init(&why);
    lst_err err = lst_threema_key_parse(sim->cfg.gateway_public_key, LST_THREEMA_KEY_PUBLIC,
                                        sim->gateway_pk, &why);
    if (err != LST_OK)
        LST_ERROR("sim.config.gateway_key", "LST_SIM_GATEWAY_PUBLIC_KEY: %s",
                  why.data ? why.data : lst_strerror(err));
    sim->have_gateway_pk = err == LST_OK;
    lst_buf_cleanup(&why);
    return err;
}

static lst_err start_http(struct sim *sim)
{
    size_t n = sim_api_nroutes + sim_control_nroutes;
    struct lst_http_route *routes = calloc(n, sizeof(*routes));
    if (routes == NULL)
        return LST_ERR_NOMEM;
    memcpy(routes, sim_api_routes, sim_api_nroutes * sizeof(*routes));
    memcpy(routes + sim_api_nroutes, sim_control_routes, sim_control_nroutes * sizeof(*routes));
    struct lst_http_config hc = {
        .bind_addr = sim->cfg.http_addr,
        .port = (uint16_t)sim->cfg.port,
        .max_connections = (unsigned)sim->cfg.max_connections,
        .event_threads = (unsigned)sim->cfg.event_threads,
        .max_body = (size_t)sim->cfg.blob_max_bytes + MULTIPART_SLACK,
        .conn_timeout_s = 60,
        .drain_ms = 2000,
        .routes = routes,
        .nroutes = n,
        .ud = sim,
        .metrics = sim->metrics,
    };
    lst_err err = lst_http_server_create(&hc, &sim->http);
    free(routes); /* the server copied them */
    return err;
}

bool sim_may_hang(const struct sim_config *cfg)
{
    return cfg->event_threads == 0;
}

/* The start-up faults must fit the HTTP mode (POST /_sim/faults checks its updates alike). */
static lst_err check_hang_faults(const struct sim *sim)
{
    if (sim_may_hang(&sim->cfg) ||
        (sim->cfg.fault_timeout_rate <= 0 && sim->cfg.fault_timeout_after_rate <= 0))
        return LST_OK;
    LST_ERROR("sim.config.hang_faults",
              "LST_SIM_FAULT_TIMEOUT_RATE and LST_SIM_FAULT_TIMEOUT_AFTER_RATE need "
              "LST_SIM_EVENT_THREADS=0: a hanging request would stall every connection of its "
              "event thread");
    return LST_ERR_CONFIG;
}

lst_err sim_create(struct sim *sim)
{
    lst_err err = check_hang_faults(sim);
    if (err == LST_OK)
        err = lst_threema_init();
    if (err == LST_OK)
        err = load_keys(sim);
    if (err == LST_OK)
        err = make_metrics(sim);
    if (err == LST_OK)
        err = sim_directory_load(&sim->dir, sim->cfg.directory_csv, sim->cfg.key_seed,
                                 sim->cfg.no_read_receipts_share, sim->cfg.text_only_share);
    if (err == LST_OK)
        err = sim_faults_init(&sim->faults, &sim->cfg);
    if (err == LST_OK)
        err = sim_journal_init(&sim->journal, (size_t)sim->cfg.journal_capacity);
    if (err == LST_OK)
        err = sim_blobs_init(&sim->blobs, (size_t)sim->cfg.blob_store_max_bytes);
    if (err == LST_OK)
        err = sim_phones_create(sim, &sim->phones);
    if (err == LST_OK)
        err = sim_callbacks_create(sim, &sim->callbacks);
    if (err == LST_OK)
        err = start_http(sim);
    if (err == LST_OK)
        LST_INFO("sim.started", "Threema Gateway simulator for %s on %s port %u, %zu users",
                 sim->cfg.gateway_id, sim->cfg.http_addr, (unsigned)lst_http_server_port(sim->http),
                 sim->dir.n);
    return err;
}

void sim_destroy(struct sim *sim)
{
    sim->stopping = 1; /* injected timeouts return now, so the server drains quickly */
    lst_http_server_destroy(sim->http);
    sim->http = NULL;
    sim_callbacks_destroy(sim->callbacks);
    sim->callbacks = NULL;
    sim_phones_destroy(sim->phones);
    sim->phones = NULL;
    if (sim->blobs.head != NULL || sim->blobs.max_bytes != 0)
        sim_blobs_cleanup(&sim->blobs);
    sim_journal_cleanup(&sim->journal);
    if (sim->faults.rate_burst != 0)
        sim_faults_cleanup(&sim->faults);
    sim_directory_cleanup(&sim->dir);
    lst_metrics_destroy(sim->metrics);
    sim->metrics = NULL;
    lst_threema_wipe(sim->gateway_pk, sizeof(sim->gateway_pk));
}
