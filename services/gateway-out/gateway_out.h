/* gateway-out: sends the requests of lst.outbound to the Threema Gateway, end-to-end
 * encrypted, and publishes one outcome per request to lst.sent (docs/gateway-out.md).
 *
 * Files, one concern each:
 *   main.c        configuration sections, run
 *   config.c      the service's configuration table
 *   gateway_out.c the context: create, run loop step, ordered shutdown
 *   consumer.c    the poll thread: dispatch records to lanes, revoke, 402 pause/resume
 *   offsets.c     per-partition completion watermarks (which offset may be stored)
 *   lanes.c       W sender lanes: one thread, one Gateway client, one Redis connection each
 *   loop.c        the event loop (LST_GATEWAY_OUT_EVENT_LOOP): all lanes' common case on one
 *                 thread and one curl multi handle, the rest on the lanes' threads
 *   send.c        one request: known outcome check, resolve, encrypt, send, retry
 *   bulk.c        send_e2e_bulk calls shared by the lanes (LST_GATEWAY_OUT_BULK)
 *   resolve.c     recipient resolution and the caches (Redis shared + a small local layer)
 *   files.c       file and image messages: blob store, encrypt, upload once per message
 *   outcome.c     outcome records in Redis and publishing to lst.sent / lst.outbound.dlq
 *   credits.c     the credits poller and the 402 pause state
 *
 * Threads: the main thread polls Kafka (consumer.c) and stores offsets; W lane threads send;
 * the credits thread polls /credits; the producer's thread calls delivery callbacks, which only
 * hand the job back to the main thread through the completion queue. */
#ifndef LST_SVC_GATEWAY_OUT_H
#define LST_SVC_GATEWAY_OUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lst/blobstore.h"
#include "lst/config.h"
#include "lst/gateway.h"
#include "lst/gateway_config.h"
#include "lst/gateway_rate.h"
#include "lst/kafka.h"
#include "lst/metrics.h"
#include "lst/records.h"
#include "lst/redis.h"
#include "lst/service.h"
#include "lst/threema.h"

#define GO_MAX_LANES 256

struct gateway_out;
struct go_bulk;      /* bulk.c: the open send_e2e_bulk call */
struct go_bulk_slot; /* bulk.c: one lane's message in a call */
struct go_loop;      /* loop.c: an event loop */
struct go_loop_lane; /* loop.c: a lane's state in its loop */

/* ---- configuration (config.c) ---- */

struct gateway_out_config {
    struct lst_common_config common;
    struct lst_gateway_settings gw;
    int64_t http_port;           /* LST_HTTP_PORT */
    char *group_id;              /* LST_GATEWAY_OUT_GROUP */
    int64_t concurrency;         /* LST_GATEWAY_OUT_CONCURRENCY: lanes W */
    int64_t max_inflight;        /* LST_GATEWAY_OUT_MAX_INFLIGHT */
    int64_t linger_ms;           /* LST_GATEWAY_OUT_LINGER_MS: producer linger.ms */
    bool event_loop;             /* LST_GATEWAY_OUT_EVENT_LOOP: loop.c drives the lanes */
    int64_t loops;               /* LST_GATEWAY_OUT_LOOPS: event loop threads, 0 = automatic */
    bool bulk;                   /* LST_GATEWAY_OUT_BULK: send_e2e_bulk */
    int64_t bulk_max;            /* LST_GATEWAY_OUT_BULK_MAX */
    int64_t bulk_linger_ms;      /* LST_GATEWAY_OUT_BULK_LINGER_MS */
    int64_t retry_deadline_ms;   /* LST_GATEWAY_OUT_RETRY_DEADLINE_MS */
    int64_t backoff_min_ms;      /* LST_GATEWAY_OUT_BACKOFF_MIN_MS */
    int64_t backoff_max_ms;      /* LST_GATEWAY_OUT_BACKOFF_MAX_MS */
    double rate_limit;           /* LST_GATEWAY_OUT_RATE_LIMIT, requests/s, 0 = none */
    double rate_min;             /* LST_GATEWAY_OUT_RATE_MIN */
    int64_t cache_ttl_ms;        /* LST_GATEWAY_OUT_CACHE_TTL_MS */
    int64_t negative_ttl_ms;     /* LST_GATEWAY_OUT_NEGATIVE_TTL_MS */
    int64_t local_ttl_ms;        /* LST_GATEWAY_OUT_LOCAL_CACHE_TTL_MS */
    int64_t outcome_ttl_ms;      /* LST_GATEWAY_OUT_OUTCOME_TTL_MS */
    int64_t credits_interval_ms; /* LST_GATEWAY_OUT_CREDITS_INTERVAL_MS */
    int64_t paused_poll_ms;      /* LST_GATEWAY_OUT_PAUSED_POLL_MS */
    int64_t credits_warn;        /* LST_GATEWAY_OUT_CREDITS_WARN */
    int64_t revoke_timeout_ms;   /* LST_GATEWAY_OUT_REVOKE_TIMEOUT_MS */
    char *key_prefix;            /* LST_GATEWAY_OUT_KEY_PREFIX */
    char *blob_dir;              /* LST_BLOB_DIR */
};

extern const struct lst_config_program gateway_out_program;

/* The service's own configuration section (the common and Gateway ones come from the
 * library). */
struct lst_config_section gateway_out_config_section(struct gateway_out_config *cfg);

/* ---- metrics (gateway_out.c) ---- */

struct go_metrics {
    struct lst_histogram *send_seconds; /* one send_e2e call */
    struct lst_gauge *inflight;         /* records dispatched and not yet done */
    struct lst_counter *retries;        /* transient failures that are retried */
    struct lst_counter *retry_after;    /* retries that waited for the Gateway's Retry-After */
    struct lst_counter *republished;    /* known outcomes published again */
    struct lst_counter *possible_dup;   /* outcomes flagged possible_duplicate */
    struct lst_counter *dlq;
    struct lst_counter *key_changed; /* alert: a known ID's public key changed */
    struct lst_gauge *paused;        /* alert: 1 while paused for credits */
    struct lst_gauge *credits;       /* last /credits answer */
    struct lst_gauge *credits_low;   /* 1 while below LST_GATEWAY_OUT_CREDITS_WARN */
    struct lst_gauge *rate_limit;    /* effective shared requests/s */
    struct lst_counter *rate_waits;  /* times a lane waited for the rate limit */
    struct lst_counter *abandoned;   /* jobs given up on revoke/shutdown (redelivered) */
    /* The hot series, looked up once (the registry lookup takes a lock and compares strings). */
    struct lst_counter *send_ok;      /* sends_total{outcome="ok",code="200"} */
    struct lst_counter *outcome_ok;   /* outcomes_total{outcome="accepted",code="ok"} */
    struct lst_counter *pubkey_local; /* cache_total{cache="pubkey",result="hit_local"} */
    struct lst_counter *lookup_local; /* cache_total{cache="lookup",result="hit_local"} */
    /* event loop: requests it finished itself, and those it handed to a lane's thread */
    struct lst_counter *loop_jobs, *loop_handed;
};

/* Counts one Gateway send call: lst_gateway_out_sends_total{outcome,code}. */
void go_metrics_send(struct lst_metrics *m, enum lst_gateway_outcome oc, long status);
/* Counts one final outcome: lst_gateway_out_outcomes_total{outcome,code}. */
void go_metrics_outcome(struct lst_metrics *m, bool accepted, const char *code);
/* lst_gateway_out_cache_total{cache,result}. */
void go_metrics_cache(struct lst_metrics *m, const char *cache, const char *result);

/* ---- jobs: one consumed record on its way ---- */

enum go_job_state {
    GO_JOB_QUEUED = 0,
    GO_JOB_DONE,      /* its outcome (or DLQ record) was acknowledged by Kafka */
    GO_JOB_ABANDONED, /* given up without an outcome (revoke, shutdown): redelivered later */
};

struct go_job {
    struct go_job *next; /* lane queue / completion queue link */
    struct gateway_out *ctx;
    int32_t partition;
    int64_t offset;
    uint64_t gen; /* the partition's assignment generation at dispatch */
    char *key;    /* the record key (employee ID), owned, may be NULL */
    size_t keylen;
    char *value; /* owned, may be NULL (tombstone) */
    size_t len;
    atomic_bool cancelled;   /* set on revoke: abandon unless already sending */
    enum go_job_state state; /* set by whoever completes the job */
    /* What gets published (lst.sent or DLQ record) and where; owned. */
    struct lst_buf out;
    const char *out_topic; /* ctx->topic_sent or ctx->topic_dlq */
    int publish_attempts;
};

void go_job_free(struct go_job *j);

/* ---- offsets (offsets.c) ---- */

/* Per partition: the offsets dispatched in order and whether each is finished; the offset that
 * may be stored is the one after the longest finished prefix. Used by the poll thread only. */
struct go_offsets;

lst_err go_offsets_create(struct go_offsets **out);
void go_offsets_destroy(struct go_offsets *o);
/* Registers job j (its partition and offset; offsets of one partition ascend). */
lst_err go_offsets_add(struct go_offsets *o, struct go_job *j);
/* Marks j finished (state DONE or ABANDONED); ignores jobs of an older generation. Returns
 * the job's entry pointer to NULL; the job itself is not freed. */
void go_offsets_finish(struct go_offsets *o, const struct go_job *j);
/* The next offset to store for partition p (one past the finished prefix), or -1 when nothing
 * new may be stored since the last call. Entries of the prefix are dropped. An ABANDONED
 * entry stops the prefix for good (until go_offsets_reset). */
int64_t go_offsets_advance(struct go_offsets *o, int32_t p);
/* Entries of partition p dispatched and not finished (running or queued). */
size_t go_offsets_pending(const struct go_offsets *o, int32_t p);
/* Calls fn on every unfinished job of partition p. */
void go_offsets_each_pending(struct go_offsets *o, int32_t p, void (*fn)(struct go_job *, void *),
                             void *ud);
/* Forgets partition p and starts a new generation for it (after revoke). */
void go_offsets_reset(struct go_offsets *o, int32_t p);
uint64_t go_offsets_gen(const struct go_offsets *o, int32_t p);
/* Highest partition number seen + 1. */
int32_t go_offsets_npart(const struct go_offsets *o);

/* ---- credits and the 402 pause (credits.c) ---- */

/* Starts the credits thread (its own client). */
lst_err go_credits_start(struct gateway_out *ctx);
void go_credits_stop(struct gateway_out *ctx);
/* A 402 was seen: enter the paused state (idempotent). */
void go_credits_on_402(struct gateway_out *ctx);
/* Waits while paused; false when a stop was requested or the job was cancelled. */
bool go_credits_wait(struct gateway_out *ctx, const atomic_bool *abort);
/* True while paused for credits (never waits). */
bool go_credits_paused(struct gateway_out *ctx);

/* ---- caches and resolution (resolve.c) ---- */

struct go_local_cache; /* in-process layer in front of Redis */

lst_err go_local_cache_create(size_t capacity, struct go_local_cache **out);
void go_local_cache_destroy(struct go_local_cache *c);
/* Copies the value of key (vlen bytes, at most 32) into val when present and not expired. */
bool go_local_cache_get(struct go_local_cache *c, const char *key, void *val, size_t vlen);
/* Stores a copy for ttl_ms (0: nothing is stored). Beyond the capacity the cache is emptied. */
void go_local_cache_put(struct go_local_cache *c, const char *key, const void *val, size_t vlen,
                        int64_t ttl_ms);

/* A lane's tools, passed to resolve/send/files (one per lane thread). */
struct go_lane {
    struct gateway_out *ctx;
    unsigned index;
    pthread_t thread;
    bool started;
    struct lst_gateway *gw;
    struct lst_redis *redis;
    /* queue */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct go_job *head, *tail;
    size_t queued;
    bool loop_waiting;    /* event loop mode: the loop found the queue empty, wake it on dispatch */
    struct go_loop *loop; /* event loop mode: the loop that drives this lane */
    /* scratch */
    struct lst_buf a, b;
    int64_t gateway_calls; /* of the current job */
    /* The lane's finished job whose outcome is not yet in Redis (send.c): its SET goes out in
     * one pipeline with the begin of the lane's next job (one Redis round trip per request),
     * or alone when the lane has nothing queued. Published only after the SET. */
    struct go_job *pending;
    struct lst_buf pkey, pval; /* its Redis key and "O:<lst.sent record>" */
    bool pend_accepted, pend_dup;
    char pend_code[48];
    struct lst_redis_pipe *pipe;
    /* bulk.c: this lane's slots when it leads a send_e2e_bulk call (bulk_max each) */
    struct go_bulk_slot **bulk_slots;
    struct lst_gateway_e2e *bulk_msgs;
    struct lst_gateway_bulk_item *bulk_items;
    struct lst_buf bulk_rid;
};

/* What a Gateway step gave: OK, or a failure to retry, pause, stop or give up on. */
struct go_step {
    enum lst_gateway_outcome outcome;
    long http_status;
    bool in_doubt;
    int64_t retry_after_ms; /* the Gateway's Retry-After, 0 when none */
    char code[48];          /* failure code (slug) for PERMANENT */
    char reason[256];       /* failure reason */
};

/* The recipient's Threema ID from o or the in-process lookup layer only (never blocks);
 * false when go_resolve_id has to ask Redis or the Gateway. */
bool go_resolve_id_local(struct gateway_out *ctx, const struct lst_outbound *o, char id[9]);
/* The public key of id from the in-process layer only (never blocks); false on a miss. */
bool go_resolve_pubkey_local(struct gateway_out *ctx, const char *id,
                             uint8_t pk[LST_THREEMA_KEY_SIZE]);
/* The recipient's Threema ID (8 chars + NUL) for the address of o. */
void go_resolve_id(struct go_lane *l, const struct lst_outbound *o, char id[9], struct go_step *st);
/* The public key of id (checked against the first key ever seen for it). */
void go_resolve_pubkey(struct go_lane *l, const char *id, uint8_t pk[LST_THREEMA_KEY_SIZE],
                       struct go_step *st);
/* Capabilities mask of id. */
void go_resolve_caps(struct go_lane *l, const char *id, uint32_t *mask, struct go_step *st);

/* One Gateway call's result into st (OK or the failure with code/reason). */
void go_step_from_result(struct go_step *st, const struct lst_gateway_result *res,
                         const char *what);
void go_step_fail(struct go_step *st, enum lst_gateway_outcome oc, const char *code,
                  const char *fmt, ...) LST_PRINTF(4, 5);

/* Waits for the rate limit, then counts a Gateway call of the lane's current job. False when
 * the job must be abandoned (stop / cancel). */
bool go_lane_gateway_call(struct go_lane *l, const atomic_bool *cancel);

/* ---- files (files.c) ---- */

/* Builds the file message for content c of message message_id (uploading the blob unless
 * already uploaded for this message) into m. */
void go_files_prepare(struct go_lane *l, const char *message_id, const struct lst_content *c,
                      const atomic_bool *cancel, struct lst_threema_msg *m, struct go_step *st);

/* ---- send_e2e_bulk (bulk.c) ---- */

/* Sends msg as one item of a send_e2e_bulk call shared with the messages of other lanes that
 * are ready at the same moment: the first lane to arrive leads the call (it waits up to
 * LST_GATEWAY_OUT_BULK_LINGER_MS for others, at most LST_GATEWAY_OUT_BULK_MAX items) with its
 * own client; the others wait for its answer. A lane has one item in flight at most, so one
 * employee never has two requests in a call. Fills *res with the whole call's result and, when
 * res->outcome is OK, *item with the item's. Returns false when the whole call was refused as
 * PERMANENT (local rejection, 400, 413 for the batch): the caller sends the message alone, so
 * that one bad item cannot fail the others. Blocks at most linger + the Gateway timeout. */
bool go_bulk_send(struct go_lane *l, const struct lst_gateway_e2e *msg, const char *request_id,
                  struct lst_gateway_bulk_item *item, struct lst_gateway_result *res);
/* X-Request-Id of a bulk call into out: the request IDs id(ud, 0 .. n-1) of its items,
 * comma-separated, as many as fit in LST_GATEWAY_REQUEST_ID_MAX (the simulator's journal then
 * ties the call to its requests). */
void go_bulk_request_ids(struct lst_buf *out, size_t n, const char *(*id)(void *ud, size_t i),
                         void *ud);
/* Turns the answer of one item of an answered bulk call (res OK) into the result a send_e2e
 * would have given: msgid for a message ID, else the item's errorCode as the status. */
void go_bulk_item_result(const struct lst_gateway_bulk_item *item, struct lst_gateway_result *res,
                         char msgid[LST_GATEWAY_MSGID_HEX + 1]);
lst_err go_bulk_create(struct gateway_out *ctx);
void go_bulk_destroy(struct gateway_out *ctx);
/* The lane's leader scratch (bulk_max slots); freed by go_bulk_lane_cleanup. */
lst_err go_bulk_lane_init(struct go_lane *l);
void go_bulk_lane_cleanup(struct go_lane *l);

/* ---- outcomes (outcome.c) ---- */

enum go_begin {
    GO_BEGIN_NEW = 0,  /* never seen: send */
    GO_BEGIN_IN_DOUBT, /* an earlier delivery started sending and left no outcome */
    GO_BEGIN_KNOWN,    /* outcome known: *known holds the lst.sent record to publish again */
};

lst_err go_outcome_scripts_create(struct gateway_out *ctx);
void go_outcome_scripts_destroy(struct gateway_out *ctx);
/* Looks up the request and marks it as being sent (one script). When the lane has a pending
 * outcome (l->pending), its SET goes first in the same pipeline: on LST_OK it is recorded too. */
lst_err go_outcome_begin(struct go_lane *l, const char *request_id, enum go_begin *state,
                         struct lst_buf *known);
/* For the event loop's batches (pipeline p): the lane's pending SET; the begin of request_id
 * (uses l->a); and the begin script's reply into *state / *known. */
lst_err go_outcome_queue_pending(struct go_lane *l, struct lst_redis_pipe *p);
lst_err go_outcome_queue_begin(struct go_lane *l, const char *request_id, struct lst_redis_pipe *p);
lst_err go_outcome_take_begin(const redisReply *r, enum go_begin *state, struct lst_buf *known);
/* Fills l->pkey / l->pval with the Redis key and value of the final outcome (the encoded
 * lst.sent record) of request_id. */
lst_err go_outcome_prepare(struct go_lane *l, const char *request_id, const struct lst_buf *sent);
/* Records the prepared outcome (l->pkey, l->pval) alone. Idempotent. */
lst_err go_outcome_record(struct go_lane *l);
/* Publishes j->out to j->out_topic asynchronously; the job completes when Kafka acknowledged
 * it (or comes back to the poll thread for another try). Retries queue-full errors; false
 * when the producer is dead or a stop is requested. */
bool go_publish(struct go_job *j);
/* Fills j->out with the DLQ record of an undecodable job. */
lst_err go_outcome_dlq(struct go_job *j, lst_err err, const char *reason);

/* ---- one request (send.c), shared by the lane threads and the event loop (loop.c) ---- */

/* Where a request stands: accepted with its message ID, or the failure; and whether it may
 * have been delivered twice. */
struct go_result {
    bool accepted;
    char msgid[LST_GATEWAY_MSGID_HEX + 1];
    char threema_id[9];
    struct go_step st; /* the failure when not accepted */
    bool possible_duplicate;
};

/* The retry state of a request: its first attempt and the current backoff ceiling. */
struct go_attempts {
    int64_t first; /* mono ms */
    int64_t ceiling;
};

/* What an attempt's step means for the request. */
enum go_verdict {
    GO_VERDICT_DONE,    /* final: rs holds the outcome to record and publish */
    GO_VERDICT_RETRY,   /* transient: try again after the delay */
    GO_VERDICT_PAUSE,   /* 402: the pause is on; try again when credits are back */
    GO_VERDICT_ABANDON, /* stop, cancel or 401: no outcome, redelivered later */
};

/* True when the job must be given up now (revoke, shutdown, fatal error). */
bool go_abandon_now(const struct go_job *j);
void go_attempts_init(const struct gateway_out *ctx, struct go_attempts *at);
/* False when the request's own deadline has passed; rs then holds that final failure. */
bool go_attempt_in_time(const struct lst_outbound *o, struct go_result *rs);
/* The message of o for id (building a file message may upload and block), encrypted for pk. */
void go_seal_for(struct go_lane *l, struct go_job *j, const struct lst_outbound *o, const char *id,
                 const uint8_t pk[LST_THREEMA_KEY_SIZE], char *nonce_hex, struct lst_buf *box_hex,
                 struct go_step *st);
/* Counts one send_e2e call (metrics) and turns its result into st. */
void go_send_result(struct gateway_out *ctx, const struct lst_gateway_result *res,
                    int64_t elapsed_ms, struct go_step *st);
/* Classifies an attempt's step (counters, 429 lowers the shared rate, 402 pauses, 401 stops
 * the worker) and, for RETRY, the delay before the next attempt (backoff with full jitter,
 * Retry-After as a floor; past the retry deadline the request fails for good: DONE). */
enum go_verdict go_attempt_verdict(struct gateway_out *ctx, const struct lst_outbound *o,
                                   struct go_result *rs, struct go_attempts *at,
                                   const struct go_step *st, int64_t *delay_ms);
/* Encodes the outcome into j->out and makes j the lane's pending job (l->pending) whose SET
 * still has to reach Redis. False (the job abandoned) when it cannot be encoded. */
bool go_finish_prepare(struct go_lane *l, struct go_job *j, const struct lst_outbound *o,
                       struct go_result *rs);
/* The pending job's outcome is in Redis: count it and publish it. */
void go_publish_pending(struct go_lane *l);
/* The rest of a request whose begin is done (new or in doubt), blocking: attempts until an
 * outcome, which is recorded and published, or abandonment. */
void go_send_begun(struct go_lane *l, struct go_job *j, const struct lst_outbound *o,
                   struct go_result *rs, struct go_attempts *at);

/* ---- lanes (lanes.c) ---- */

lst_err go_lanes_start(struct gateway_out *ctx);
/* Stops the lane threads (queued jobs are abandoned) and frees the lanes. */
void go_lanes_stop(struct gateway_out *ctx);
/* Hands j to the lane of its key. */
void go_lanes_dispatch(struct gateway_out *ctx, struct go_job *j);
/* The whole processing of one job in lane l (send.c); ends with the job published
 * (completion later through the delivery callback) or completed as ABANDONED. */
void go_send_job(struct go_lane *l, struct go_job *j);
/* Records the outcome of the lane's pending job (if any) in Redis and publishes it. */
void go_lane_flush(struct go_lane *l);
/* True when jobs wait in the lane's queue. */
bool go_lane_has_queued(struct go_lane *l);
/* Puts j on the completion queue for the poll thread. Any thread. */
void go_complete(struct gateway_out *ctx, struct go_job *j, enum go_job_state state);

/* ---- the event loop (loop.c, LST_GATEWAY_OUT_EVENT_LOOP) ---- */

/* Starts the loop thread and, for the jobs it hands over, the lanes' threads (after the lanes
 * are set up by go_lanes_start). */
lst_err go_loop_start(struct gateway_out *ctx);
/* Waits for the loop to end after lanes_stop: sends finish, the last outcomes are recorded. */
void go_loop_join(struct gateway_out *ctx);
void go_loop_destroy(struct gateway_out *ctx);
/* A job was queued on lane l, whose loop waits for it. Any thread. */
void go_loop_wake(struct go_lane *l);

/* ---- consumer (consumer.c) ---- */

lst_err go_consumer_create(struct gateway_out *ctx);
/* One iteration of the poll thread: completions, pause state, one record. */
lst_err go_consumer_step(struct gateway_out *ctx);
/* Stops dispatching, closes the consumer (revoke: in-flight finished or abandoned, bounded,
 * offsets committed) and destroys it. */
void go_consumer_close(struct gateway_out *ctx);

/* ---- the context (gateway_out.c) ---- */

struct gateway_out {
    struct gateway_out_config cfg;
    struct lst_service *svc;
    struct go_metrics m;
    char topic_in[256], topic_sent[256], topic_dlq[256];
    uint8_t sk[LST_THREEMA_KEY_SIZE];
    struct lst_threema_keycache *keys;
    struct go_local_cache *pk_cache, *cap_cache, *lk_cache;
    struct lst_blobstore *blobs;
    struct lst_redis_script *s_pk;
    struct lst_gateway_rate *rl; /* shared with every worker and gateway-in (lst/gateway_rate.h) */
    struct go_bulk *bulk;        /* NULL unless LST_GATEWAY_OUT_BULK */
    /* LST_GATEWAY_OUT_EVENT_LOOP: the loops and the lane table they share; NULL otherwise */
    struct go_loop **loops;
    unsigned nloops;
    struct go_loop_lane *loop_lanes;
    /* consumer side (poll thread) */
    struct lst_kafka_consumer *consumer;
    struct go_offsets *offsets;
    int64_t inflight;
    /* completion queue: delivery callbacks and lanes -> poll thread */
    pthread_mutex_t done_lock;
    pthread_cond_t done_cond;
    struct go_job *done_head, *done_tail;
    /* lanes */
    struct go_lane *lanes;
    unsigned nlanes;
    atomic_bool lanes_stop;
    /* credits / pause */
    pthread_t credits_thread;
    bool credits_started;
    pthread_mutex_t pause_lock;
    pthread_cond_t pause_cond;
    bool pause_wanted;    /* a 402 was seen and credits did not come back yet */
    atomic_bool fatal;    /* 401 or similar: stop with exit code 1 */
    atomic_bool stopping; /* shutdown in progress: lanes abandon waiting work */
};

/* Creates everything and runs until SIGTERM; returns the exit code. */
int gateway_out_run(struct gateway_out *ctx);

/* A fatal condition (401, bad configuration discovered at run time): logs, stops. */
void go_fatal(struct gateway_out *ctx, const char *why);

#endif
