/* Metrics registry and Prometheus text rendering. See lst/metrics.h.
 *
 * Registration and rendering take the registry mutex; updates never do. Counters and histogram
 * buckets are atomic uint64 counters; gauges and histogram sums are doubles kept as their bit
 * pattern in an atomic uint64, updated by compare-and-swap, because C11 has no atomic double
 * arithmetic. Series are never freed before the registry, so pointers handed out stay valid
 * and updates need no lock. */
#include "lst/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BOUNDS 32

const double lst_metrics_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                              0.25,  0.5,    1.0,   2.5,  5.0,   10.0, 30.0};
const size_t lst_metrics_latency_nbuckets = LST_ARRAY_LEN(lst_metrics_latency_buckets);

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

struct lst_counter {
    _Atomic uint64_t value;
};

struct lst_gauge {
    _Atomic uint64_t bits; /* a double's bit pattern */
};

struct lst_histogram {
    const double *bounds; /* the family's, which outlives the series */
    size_t nbounds;
    _Atomic uint64_t buckets[MAX_BOUNDS + 1]; /* per bucket, not cumulative; last is +Inf */
    _Atomic uint64_t sum_bits;
};

struct series {
    struct series *next;
    char *labels; /* "" for none */
    union {
        struct lst_counter counter;
        struct lst_gauge gauge;
        struct lst_histogram histogram;
    } u;
};

/* All series of one metric name: rendered together under one HELP and TYPE line. */
struct family {
    struct family *next;
    char *name;
    char *help;
    enum kind kind;
    double bounds[MAX_BOUNDS];
    size_t nbounds;
    struct series *head, *tail;
};

struct lst_metrics {
    pthread_mutex_t lock;
    struct family *head, *tail;
};

/* ---- doubles in atomics ---- */

static uint64_t dbl_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static double bits_dbl(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

static void atomic_dbl_add(_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    uint64_t want;
    do {
        want = dbl_bits(bits_dbl(old) + delta);
    } while (!atomic_compare_exchange_weak_explicit(bits, &old, want, memory_order_relaxed,
                                                    memory_order_relaxed));
}

/* ---- validation ---- */

static bool valid_name(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (size_t i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && i > 0))
            return false;
    }
    return true;
}

/* Skips one label name at *p ([a-zA-Z_][a-zA-Z0-9_]*); false when there is none. Sets *is_le
 * when the name is "le", which histograms reserve for the bucket bound. */
static bool skip_label_name(const char **p, bool *is_le)
{
    const char *s = *p;
    size_t n = 0;
    for (;;) {
        char c = s[n];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && n > 0))
            break;
        n++;
    }
    *is_le = n == 2 && s[0] == 'l' && s[1] == 'e';
    *p = s + n;
    return n > 0;
}

/* Skips one quoted label value at *p; only the escapes \\, \" and \n are allowed. */
static bool skip_label_value(const char **p)
{
    const char *s = *p;
    if (*s++ != '"')
        return false;
    while (*s != '"') {
        if (*s == '\0' || *s == '\n')
            return false;
        if (*s == '\\') {
            s++;
            if (*s != '\\' && *s != '"' && *s != 'n')
                return false;
        }
        s++;
    }
    *p = s + 1;
    return true;
}

/* name="value"(,name="value")* or empty. */
static bool valid_labels(const char *s, bool histogram)
{
    if (*s == '\0')
        return true;
    for (;;) {
        bool is_le = false;
        if (!skip_label_name(&s, &is_le) || (histogram && is_le))
            return false;
        if (*s++ != '=')
            return false;
        if (!skip_label_value(&s))
            return false;
        if (*s == '\0')
            return true;
        if (*s++ != ',')
            return false;
    }
}

static bool valid_bounds(const double *bounds, size_t n)
{
    if (n > MAX_BOUNDS || (n > 0 && bounds == NULL))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return false;
    }
    return true;
}

/* ---- registry ---- */

struct lst_metrics *lst_metrics_create(void)
{
    struct lst_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void family_free(struct family *f)
{
    struct series *s = f->head;
    while (s != NULL) {
        struct series *next = s->next;
        free(s->labels);
        free(s);
        s = next;
    }
    free(f->name);
    free(f->help);
    free(f);
}

void lst_metrics_destroy(struct lst_metrics *m)
{
    if (m == NULL)
        return;
    struct family *f = m->head;
    while (f != NULL) {
        struct family *next = f->next;
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Caller holds the lock. */
static struct family *family_find(struct lst_metrics *m, const char *name)
{
    for (struct family *f = m->head; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

/* Caller holds the lock. A new family, appended to the registry; NULL on allocation failure. */
static struct family *family_add(struct lst_metrics *m, const char *name, const char *help,
                                 enum kind kind, const double *bounds, size_t nbounds)
{
    struct family *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->name = lst_strdup(name);
    f->help = lst_strdup(help != NULL ? help : "");
    if (f->name == NULL || f->help == NULL) {
        family_free(f);
        return NULL;
    }
    f->kind = kind;
    f->nbounds = nbounds;
    if (nbounds > 0)
        memcpy(f->bounds, bounds, nbounds * sizeof(double));
    if (m->tail != NULL)
        m->tail->next = f;
    else
        m->head = f;
    m->tail = f;
    return f;
}

static bool same_bounds(const struct family *f, const double *bounds, size_t nbounds)
{
    if (f->nbounds != nbounds)
        return false;
    for (size_t i = 0; i < nbounds; i++) {
        if (f->bounds[i] != bounds[i])
            return false;
    }
    return true;
}

static void series_init(struct series *s, const struct family *f)
{
    switch (f->kind) {
    case KIND_COUNTER:
        atomic_init(&s->u.counter.value, 0);
        break;
    case KIND_GAUGE:
        atomic_init(&s->u.gauge.bits, dbl_bits(0.0));
        break;
    case KIND_HISTOGRAM:
        s->u.histogram.bounds = f->bounds;
        s->u.histogram.nbounds = f->nbounds;
        for (size_t i = 0; i <= MAX_BOUNDS; i++)
            atomic_init(&s->u.histogram.buckets[i], 0);
        atomic_init(&s->u.histogram.sum_bits, dbl_bits(0.0));
        break;
    }
}

/* Caller holds the lock. The series of f with these labels, created when missing. */
static struct series *series_get(struct family *f, const char *labels)
{
    for (struct series *s = f->head; s != NULL; s = s->next) {
        if (strcmp(s->labels, labels) == 0)
            return s;
    }
    struct series *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->labels = lst_strdup(labels);
    if (s->labels == NULL) {
        free(s);
        return NULL;
    }
    series_init(s, f);
    if (f->tail != NULL)
        f->tail->next = s;
    else
        f->head = s;
    f->tail = s;
    return s;
}

/* Get-or-create of a series of the given kind; NULL on invalid input, clash or no memory. */
static struct series *lookup(struct lst_metrics *m, const char *name, const char *help,
                             const char *labels, enum kind kind, const double *bounds,
                             size_t nbounds)
{
    const char *lbl = labels != NULL ? labels : "";
    if (m == NULL || !valid_name(name) || !valid_labels(lbl, kind == KIND_HISTOGRAM))
        return NULL;
    if (kind == KIND_HISTOGRAM && !valid_bounds(bounds, nbounds))
        return NULL;
    struct series *s = NULL;
    pthread_mutex_lock(&m->lock);
    struct family *f = family_find(m, name);
    if (f == NULL)
        f = family_add(m, name, help, kind, bounds, nbounds);
    else if (f->kind != kind || (kind == KIND_HISTOGRAM && !same_bounds(f, bounds, nbounds)))
        f = NULL;
    if (f != NULL)
        s = series_get(f, lbl);
    pthread_mutex_unlock(&m->lock);
    return s;
}

struct lst_counter *lst_metrics_counter(struct lst_metrics *m, const char *name, const char *help,
                                        const char *labels)
{
    struct series *s = lookup(m, name, help, labels, KIND_COUNTER, NULL, 0);
    return s != NULL ? &s->u.counter : NULL;
}

struct lst_gauge *lst_metrics_gauge(struct lst_metrics *m, const char *name, const char *help,
                                    const char *labels)
{
    struct series *s = lookup(m, name, help, labels, KIND_GAUGE, NULL, 0);
    return s != NULL ? &s->u.gauge : NULL;
}

struct lst_histogram *lst_metrics_histogram(struct lst_metrics *m, const char *name,
                                            const char *help, const char *labels,
                                            const double *bounds, size_t nbounds)
{
    struct series *s = lookup(m, name, help, labels, KIND_HISTOGRAM, bounds, nbounds);
    return s != NULL ? &s->u.histogram : NULL;
}

/* ---- updates (lock-free) ---- */

void lst_counter_add(struct lst_counter *c, uint64_t n)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t lst_counter_value(const struct lst_counter *c)
{
    if (c == NULL)
        return 0;
    return atomic_load_explicit(&c->value, memory_order_relaxed);
}

void lst_gauge_set(struct lst_gauge *g, double v)
{
    if (g != NULL)
        atomic_store_explicit(&g->bits, dbl_bits(v), memory_order_relaxed);
}

void lst_gauge_add(struct lst_gauge *g, double delta)
{
    if (g != NULL)
        atomic_dbl_add(&g->bits, delta);
}

double lst_gauge_value(const struct lst_gauge *g)
{
    if (g == NULL)
        return 0.0;
    return bits_dbl(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

void lst_histogram_observe(struct lst_histogram *h, double v)
{
    if (h == NULL || isnan(v))
        return;
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_dbl_add(&h->sum_bits, v);
}

uint64_t lst_histogram_count(const struct lst_histogram *h)
{
    if (h == NULL)
        return 0;
    uint64_t total = 0;
    for (size_t i = 0; i <= h->nbounds; i++)
        total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    return total;
}

/* ---- rendering ---- */

/* A sample value as Prometheus reads it: shortest round-trip form, +Inf, -Inf, NaN. */
static void put_value(struct lst_buf *b, double v)
{
    if (isnan(v)) {
        lst_buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        lst_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char tmp[64];
    /* Whole numbers as such ("30", not the shortest %g form "3e+01"). */
    if (v == floor(v) && fabs(v) < 1e15) {
        lst_buf_printf(b, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    lst_buf_puts(b, tmp);
}

/* HELP text escaping of format 0.0.4: backslash and newline only. */
static void put_help(struct lst_buf *b, const char *help)
{
    for (const char *p = help; *p != '\0'; p++) {
        if (*p == '\\')
            lst_buf_puts(b, "\\\\");
        else if (*p == '\n')
            lst_buf_puts(b, "\\n");
        else
            lst_buf_append(b, p, 1);
    }
}

/* name{labels} or name{labels,extra} or name{extra} or name. */
static void put_series_name(struct lst_buf *b, const char *name, const char *suffix,
                            const char *labels, const char *extra)
{
    lst_buf_printf(b, "%s%s", name, suffix);
    bool has_labels = labels[0] != '\0';
    bool has_extra = extra != NULL;
    if (!has_labels && !has_extra)
        return;
    lst_buf_printf(b, "{%s%s%s}", labels, has_labels && has_extra ? "," : "",
                   has_extra ? extra : "");
}

static void render_histogram(struct lst_buf *b, const struct family *f, const struct series *s)
{
    const struct lst_histogram *h = &s->u.histogram;
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        /* Counts are loaded once each and summed here, so the +Inf bucket and _count always
         * agree even while other threads observe. */
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        struct lst_buf le;
        lst_buf_init(&le);
        lst_buf_puts(&le, "le=\"");
        put_value(&le, i < f->nbounds ? f->bounds[i] : HUGE_VAL);
        lst_buf_puts(&le, "\"");
        put_series_name(b, f->name, "_bucket", s->labels, le.data != NULL ? le.data : "");
        lst_buf_printf(b, " %" PRIu64 "\n", cumulative);
        if (lst_buf_failed(&le))
            b->oom = true;
        lst_buf_cleanup(&le);
    }
    put_series_name(b, f->name, "_sum", s->labels, NULL);
    lst_buf_puts(b, " ");
    put_value(b, bits_dbl(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
    lst_buf_puts(b, "\n");
    put_series_name(b, f->name, "_count", s->labels, NULL);
    lst_buf_printf(b, " %" PRIu64 "\n", cumulative);
}

static void render_family(struct lst_buf *b, const struct family *f)
{
    static const char *type_names[] = {"counter", "gauge", "histogram"};
    lst_buf_printf(b, "# HELP %s ", f->name);
    put_help(b, f->help);
    lst_buf_printf(b, "\n# TYPE %s %s\n", f->name, type_names[f->kind]);
    for (const struct series *s = f->head; s != NULL; s = s->next) {
        switch (f->kind) {
        case KIND_COUNTER:
            put_series_name(b, f->name, "", s->labels, NULL);
            lst_buf_printf(b, " %" PRIu64 "\n", lst_counter_value(&s->u.counter));
            break;
        case KIND_GAUGE:
            put_series_name(b, f->name, "", s->labels, NULL);
            lst_buf_puts(b, " ");
            put_value(b, lst_gauge_value(&s->u.gauge));
            lst_buf_puts(b, "\n");
            break;
        case KIND_HISTOGRAM:
            render_histogram(b, f, s);
            break;
        }
    }
}

lst_err lst_metrics_render(struct lst_metrics *m, struct lst_buf *out)
{
    if (m == NULL)
        return LST_ERR_INVALID;
    pthread_mutex_lock(&m->lock);
    for (const struct family *f = m->head; f != NULL; f = f->next)
        render_family(out, f);
    pthread_mutex_unlock(&m->lock);
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}

lst_err lst_metrics_label_escape(struct lst_buf *out, const char *value)
{
    bool utf8_ok = lst_utf8_valid(value, strlen(value));
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\\')
            lst_buf_puts(out, "\\\\");
        else if (*p == '"')
            lst_buf_puts(out, "\\\"");
        else if (*p == '\n')
            lst_buf_puts(out, "\\n");
        else if (!utf8_ok && (unsigned char)*p >= 0x80)
            lst_buf_puts(out, "?");
        else
            lst_buf_append(out, p, 1);
    }
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}
