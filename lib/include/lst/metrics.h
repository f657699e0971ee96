/* Metrics: counters, gauges and histograms in a registry owned by the service context,
 * rendered in the Prometheus text exposition format (version 0.0.4) for /metrics.
 *
 * A series is a metric name plus a fixed label set, written as Prometheus label text
 * (e.g. `code="429",outcome="retry"`, or NULL for none). Getting a series is get-or-create:
 * asking twice for the same name and labels returns the same pointer, so callers may look a
 * series up on each event or keep the pointer. Series live as long as the registry; the
 * registry owns them. Updates are lock-free atomics and safe from any thread. */
#ifndef LST_METRICS_H
#define LST_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lst/error.h"
#include "lst/util.h"

struct lst_metrics;
struct lst_counter;
struct lst_gauge;
struct lst_histogram;

struct lst_metrics *lst_metrics_create(void);
void lst_metrics_destroy(struct lst_metrics *m);

/* Return NULL only on allocation failure, for an invalid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)
 * or label text (name="value" pairs separated by commas, values escaped as by
 * lst_metrics_label_escape), or when the name is already registered with another type (or, for
 * a histogram, other bounds); updating a NULL series is a no-op, so a metric can never take a
 * service down. Label text is compared as a string: keep the label order fixed per metric.
 * The HELP text of the first registration of a name is kept. */
struct lst_counter *lst_metrics_counter(struct lst_metrics *m, const char *name, const char *help,
                                        const char *labels);
struct lst_gauge *lst_metrics_gauge(struct lst_metrics *m, const char *name, const char *help,
                                    const char *labels);
/* bounds: strictly ascending finite upper bounds (without +Inf), copied; at most 32.
 * Observations of NaN are ignored. */
struct lst_histogram *lst_metrics_histogram(struct lst_metrics *m, const char *name,
                                            const char *help, const char *labels,
                                            const double *bounds, size_t nbounds);

void lst_counter_add(struct lst_counter *c, uint64_t n);
static inline void lst_counter_inc(struct lst_counter *c)
{
    lst_counter_add(c, 1);
}
uint64_t lst_counter_value(const struct lst_counter *c);

void lst_gauge_set(struct lst_gauge *g, double v);
void lst_gauge_add(struct lst_gauge *g, double delta);
double lst_gauge_value(const struct lst_gauge *g);

void lst_histogram_observe(struct lst_histogram *h, double v);
uint64_t lst_histogram_count(const struct lst_histogram *h);

/* Default latency buckets in seconds (1 ms .. 30 s). */
extern const double lst_metrics_latency_buckets[];
extern const size_t lst_metrics_latency_nbuckets;

/* Appends every metric, grouped by name with one HELP and TYPE line each. */
lst_err lst_metrics_render(struct lst_metrics *m, struct lst_buf *out);

/* Appends value escaped for use between the quotes of a label value (\\, \" and \n), for
 * callers building label text from data. Bytes of invalid UTF-8 become '?'. */
lst_err lst_metrics_label_escape(struct lst_buf *out, const char *value);

#endif
