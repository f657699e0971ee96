/* ledger: records every send, delivery and read and builds the projections in
 * Redis.
 *
 * The ledger is the only writer of the projections (keys under "lst:lg:", described in
 * docs/ledger.md). Every Kafka record becomes one event that is applied behind its partition's
 * watermark, atomically with the watermark's advance: in the Lua script, or for message
 * records, receipts, outbound records and accepted sends merged in C in one MULTI/EXEC per
 * batch (native.c). On
 * start (and whenever Redis may have lost progress) every partition is assigned explicitly at
 * its watermark + 1, so Redis, not the group's commits, decides where reading resumes.
 *
 * Files: main.c (arguments), config.c (the config table), ledger.c (the service context and
 * its lifecycle), core.c (the batch of script calls and its outcome), consume.c (the Kafka
 * side: assignment at the watermarks and the poll loop), args.c (script arguments), apply_*.c
 * (one per record kind: record -> script arguments), rules.c (categories of incoming
 * messages), dlq.c (dead letters), scripts.c (the embedded Lua), native.c (the merges in C),
 * rebuild.c (dropping the projections), refill.c (markers that tell the view API the
 * projections are being refilled after Redis lost progress).
 */
#ifndef LST_SVC_LEDGER_H
#define LST_SVC_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "lst/config.h"
#include "lst/kafka.h"
#include "lst/kafka_assign.h"
#include "lst/metrics.h"
#include "lst/records.h"
#include "lst/redis.h"
#include "lst/service.h"

/* Every projection key starts with this (docs/ledger.md lists them all). */
#define LEDGER_PREFIX "lst:lg:"

struct ledger_config {
    struct lst_common_config common;
    int64_t http_port;             /* LST_HTTP_PORT */
    char *group_id;                /* LST_LEDGER_GROUP_ID: monitoring commits only */
    int64_t batch;                 /* LST_LEDGER_BATCH: records per Redis pipeline */
    int64_t script_events;         /* LST_LEDGER_SCRIPT_EVENTS: records per script call */
    int64_t poll_ms;               /* LST_LEDGER_POLL_MS */
    int64_t reply_window;          /* LST_LEDGER_REPLY_WINDOW_MS */
    int64_t read_receipts;         /* LST_LEDGER_READ_RECEIPTS_N: 0 turns the detection off */
    char *rules;                   /* LST_LEDGER_RULES: inline category rules */
    char *rules_file;              /* LST_LEDGER_RULES_FILE */
    int64_t retention_ms;          /* LST_LEDGER_RETENTION_MS: 0 keeps everything */
    int64_t retention_batch;       /* LST_LEDGER_RETENTION_BATCH: items per run */
    int64_t retention_interval_ms; /* LST_LEDGER_RETENTION_INTERVAL_MS */
    bool native;                   /* LST_LEDGER_NATIVE: messages, receipts, sends in C */
};

extern const struct lst_config_program ledger_program;

/* The service's own configuration section (the common one comes from the
 * library). */
struct lst_config_section ledger_config_section(struct ledger_config *cfg);

/* ---- topics ---- */

enum ledger_topic {
    LEDGER_T_MESSAGE = 0,
    LEDGER_T_OUTBOUND,
    LEDGER_T_SENT,
    LEDGER_T_INBOUND,
    LEDGER_T_EMPLOYEES,
    LEDGER_T_AUDIT,
    LEDGER_T_ANNOTATIONS,
    LEDGER_T_VIEWS,
    LEDGER_T__COUNT
};

/* "lst.message", ... (without prefix). */
const char *ledger_topic_base(enum ledger_topic t);

/* ---- script arguments ---- */

/* A growable argv whose strings live in one buffer. */
struct ledger_args {
    struct lst_buf buf;
    size_t *off, *len; /* per argument: where in buf */
    size_t n, cap;
    const char **argv; /* filled by ledger_args_finish, valid until the next change */
    size_t *argvlen;
    size_t argcap;
};

void ledger_args_init(struct ledger_args *a);
void ledger_args_cleanup(struct ledger_args *a);
void ledger_args_reset(struct ledger_args *a);
/* Appends one argument (s may be NULL: the empty string). */
lst_err ledger_args_add(struct ledger_args *a, const char *s, size_t len);
lst_err ledger_args_str(struct ledger_args *a, const char *s);
lst_err ledger_args_i64(struct ledger_args *a, int64_t v);
lst_err ledger_args_dbl(struct ledger_args *a, double v);
/* Replaces argument i with the decimal v (counts written after the items they
 * count). */
lst_err ledger_args_set_i64(struct ledger_args *a, size_t i, int64_t v);
/* A key/value pair when v is not NULL; *count is incremented for it. */
lst_err ledger_args_kv(struct ledger_args *a, const char *k, const char *v, int64_t *count);
lst_err ledger_args_kv_i64(struct ledger_args *a, const char *k, int64_t v, int64_t *count);
/* Points argv/argvlen at the arguments. */
lst_err ledger_args_finish(struct ledger_args *a);

/* ---- category rules of incoming messages ---- */

enum ledger_rule_kind { LEDGER_RULE_KEYWORD, LEDGER_RULE_DEPARTMENT };

struct ledger_rule {
    enum ledger_rule_kind kind;
    char *category;
    char **words; /* keyword: lowercase ASCII words; department: one name */
    size_t nwords;
};

struct ledger_rules {
    struct ledger_rule *items;
    size_t n;
};

/* Parses rules: entries separated by ';' or newlines, '#' starts a comment
 * line: <category>=keyword:<word>[,<word>...]   text or caption contains a word
 * (ASCII case- insensitive) <category>=department:<department>      the
 * sender's department is exactly this The first matching rule wins; no match:
 * "inbox". Appends to r; why gets the reason. */
lst_err ledger_rules_parse(struct ledger_rules *r, const char *text, struct lst_buf *why);
/* Inline rules, then the file's (either may be NULL). */
lst_err ledger_rules_load(struct ledger_rules *r, const char *inline_rules, const char *file,
                          struct lst_buf *why);
void ledger_rules_cleanup(struct ledger_rules *r);
/* The rules as the inbound script evaluates them: one line per rule up to the
 * first keyword rule that matches the texts ("k\t<cat>"), department rules as
 * "d\t<dep>\t<cat>". */
lst_err ledger_rules_candidates(const struct ledger_rules *r, const char *text, const char *caption,
                                struct lst_buf *out);

/* ---- the script ---- */

/* The kinds of event the one ledger script applies (its argument "kind"). */
enum ledger_script {
    LEDGER_S_SKIP = 0,
    LEDGER_S_OUTBOUND,
    LEDGER_S_SENT,
    LEDGER_S_RECEIPT,
    LEDGER_S_MESSAGE,
    LEDGER_S_INBOUND,
    LEDGER_S_EMPLOYEE,
    LEDGER_S_EMPLOYEE_ERASE,
    LEDGER_S_AUDIT,
    LEDGER_S_ANNOTATION,
    LEDGER_S_VIEW,
    LEDGER_S_RR, /* native.c's follow-up of receipts merged in C: not a record */
    LEDGER_S__COUNT
};

/* Creates the ledger's script (prelude + every kind's apply + the batch epilogue); it is
 * idempotent (watermark-gated), so it may be replayed and pipelined. */
lst_err ledger_script_create(struct lst_redis_script **out);
/* Its full Lua source, for tools and docs; free with free(). */
char *ledger_script_source(void);

/* ---- the core: records -> one batch of script calls ---- */

/* One consumed record (borrowed for the call). */
struct ledger_rec {
    enum ledger_topic topic;
    int32_t partition;
    int64_t offset;
    const void *key; /* NULL: none */
    size_t keylen;
    const void *value; /* NULL: a tombstone */
    size_t len;
};

/* What became of a record after ledger_core_flush. */
enum ledger_outcome {
    LEDGER_APPLIED = 0, /* the script ran (applied, or skipped as applied before) */
    LEDGER_GAP,         /* Redis lost progress: reassign from the watermarks and retry */
    LEDGER_RETRY,       /* Redis failed or refused for now (OOM, connection): retry */
};

/* Where a record of the batch is applied, in this order: script calls, records merged in C
 * (native.c), and script calls of records that follow such a record on their partition (an
 * incoming message after a receipt on lst.inbound), so every partition keeps its order. */
enum ledger_phase { LEDGER_P_SCRIPT = 0, LEDGER_P_NATIVE, LEDGER_P_LATE };

struct ledger_done {
    enum ledger_topic topic;
    int32_t partition;
    int64_t offset;
    enum ledger_outcome outcome;
    enum ledger_phase phase;
    uint32_t call, idx; /* the script call of its phase's pipeline and the event's place in it */
};

/* A record whose script failed with a script error: dead-lettered when it comes
 * again. */
#define LEDGER_POISON_MAX 16
struct ledger_poison {
    enum ledger_topic topic;
    int32_t partition;
    int64_t offset;
    char reason[256];
};

/* Arguments of every event's header in the script call (epilogue.lua): kind, watermark field,
 * offset, prev, the number of the event's own arguments. */
#define LEDGER_HEADER_ARGS 5

/* Last offset seen per partition: the "prev" every script call carries. */
struct ledger_part {
    int64_t last;            /* -1: none */
    uint64_t batch;          /* the batch of phase */
    enum ledger_phase phase; /* the phase of its last record in that batch */
};

/* ---- records merged in C (native.c) ---- */

struct ledger_native;
#define LEDGER_NATIVE_RETRY (-3)
/* share: NULL, or the other instance of the same core (they share the parsed states). */
lst_err ledger_native_create(struct ledger_native **out, struct ledger_native *share);
void ledger_native_destroy(struct ledger_native *n);
/* Forgets the events (a new batch). */
void ledger_native_reset(struct ledger_native *n);
size_t ledger_native_count(const struct ledger_native *n);
/* Takes the event of kind at arguments [first, first + count) of a (epilogue.lua's header,
 * then the kind's arguments) when C merges it: every receipt and outbound record, an accepted
 * send with plain IDs, a message record with a plain ID whose skipped employees JSON writes as
 * they are. LST_ERR_INVALID (nothing taken) for any other, which the script then applies.
 * done: its record's entry in the batch. */
lst_err ledger_native_add(struct ledger_native *n, enum ledger_script kind,
                          const struct ledger_args *a, size_t first, size_t count, size_t done);
struct ledger_core;
/* Applies the events in one transaction (retried while other writers interfere), in two
 * halves: send reads and merges, and leaves the transaction in flight; recv reads its answer
 * (and tries again, synchronously, when another writer came first) and gives LST_OK, or the
 * failure that left every event unapplied. In between, nothing else may use c->redis. */
void ledger_native_send(struct ledger_core *c, struct ledger_native *n);
lst_err ledger_native_recv(struct ledger_core *c, struct ledger_native *n);
/* Event i after ledger_native_recv gave applied: 1 applied, 0 applied before, -1 a gap
 * (Redis lost progress), -2 the event failed (why), LEDGER_NATIVE_RETRY (why). *done: its
 * record's entry in the batch. */
int ledger_native_outcome(const struct ledger_native *n, lst_err applied, size_t i, size_t *done,
                          const char **why);

struct ledger_core {
    const struct ledger_config *cfg;     /* borrowed */
    struct lst_redis *redis;             /* borrowed */
    struct lst_kafka_producer *producer; /* borrowed; NULL: dead letters are only logged */
    char topics[LEDGER_T__COUNT][LST_TOPIC_MAX + 1]; /* full names */
    struct ledger_rules rules;
    struct lst_redis_script *script;
    struct lst_redis_pipe *pipe;
    struct ledger_args args; /* the script call being filled */
    uint32_t call_events;    /* events in it */
    uint32_t calls;          /* script calls queued in the pipeline */
    struct lst_buf tmp, tmp2;
    struct ledger_part *parts[LEDGER_T__COUNT];
    int32_t nparts[LEDGER_T__COUNT];
    struct ledger_done *done; /* one per queued record */
    size_t ndone, capdone;
    /* The pipeline sent by ledger_core_send and its records, until ledger_core_recv. With C
     * merges in the batch, the pipeline ran at once (fscript_err) and the transaction of the
     * merges is what is in flight. */
    struct lst_redis_pipe *fpipe;
    lst_err fscript_err;
    struct ledger_done *fdone;
    size_t nfdone, capfdone;
    int64_t sent_ms;
    /* Receipts merged in C, of the batch being built and of the one sent; the script calls
     * of LEDGER_P_LATE (built, queued, sent) */
    struct ledger_native *nat, *fnat;
    struct ledger_args late;
    uint32_t late_events, late_calls;
    struct lst_redis_pipe *late_pipe, *flate_pipe;
    uint64_t batch_no;
    struct ledger_poison *poison; /* LEDGER_POISON_MAX entries, allocated on first use */
    size_t npoison;
    /* Tests only: called before each transaction of the C merges is sent, where another
     * writer's commit makes it fail (NULL: none). */
    void (*before_commit)(void *arg);
    void *before_commit_arg;
    /* metrics (NULL without a registry) */
    struct lst_counter *m_applied, *m_skipped, *m_dlq, *m_gaps, *m_retries;
    struct lst_histogram *m_batch_ms;
};

/* Loads the rules, creates the scripts. cfg, redis, producer and metrics (may
 * be NULL) are borrowed for the core's lifetime. */
lst_err ledger_core_init(struct ledger_core *c, const struct ledger_config *cfg,
                         struct lst_redis *redis, struct lst_kafka_producer *producer,
                         struct lst_metrics *metrics);
void ledger_core_cleanup(struct ledger_core *c);

/* Where a partition resumes: its watermark + 1 from Redis, or the beginning.
 * Also resets the partition's "prev" to the watermark. */
lst_err ledger_core_start(struct ledger_core *c, enum ledger_topic t, int32_t partition,
                          int64_t *offset);
/* Forgets every partition's "prev" (before a reassignment). */
void ledger_core_forget(struct ledger_core *c);

/* Decodes rec and queues its script call. An undecodable record goes to the
 * topic's DLQ at once (waiting for the broker) and queues a watermark-only
 * call. LST_ERR_KAFKA when the dead letter could not be written (nothing
 * queued: retry the record later). */
lst_err ledger_core_add(struct ledger_core *c, const struct ledger_rec *rec);

/* Runs the queued calls in one pipeline; *done and *n describe every queued
 * record (valid until the next send). Records whose script failed with a script
 * error are dead-lettered and skipped here. LST_OK when every record is
 * APPLIED; LST_ERR_STATE when some are GAP or RETRY (reassign from the
 * watermarks before reading on). ledger_core_send + ledger_core_recv. */
lst_err ledger_core_flush(struct ledger_core *c, const struct ledger_done **done, size_t *n);

/* ledger_core_flush in two halves, so that the next batch is read from Kafka and encoded
 * while Redis runs this one: send sends the queued calls (a previous batch must have been
 * received) and starts a new batch; recv waits for their replies and reports as flush does
 * (*done valid until the next send). In between, the caller must not use the core's Redis
 * connection (lst_redis_pipe_send). */
void ledger_core_send(struct ledger_core *c);
lst_err ledger_core_recv(struct ledger_core *c, const struct ledger_done **done, size_t *n);
/* Whether a batch was sent and not yet received. */
bool ledger_core_in_flight(const struct ledger_core *c);
/* Drops the batch being built (its records are read again after a reassignment). */
void ledger_core_discard(struct ledger_core *c);

/* Number of records queued. */
size_t ledger_core_pending(const struct ledger_core *c);

/* Builders of one record kind's script call into c->args (after the common
 * prefix). They return LST_ERR_INVALID/... with the reason in why when the
 * record cannot be applied. */
lst_err ledger_apply_message(struct ledger_core *c, const struct ledger_rec *rec,
                             enum ledger_script *s, struct lst_buf *why);
lst_err ledger_apply_outbound(struct ledger_core *c, const struct ledger_rec *rec,
                              enum ledger_script *s, struct lst_buf *why);
lst_err ledger_apply_sent(struct ledger_core *c, const struct ledger_rec *rec,
                          enum ledger_script *s, struct lst_buf *why);
lst_err ledger_apply_inbound(struct ledger_core *c, const struct ledger_rec *rec,
                             enum ledger_script *s, struct lst_buf *why);
lst_err ledger_apply_employee(struct ledger_core *c, const struct ledger_rec *rec,
                              enum ledger_script *s, struct lst_buf *why);
/* lst.annotations and lst.views (apply_annotation.c). */
lst_err ledger_apply_annotation(struct ledger_core *c, const struct ledger_rec *rec,
                                enum ledger_script *s, struct lst_buf *why);
lst_err ledger_apply_view(struct ledger_core *c, const struct ledger_rec *rec,
                          enum ledger_script *s, struct lst_buf *why);
lst_err ledger_apply_audit(struct ledger_core *c, const struct ledger_rec *rec,
                           enum ledger_script *s, struct lst_buf *why);
/* Content fields shared by lst.message and lst.inbound. */
lst_err ledger_content_kv(struct ledger_args *a, const struct lst_content *content, int64_t *count);

/* Writes rec to <topic>.dlq with the error and reason, waiting for the broker.
 */
lst_err ledger_dlq(struct ledger_core *c, const struct ledger_rec *rec, lst_err err,
                   const char *reason);

/* Deletes every projection key (SCAN + UNLINK in batches), watermarks included,
 * so the next start replays Kafka from the beginning. *deleted receives the
 * number of keys. */
lst_err ledger_drop_projections(struct lst_redis *redis, int64_t *deleted);

/* ---- the service ---- */

struct ledger {
    struct ledger_config cfg;
    struct lst_service *svc;
    struct ledger_core core;
    bool core_ready;
    struct lst_kafka_reader *reader;
    unsigned long redis_conns; /* Redis connections at the last assignment */
    bool reassign;             /* reassign from the watermarks before reading on */
    int64_t backoff_until;     /* mono ms: no reading before (after a Redis failure) */
    int64_t next_ping;         /* mono ms: when idle, the next check that Redis is the same */
    struct lst_gauge *m_assigned;
    struct ledger_retention *retention; /* retention.c */
    struct ledger_refill *refill;       /* refill.c */
    int64_t next_refill_sync;           /* mono ms */
};

/* ---- refill markers (refill.c): "Redis lost progress, the projections are behind" ---- */

struct ledger_refill;
lst_err ledger_refill_create(struct lst_metrics *metrics, struct ledger_refill **out);
void ledger_refill_destroy(struct ledger_refill *r);
/* Before a forced (re)assignment: remembers the server's run_id and the connection. */
lst_err ledger_refill_begin(struct ledger_refill *r, struct lst_redis *redis);
/* One partition at its (re)assignment, after its watermark was read: sets its marker when the
 * watermark is behind what this process applied (or Redis holds no watermark at all and the
 * partition has records), cuts a marker beyond the partition's end, removes a reached one. */
lst_err ledger_refill_check(struct ledger *ctx, enum ledger_topic t, int32_t p);
/* After every partition was checked: records in Redis that this server's watermarks were
 * checked (field "run"). LST_ERR_STATE when the connection changed meanwhile. */
lst_err ledger_refill_confirm(struct ledger_refill *r, struct lst_redis *redis);
/* A record applied; true when it is beyond anything this process applied before (only such
 * offsets are stored for the group's commits, so they never go back during a refill). */
bool ledger_refill_applied(struct ledger_refill *r, enum ledger_topic t, int32_t p, int64_t offset);
/* Removes the markers this process's position has reached (after a flush). */
void ledger_refill_reached(struct ledger *ctx);
/* Adopts markers other ledgers wrote (or left behind), then as ledger_refill_reached. */
void ledger_refill_sync(struct ledger *ctx);
/* Markers known to this process. */
bool ledger_refill_active(const struct ledger_refill *r);

/* ---- retention (retention.c): old messages purged from the projections ---- */

struct ledger_retention;
lst_err ledger_retention_create(struct lst_metrics *metrics, struct ledger_retention **out);
void ledger_retention_destroy(struct ledger_retention *r);
/* Purges up to batch items of the global timeline at or before cutoff (ms), then up to batch
 * held receipts (h:) held since then; *purged, *oldest (the oldest item left, -1: none),
 * *held (may be NULL). */
lst_err ledger_retention_run(struct ledger_retention *r, struct lst_redis *redis, int64_t cutoff,
                             int64_t batch, int64_t *purged, int64_t *oldest, int64_t *held);
/* One bounded run when due (LST_LEDGER_RETENTION_*); called from the consume loop. */
void ledger_retention_tick(struct ledger *ctx);

/* Creates the reader for the five topics (partitions assigned at the
 * watermarks). */
lst_err ledger_consume_init(struct ledger *ctx);
/* One step of the loop: (re)assign when needed, read a batch, apply it. */
lst_err ledger_consume_step(void *ud);

/* Runs the service with its loaded configuration until SIGTERM; rebuild first
 * drops every projection (then the reading starts at the beginning of every
 * topic). Returns the exit code. */
int ledger_run(struct ledger *ctx, bool rebuild);

#endif
