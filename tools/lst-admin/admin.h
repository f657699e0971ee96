/* lst-admin: the small operator tool behind scripts/stack.sh. It waits for a Kafka broker to
 * answer metadata requests, creates the topics of proto/topics.tsv (and deletes a prefixed
 * set of them again) and lists topics. Internal
 * to the tool: nothing here is part of liblst. */
#ifndef LST_ADMIN_H
#define LST_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "lst/error.h"

/* Kafka's own limits: a topic name is at most 249 characters of [a-zA-Z0-9._-]. */
#define LST_ADMIN_TOPIC_NAME_MAX 249
#define LST_ADMIN_PARTITIONS_MAX 10000

/* One row of proto/topics.tsv; the table owns name and cleanup. */
struct lst_admin_topic {
    char *name; /* prefix already applied */
    int32_t partitions;
    char *cleanup; /* "delete", "compact" or "compact,delete" */
};

/* The parsed topic table. Embed it; lst_admin_topics_cleanup frees everything (also after a
 * failed load, and on a zeroed table). */
struct lst_admin_topics {
    struct lst_admin_topic *v;
    size_t n;
};

/* Parses a topics table: '#' starts a comment line, blank lines are skipped, columns are
 * tab-separated, the first three are name, partitions, cleanup (more columns are ignored).
 * Every name gets prefix (may be NULL or "") in front. On error writes "line N: reason" into
 * err (err_len bytes) and returns LST_ERR_INVALID / LST_ERR_RANGE; *out is then empty. */
lst_err lst_admin_topics_parse(const char *text, const char *prefix, struct lst_admin_topics *out,
                               char *err, size_t err_len);
/* Reads path and parses it as above; LST_ERR_IO when the file cannot be read. */
lst_err lst_admin_topics_load(const char *path, const char *prefix, struct lst_admin_topics *out,
                              char *err, size_t err_len);
void lst_admin_topics_cleanup(struct lst_admin_topics *t);
/* true when name is a legal Kafka topic name. */
bool lst_admin_topic_name_valid(const char *name);

/* A producer handle used only for admin and metadata requests, with librdkafka's own logging
 * routed to lst logging at debug level (connection-refused noise while a broker starts is
 * expected). Returns NULL and logs why on failure; free with rd_kafka_destroy. */
rd_kafka_t *lst_admin_client_create(const char *brokers);

/* Metadata of all topics, waiting at most timeout_ms; free *out with rd_kafka_metadata_destroy.
 * LST_ERR_TIMEOUT when the broker did not answer in time, LST_ERR_KAFKA otherwise; then *why
 * (when why is not NULL) is librdkafka's description (static storage). */
lst_err lst_admin_metadata(rd_kafka_t *rk, int64_t timeout_ms, const struct rd_kafka_metadata **out,
                           const char **why);

/* Polls metadata on brokers until a broker is listed and the controller is known, or until
 * timeout_ms passes (LST_ERR_TIMEOUT). When watch_pid > 0 and that process disappears the
 * wait ends early with LST_ERR_STATE (the broker died: waiting longer is pointless). */
lst_err lst_admin_wait_ready(const char *brokers, int64_t timeout_ms, long watch_pid);

/* Creates the topics (replication factor 1, cleanup.policy from the table). Existing topics
 * are fine; one with fewer partitions than the table gets more, one with more is reported.
 * Returns when every topic is visible in metadata with a leader for each partition. */
lst_err lst_admin_create_topics(const char *brokers, const struct lst_admin_topics *topics,
                                int64_t timeout_ms);

/* Deletes the topics; one that is not there counts as deleted. Prints "deleted" or "absent"
 * per topic. */
lst_err lst_admin_delete_topics(const char *brokers, const struct lst_admin_topics *topics,
                                int64_t timeout_ms);

/* Writes "name<TAB>partitions" per topic, sorted by name, to out. Internal topics (names
 * starting with "__") only when all is non-zero. */
lst_err lst_admin_list_topics(const char *brokers, int64_t timeout_ms, int all, FILE *out);

#endif
