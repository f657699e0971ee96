/* The core of the ledger: records become script calls queued in one pipeline; a
 * flush runs them and says what became of each record. No Kafka here (tests and
 * the benchmark drive it directly), only the optional producer for dead
 * letters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "lst/log.h"

/* Redis's answers that say "not now", not "this record is bad": the batch is retried, never
 * dead-lettered. MISCONF is a refused write after a failed AOF write or RDB save (a full
 * disk): the chaos suite's redis-disk-full dead-lettered valid records before it was here. */
static const char *const transient_errors[] = {"OOM",      "BUSY",       "LOADING",
                                               "READONLY", "MASTERDOWN", "NOSCRIPT",
                                               "TRYAGAIN", "MISCONF",    "NOREPLICAS"};

static const char *const topic_bases[LEDGER_T__COUNT] = {
    "lst.message",   "lst.outbound", "lst.sent",        "lst.inbound",
    "lst.employees", "lst.audit",    "lst.annotations", "lst.views"};

const char *ledger_topic_base(enum ledger_topic t)
{
    return (unsigned)t < LEDGER_T__COUNT ? topic_bases[t] : "unknown";
}

static void init_metrics(struct ledger_core *c, struct lst_metrics *m)
{
    if (m == NULL)
        return;
    c->m_applied = lst_metrics_counter(m, "lst_ledger_records_total", "Records by result",
                                       "result=\"applied\"");
    c->m_skipped = lst_metrics_counter(m, "lst_ledger_records_total", "Records by result",
                                       "result=\"duplicate\"");
    c->m_dlq = lst_metrics_counter(m, "lst_ledger_records_total", "Records by result",
                                   "result=\"dead_letter\"");
    c->m_gaps =
        lst_metrics_counter(m, "lst_ledger_watermark_gaps_total",
                            "Times Redis had lost applied records (refilled from Kafka)", NULL);
    c->m_retries = lst_metrics_counter(m, "lst_ledger_retries_total",
                                       "Batches retried after a Redis failure", NULL);
    c->m_batch_ms = lst_metrics_histogram(
        m, "lst_ledger_batch_seconds", "Time to apply one pipeline of records", NULL,
        lst_metrics_latency_buckets, lst_metrics_latency_nbuckets);
}

lst_err ledger_core_init(struct ledger_core *c, const struct ledger_config *cfg,
                         struct lst_redis *redis, struct lst_kafka_producer *producer,
                         struct lst_metrics *metrics)
{
    struct lst_buf why;
    lst_err err;

    memset(c, 0, sizeof(*c));
    c->cfg = cfg;
    c->redis = redis;
    c->producer = producer;
    ledger_args_init(&c->args);
    ledger_args_init(&c->late);
    lst_buf_init(&c->tmp);
    lst_buf_init(&c->tmp2);
    init_metrics(c, metrics);
    for (int t = 0; t < LEDGER_T__COUNT; t++) {
        err = lst_config_topic(&cfg->common, topic_bases[t], c->topics[t], sizeof(c->topics[t]));
        if (err != LST_OK)
            return err;
    }
    lst_buf_init(&why);
    err = ledger_rules_load(&c->rules, cfg->rules, cfg->rules_file, &why);
    if (err != LST_OK)
        LST_ERROR("ledger.rules_invalid", "%s", why.data ? why.data : lst_strerror(err));
    lst_buf_cleanup(&why);
    if (err == LST_OK)
        err = ledger_script_create(&c->script);
    if (err == LST_OK)
        err = lst_redis_pipe_create(&c->pipe);
    if (err == LST_OK)
        err = lst_redis_pipe_create(&c->fpipe);
    if (err == LST_OK)
        err = lst_redis_pipe_create(&c->late_pipe);
    if (err == LST_OK)
        err = lst_redis_pipe_create(&c->flate_pipe);
    if (err == LST_OK)
        err = ledger_native_create(&c->nat, NULL);
    if (err == LST_OK)
        err = ledger_native_create(&c->fnat, c->nat);
    return err;
}

void ledger_core_cleanup(struct ledger_core *c)
{
    lst_redis_script_destroy(c->script);
    lst_redis_pipe_destroy(c->pipe);
    lst_redis_pipe_destroy(c->fpipe);
    lst_redis_pipe_destroy(c->late_pipe);
    lst_redis_pipe_destroy(c->flate_pipe);
    ledger_native_destroy(c->nat);  /* either order: only the first created frees the parsed */
    ledger_native_destroy(c->fnat); /* states both share, and the other never touches them */
    ledger_args_cleanup(&c->args);
    ledger_args_cleanup(&c->late);
    ledger_rules_cleanup(&c->rules);
    lst_buf_cleanup(&c->tmp);
    lst_buf_cleanup(&c->tmp2);
    for (int t = 0; t < LEDGER_T__COUNT; t++)
        free(c->parts[t]);
    free(c->done);
    free(c->fdone);
    free(c->poison);
    memset(c, 0, sizeof(*c));
}

static struct ledger_part *part(struct ledger_core *c, enum ledger_topic t, int32_t p)
{
    if (p < 0 || p > 100000)
        return NULL;
    if (p >= c->nparts[t]) {
        int32_t n = p + 1;
        struct ledger_part *parts = realloc(c->parts[t], (size_t)n * sizeof(*parts));
        if (parts == NULL)
            return NULL;
        for (int32_t i = c->nparts[t]; i < n; i++)
            parts[i].last = -1;
        c->parts[t] = parts;
        c->nparts[t] = n;
    }
    return &c->parts[t][p];
}

void ledger_core_forget(struct ledger_core *c)
{
    for (int t = 0; t < LEDGER_T__COUNT; t++) {
        for (int32_t p = 0; p < c->nparts[t]; p++)
            c->parts[t][p].last = -1;
    }
}

static void wm_field(struct ledger_core *c, enum ledger_topic t, int32_t p)
{
    lst_buf_reset(&c->tmp);
    lst_buf_printf(&c->tmp, "%s:%d", c->topics[t], (int)p);
}

lst_err ledger_core_start(struct ledger_core *c, enum ledger_topic t, int32_t p, int64_t *offset)
{
    redisReply *reply = NULL;
    struct ledger_part *pt = part(c, t, p);
    int64_t wm = -1;
    lst_err err;

    if (pt == NULL)
        return LST_ERR_NOMEM;
    wm_field(c, t, p);
    err = lst_redis_cmdf(c->redis, &reply, "HGET " LEDGER_PREFIX "wm %s", c->tmp.data);
    if (err == LST_OK && reply->type == REDIS_REPLY_STRING)
        err = lst_parse_i64(reply->str, -1, INT64_MAX - 1, &wm);
    if (reply != NULL)
        freeReplyObject(reply);
    if (err != LST_OK) {
        LST_WARN("ledger.watermark_read_failed", "%s: %s", c->tmp.data, lst_strerror(err));
        return err == LST_ERR_INVALID ? LST_ERR_REDIS : err;
    }
    pt->last = wm;
    *offset = wm >= 0 ? wm + 1 : LST_KAFKA_OFFSET_BEGINNING;
    LST_DEBUG("ledger.resume", "%s at %lld", c->tmp.data, (long long)*offset);
    return LST_OK;
}

size_t ledger_core_pending(const struct ledger_core *c)
{
    return c->ndone;
}

static lst_err push_done(struct ledger_core *c, const struct ledger_rec *rec,
                         enum ledger_phase phase, uint32_t call, uint32_t idx)
{
    if (c->ndone == c->capdone) {
        size_t cap = c->capdone ? c->capdone * 2 : 256;
        struct ledger_done *d = realloc(c->done, cap * sizeof(*d));
        if (d == NULL)
            return LST_ERR_NOMEM;
        c->done = d;
        c->capdone = cap;
    }
    c->done[c->ndone++] = (struct ledger_done){
        rec->topic, rec->partition, rec->offset, LEDGER_APPLIED, phase, call, idx};
    return LST_OK;
}

/* The header of one event in the script call (epilogue.lua): kind, watermark field, offset,
 * prev, the number of the event's own arguments (both filled in later). */
static lst_err add_header(struct ledger_core *c, const struct ledger_rec *rec, int64_t prev)
{
    if (c->call_events == 0) {
        ledger_args_reset(&c->args);
        ledger_args_i64(&c->args, c->cfg->read_receipts);
        ledger_args_i64(&c->args, c->cfg->reply_window);
    }
    wm_field(c, rec->topic, rec->partition);
    ledger_args_i64(&c->args, LEDGER_S_SKIP);
    ledger_args_add(&c->args, c->tmp.data, c->tmp.len);
    ledger_args_i64(&c->args, rec->offset);
    ledger_args_i64(&c->args, prev);
    ledger_args_i64(&c->args, 0);
    return lst_buf_failed(&c->args.buf) ? LST_ERR_NOMEM : LST_OK;
}

/* Queues a script call being filled (args, *events of them) into pipe. */
static lst_err close_into(struct ledger_core *c, struct ledger_args *args,
                          struct lst_redis_pipe *pipe, uint32_t *events, uint32_t *calls)
{
    lst_err err;

    if (*events == 0)
        return LST_OK;
    err = ledger_args_finish(args);
    if (err == LST_OK)
        err = lst_redis_pipe_script(pipe, c->script, 0, (int)args->n, args->argv, args->argvlen);
    if (err == LST_OK) {
        (*calls)++;
        *events = 0;
    }
    return err;
}

/* Queues the script call being filled into the pipeline. */
static lst_err close_call(struct ledger_core *c)
{
    return close_into(c, &c->args, c->pipe, &c->call_events, &c->calls);
}

/* Queues the LEDGER_P_LATE script call being filled. */
static lst_err close_late(struct ledger_core *c)
{
    return close_into(c, &c->late, c->late_pipe, &c->late_events, &c->late_calls);
}

/* Moves the event at arguments [hdr, c->args.n) into the LEDGER_P_LATE call being filled. */
static lst_err move_late(struct ledger_core *c, size_t hdr)
{
    struct ledger_args *l = &c->late;

    if (c->late_events == 0) {
        ledger_args_reset(l);
        ledger_args_i64(l, c->cfg->read_receipts);
        ledger_args_i64(l, c->cfg->reply_window);
    }
    for (size_t i = hdr; i < c->args.n; i++)
        ledger_args_add(l, c->args.buf.data + c->args.off[i], c->args.len[i]);
    return lst_buf_failed(&l->buf) ? LST_ERR_NOMEM : LST_OK;
}

/* Where the record at arguments [hdr, ..) of kind s goes: a receipt, outbound record or
 * accepted send to C (when ledger_native_add takes it) unless its partition had a record after
 * the C phase in this batch; any other record to the script calls, or to the late ones after a
 * record of its partition went to C. Takes it out of c->args unless it stays in the script call
 * being filled. */
static lst_err route(struct ledger_core *c, const struct ledger_rec *rec, struct ledger_part *pt,
                     enum ledger_script s, size_t hdr)
{
    enum ledger_phase before = pt->batch == c->batch_no ? pt->phase : LEDGER_P_SCRIPT;
    enum ledger_phase phase = LEDGER_P_SCRIPT;
    lst_err err;

    if (c->cfg->native && before <= LEDGER_P_NATIVE)
        phase = LEDGER_P_NATIVE; /* unless ledger_native_add refuses it, below */
    else if (before >= LEDGER_P_NATIVE)
        phase = LEDGER_P_LATE;
    err = phase == LEDGER_P_NATIVE
              ? ledger_native_add(c->nat, s, &c->args, hdr, c->args.n - hdr, c->ndone)
              : LST_OK;
    if (err == LST_ERR_INVALID) { /* not one C merges: the script applies it, or says why */
        phase = before >= LEDGER_P_NATIVE ? LEDGER_P_LATE : LEDGER_P_SCRIPT;
        err = LST_OK;
    }
    if (err != LST_OK)
        return err; /* no memory: the caller drops the batch */
    if (phase == LEDGER_P_SCRIPT) {
        err = push_done(c, rec, phase, c->calls, c->call_events);
        if (err == LST_OK)
            c->call_events++;
    } else {
        if (phase == LEDGER_P_LATE)
            err = move_late(c, hdr);
        if (err == LST_OK)
            err = push_done(c, rec, phase, c->late_calls, c->late_events);
        if (err == LST_OK && phase == LEDGER_P_LATE && ++c->late_events >= c->cfg->script_events)
            err = close_late(c);
        c->args.n = hdr; /* the script call being filled keeps the events before it */
        if (c->call_events == 0)
            ledger_args_reset(&c->args);
    }
    if (err == LST_OK) {
        pt->batch = c->batch_no;
        pt->phase = phase;
    }
    return err;
}

static lst_err build(struct ledger_core *c, const struct ledger_rec *rec, enum ledger_script *s,
                     struct lst_buf *why)
{
    switch (rec->topic) {
    case LEDGER_T_MESSAGE:
        return ledger_apply_message(c, rec, s, why);
    case LEDGER_T_OUTBOUND:
        return ledger_apply_outbound(c, rec, s, why);
    case LEDGER_T_SENT:
        return ledger_apply_sent(c, rec, s, why);
    case LEDGER_T_INBOUND:
        return ledger_apply_inbound(c, rec, s, why);
    case LEDGER_T_EMPLOYEES:
        return ledger_apply_employee(c, rec, s, why);
    case LEDGER_T_AUDIT:
        return ledger_apply_audit(c, rec, s, why);
    case LEDGER_T_ANNOTATIONS:
        return ledger_apply_annotation(c, rec, s, why);
    case LEDGER_T_VIEWS:
        return ledger_apply_view(c, rec, s, why);
    case LEDGER_T__COUNT:
        break;
    }
    return LST_ERR_INVALID;
}

/* A record whose script failed with a script error before: dead-letter it this
 * time. */
static const char *poisoned(const struct ledger_core *c, const struct ledger_rec *rec)
{
    for (size_t i = 0; i < c->npoison; i++) {
        const struct ledger_poison *p = &c->poison[i];
        if (p->topic == rec->topic && p->partition == rec->partition && p->offset == rec->offset)
            return p->reason;
    }
    return NULL;
}

lst_err ledger_core_add(struct ledger_core *c, const struct ledger_rec *rec)
{
    struct ledger_part *pt = part(c, rec->topic, rec->partition);
    enum ledger_script s = LEDGER_S_SKIP;
    const char *poison = poisoned(c, rec);
    size_t hdr = c->call_events == 0 ? 2 : c->args.n;
    lst_err err;

    if (pt == NULL || (unsigned)rec->topic >= LEDGER_T__COUNT)
        return LST_ERR_INVALID;
    err = add_header(c, rec, pt->last);
    if (err != LST_OK)
        return err;
    lst_buf_reset(&c->tmp2);
    err = poison != NULL ? LST_ERR_INVALID : build(c, rec, &s, &c->tmp2);
    if (poison != NULL)
        lst_buf_printf(&c->tmp2, "script: %s", poison);
    if (err != LST_OK && err != LST_ERR_NOMEM) {
        err = ledger_dlq(c, rec, err, c->tmp2.data ? c->tmp2.data : lst_strerror(err));
        if (err == LST_OK) {
            lst_counter_inc(c->m_dlq);
            s = LEDGER_S_SKIP;
            c->args.n = hdr + LEDGER_HEADER_ARGS; /* only the watermark advances */
        } else {
            err = LST_ERR_KAFKA;
        }
    }
    if (err == LST_OK)
        err = ledger_args_set_i64(&c->args, hdr, s);
    if (err == LST_OK)
        err =
            ledger_args_set_i64(&c->args, hdr + 4, (int64_t)(c->args.n - hdr - LEDGER_HEADER_ARGS));
    if (err == LST_OK)
        err = route(c, rec, pt, s, hdr);
    if (err != LST_OK) {
        /* nothing of this record stays queued; the call keeps the events before it (a record
         * half-way into the late call or C leaves the batch to a reassignment: ledger_core_add
         * failing makes the caller drop it) */
        c->args.n = hdr;
        if (c->call_events == 0)
            ledger_args_reset(&c->args);
        return err;
    }
    pt->last = rec->offset;
    if (c->call_events >= (uint32_t)c->cfg->script_events)
        err = close_call(c);
    return err;
}

static bool starts_with_any(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strncmp(s, list[i], strlen(list[i])) == 0)
            return true;
    }
    return false;
}

static void remember_poison(struct ledger_core *c, const struct ledger_done *d, const char *why)
{
    if (c->npoison == LEDGER_POISON_MAX)
        c->npoison = 0; /* a few at a time is all that can be in flight */
    if (c->poison == NULL) {
        c->poison = calloc(LEDGER_POISON_MAX, sizeof(*c->poison));
        if (c->poison == NULL)
            return;
    }
    struct ledger_poison *p = &c->poison[c->npoison++];
    p->topic = d->topic;
    p->partition = d->partition;
    p->offset = d->offset;
    snprintf(p->reason, sizeof(p->reason), "%s", why);
}

/* The event's entry in its call's reply: an integer (1 applied, 0 applied before), or a
 * string ("LGAP ..." or "ERR <why>"); NULL when the whole call failed. */
static const redisReply *event_reply(const redisReply *call, uint32_t idx)
{
    if (call == NULL || call->type != REDIS_REPLY_ARRAY || idx >= call->elements)
        return NULL;
    return call->element[idx];
}

/* Why an event was not applied: its own answer, or the error of its whole call. */
static const char *event_reason(const redisReply *call, const redisReply *r)
{
    if (r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        return r->str;
    if (call != NULL && call->type == REDIS_REPLY_ERROR)
        return call->str; /* the whole call failed: OOM, BUSY, ... */
    return "no reply";
}

/* Records the outcome of one event: code 1 applied, 0 applied before; otherwise not applied,
 * msg says why ("LGAP ...", "ERR <why>" or the batch's failure), own: msg is the event's own
 * answer (a script error poisons the record). Returns true when the record is done. */
static bool settle(struct ledger_core *c, struct ledger_done *d, int code, const char *msg,
                   bool own)
{
    if (code == 0 || code == 1) {
        lst_counter_inc(code == 1 ? c->m_applied : c->m_skipped);
        d->outcome = LEDGER_APPLIED;
        return true;
    }
    if (strncmp(msg, "LGAP", 4) == 0) {
        d->outcome = LEDGER_GAP;
        return false;
    }
    d->outcome = LEDGER_RETRY;
    const char *why = strncmp(msg, "ERR ", 4) == 0 ? msg + 4 : msg;
    if (own && !starts_with_any(why, transient_errors, LST_ARRAY_LEN(transient_errors))) {
        /* This record breaks the script: dead-lettered when it comes again (its bytes are no
         * longer at hand here). */
        LST_ERROR("ledger.script_failed", "%s [%d] offset %lld: %.300s",
                  ledger_topic_base(d->topic), (int)d->partition, (long long)d->offset, why);
        remember_poison(c, d, why);
    }
    return false;
}

/* Classifies one event of a script call; returns true when the record is done. */
static bool judge(struct ledger_core *c, struct ledger_done *d, const redisReply *call,
                  const char **msg)
{
    const redisReply *r = event_reply(call, d->idx);

    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        return settle(c, d, (int)r->integer, "", false);
    *msg = event_reason(call, r);
    return settle(c, d, -1, *msg, r != NULL);
}

/* Starts an empty batch: no script call open, no records. */
static void new_batch(struct ledger_core *c)
{
    lst_redis_pipe_reset(c->pipe);
    lst_redis_pipe_reset(c->late_pipe);
    ledger_args_reset(&c->args);
    ledger_args_reset(&c->late);
    ledger_native_reset(c->nat);
    c->ndone = 0;
    c->calls = 0;
    c->call_events = 0;
    c->late_calls = 0;
    c->late_events = 0;
    c->batch_no++;
}

static void swap_ptr(void **a, void **b)
{
    void *t = *a;
    *a = *b;
    *b = t;
}

void ledger_core_send(struct ledger_core *c)
{
    if (c->ndone == 0 || c->nfdone > 0) /* nothing to send, or the last one not received */
        return;
    /* An open call that cannot be queued (no memory) leaves its records without a reply:
     * they come back as RETRY. */
    (void)close_call(c);
    (void)close_late(c);
    size_t cap = c->capfdone;
    swap_ptr((void **)&c->pipe, (void **)&c->fpipe);
    swap_ptr((void **)&c->late_pipe, (void **)&c->flate_pipe);
    swap_ptr((void **)&c->nat, (void **)&c->fnat);
    swap_ptr((void **)&c->done, (void **)&c->fdone);
    c->capfdone = c->capdone;
    c->nfdone = c->ndone;
    c->capdone = cap;
    new_batch(c);
    c->sent_ms = lst_mono_ms();
    if (ledger_native_count(c->fnat) == 0) {
        lst_redis_pipe_send(c->redis, c->fpipe);
        return;
    }
    /* The C merges read what the script calls wrote: those run first, then the merges up to
     * the transaction, which is left in flight while the caller reads the next batch. */
    c->fscript_err = lst_redis_pipe_exec(c->redis, c->fpipe);
    ledger_native_send(c, c->fnat);
}

bool ledger_core_in_flight(const struct ledger_core *c)
{
    return c->nfdone > 0;
}

void ledger_core_discard(struct ledger_core *c)
{
    new_batch(c);
}

/* Whether a record not applied says that Redis lost progress: a gate (LGAP) as the batch's
 * first failure. After another failure (a refused transaction, OOM, MISCONF) the later records
 * of its partitions meet their gates too, and that is not a loss. */
static bool first_gap(const struct ledger_done *d, lst_err result)
{
    return d->outcome == LEDGER_GAP && result == LST_OK;
}

/* The script calls' outcomes: phase LEDGER_P_SCRIPT from fpipe, LEDGER_P_LATE from flate_pipe. */
static void judge_scripts(struct ledger_core *c, enum ledger_phase phase, lst_err err,
                          lst_err *result, bool *gap, const char **why)
{
    const struct lst_redis_pipe *p = phase == LEDGER_P_SCRIPT ? c->fpipe : c->flate_pipe;

    for (size_t i = 0; i < c->nfdone; i++) {
        struct ledger_done *d = &c->fdone[i];
        if (d->phase != phase)
            continue;
        const redisReply *call =
            err == LST_OK || err == LST_ERR_INVALID ? lst_redis_pipe_reply(p, d->call) : NULL;
        const char *msg = "";
        if (!judge(c, d, call, &msg)) {
            *gap = *gap || first_gap(d, *result);
            if (*result == LST_OK) /* the first reason names the cause, e.g. MISCONF */
                *why = msg;
            *result = LST_ERR_STATE;
        }
    }
}

static void judge_native(struct ledger_core *c, lst_err err, lst_err *result, bool *gap,
                         const char **why)
{
    for (size_t i = 0; i < ledger_native_count(c->fnat); i++) {
        size_t at;
        const char *msg;
        int code = ledger_native_outcome(c->fnat, err, i, &at, &msg);
        struct ledger_done *d = &c->fdone[at];
        if (!settle(c, d, code, msg, code == -2)) {
            *gap = *gap || first_gap(d, *result);
            if (*result == LST_OK)
                *why = msg;
            *result = LST_ERR_STATE;
        }
    }
}

lst_err ledger_core_recv(struct ledger_core *c, const struct ledger_done **done, size_t *n)
{
    lst_err result = LST_OK;
    bool gap = false;
    const char *why = "";

    *done = c->fdone;
    *n = c->nfdone;
    if (c->nfdone == 0)
        return LST_OK;
    /* The phases in order; each runs whatever the one before gave: a record of a partition
     * that failed earlier in the batch meets its watermark gate (LGAP) and is not applied. */
    bool native = ledger_native_count(c->fnat) > 0;
    lst_err err = native ? c->fscript_err : lst_redis_pipe_recv(c->redis, c->fpipe);
    judge_scripts(c, LEDGER_P_SCRIPT, err, &result, &gap, &why);
    if (native) {
        err = ledger_native_recv(c, c->fnat);
        judge_native(c, err, &result, &gap, &why);
    }
    if (lst_redis_pipe_len(c->flate_pipe) > 0) {
        err = lst_redis_pipe_exec(c->redis, c->flate_pipe);
        judge_scripts(c, LEDGER_P_LATE, err, &result, &gap, &why);
    }
    if (gap)
        lst_counter_inc(c->m_gaps);
    if (result != LST_OK) {
        lst_counter_inc(c->m_retries);
        LST_WARN("ledger.batch_incomplete", "%s (%.200s); resuming from the watermarks",
                 gap ? "Redis lost applied records" : "Redis failed or refused", why);
    }
    lst_histogram_observe(c->m_batch_ms, (double)(lst_mono_ms() - c->sent_ms) / 1000.0);
    lst_redis_pipe_reset(c->fpipe);
    lst_redis_pipe_reset(c->flate_pipe);
    ledger_native_reset(c->fnat);
    c->nfdone = 0;
    return result;
}

lst_err ledger_core_flush(struct ledger_core *c, const struct ledger_done **done, size_t *n)
{
    ledger_core_send(c);
    return ledger_core_recv(c, done, n);
}
