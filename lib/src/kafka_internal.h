/* Shared between the kafka_*.c files of the library; not installed. */
#ifndef LST_KAFKA_INTERNAL_H
#define LST_KAFKA_INTERNAL_H

#include <librdkafka/rdkafka.h>

#include "lst/kafka.h"

/* The one place where librdkafka codes become lst_err. */
lst_err lst_kafka_err_map(rd_kafka_resp_err_t err);

/* A new conf with the settings every handle shares (brokers, client id, logging through
 * lst_log). On success *out is owned by the caller until rd_kafka_new takes it. */
lst_err lst_kafka_conf_new(const struct lst_kafka_config *cfg, rd_kafka_conf_t **out);

/* Sets one property; logs and returns LST_ERR_CONFIG when librdkafka refuses it. */
lst_err lst_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value);

/* The at-least-once settings of every group member (the group consumer and the assigned
 * reader): only offsets the application marks done are stored, stored ones are committed
 * every second, a new group starts at the beginning, no EOF events. LST_ERR_CONFIG when
 * librdkafka refuses one. */
lst_err lst_kafka_conf_at_least_once(rd_kafka_conf_t *conf, const char *group_id);

/* Applies cfg->extra ("key=value" strings) last, so tests can override anything. */
lst_err lst_kafka_conf_extras(rd_kafka_conf_t *conf, const struct lst_kafka_config *cfg);

/* Metadata request for the brokers only: the readiness probe of both handle kinds. */
lst_err lst_kafka_probe(rd_kafka_t *rk, int timeout_ms);

#endif
