/* gateway-in: the Threema Gateway's callback endpoint. Every callback is verified (MAC first),
 * deduplicated, decrypted, decoded, its blobs copied into the company blob store, and published
 * to lst.inbound; the Gateway gets 200 only once Kafka has acknowledged the record.
 *
 * Files, one concern each:
 *   main.c       command line, config sections, run
 *   config.c     the service's config table
 *   gateway_in.c the context: creates and destroys every resource, runs the service
 *   metrics.c    the service's metrics
 *   pool.c       a fixed pool of connections (Redis, Gateway clients) shared by handler threads
 *   ratelimit.c  every Gateway call under the account's rate, shared with gateway-out
 *   callback.c   the route: parse -> verify -> dedupe -> decrypt/decode -> act -> respond
 *   pubkeys.c    the sender's public key: process cache, Redis cache, then the Gateway
 *   blobs.c      file/image blobs: download, decrypt, check, store in the blob store
 *   publish.c    lst.inbound and lst.inbound.dlq records, produced with a waited-for ack
 *   dedupe.c     the (from, messageId) marker in Redis: pending -> done
 *   rgate.c      the circuit breaker in front of Redis: a stalled Redis costs one timeout
 *
 *   async.c      event mode: the async route, the stage thread (pipelined dedupe, produce
 *                without waiting), the delivery reports, the worker pool for blocking cases
 *
 * Threads: by default (LST_HTTP_EVENT_THREADS > 0, event mode) a few event threads verify and
 * parse, the stage thread claims and produces, the producer's poll thread answers, workers take
 * the blocking cases (see async.c). With LST_HTTP_EVENT_THREADS=0 libmicrohttpd runs one
 * handler thread per connection (callback.c's blocking handler). Everything in struct
 * gateway_in is read-only after start-up except what is behind its own lock (pools, the
 * process key cache, the keycache) or atomic (metrics). */
#ifndef LST_SVC_GATEWAY_IN_H
#define LST_SVC_GATEWAY_IN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lst/blobstore.h"
#include "lst/config.h"
#include "lst/gateway.h"
#include "lst/gateway_config.h"
#include "lst/gateway_rate.h"
#include "lst/records.h"
#include "lst/service.h"
#include "lst/threema.h"

/* The largest valid callback: a box of LST_THREEMA_IN_BOX_MAX bytes is twice that in hex,
 * plus the other fields (IDs, nonce, MAC, date, a URL-encoded nickname): 136 KiB. */
#define GWIN_DEFAULT_MAX_BODY "139264"

/* Margin on top of the producer's message timeout for the ack wait: librdkafka reports a
 * timed-out record a little after message.timeout.ms (its timeout scan runs about once a
 * second). */
#define GWIN_ACK_MARGIN_MS 2000
/* librdkafka's timer that times out records of partitions without a leader (rdkafka.c, topic
 * scan): LST_CALLBACK_ACK_TIMEOUT_MS less this is the producer's message timeout. */
#define GWIN_KAFKA_SCAN_MS 1000

struct gateway_in_config {
    struct lst_common_config common;
    struct lst_gateway_settings gw;
    int64_t http_port;         /* LST_HTTP_PORT */
    char *callback_path;       /* LST_CALLBACK_PATH */
    int64_t max_body;          /* LST_CALLBACK_MAX_BODY */
    int64_t max_connections;   /* LST_HTTP_MAX_CONNECTIONS */
    int64_t ack_timeout_ms;    /* LST_CALLBACK_ACK_TIMEOUT_MS */
    char *blob_dir;            /* LST_BLOB_DIR */
    int64_t file_max;          /* LST_INBOUND_FILE_MAX */
    int64_t pubkey_ttl_s;      /* LST_PUBKEY_CACHE_TTL_S */
    int64_t dedupe_pending_ms; /* LST_DEDUPE_PENDING_TTL_MS */
    int64_t dedupe_done_s;     /* LST_DEDUPE_DONE_TTL_S */
    char *redis_prefix;        /* LST_REDIS_KEY_PREFIX */
    int64_t redis_pool;        /* LST_REDIS_POOL */
    int64_t gateway_pool;      /* LST_GATEWAY_POOL */
    double rate_limit;         /* LST_GATEWAY_OUT_RATE_LIMIT (shared with gateway-out) */
    double rate_min;           /* LST_GATEWAY_OUT_RATE_MIN */
    char *rate_prefix;         /* LST_GATEWAY_OUT_KEY_PREFIX: the limiter is under <it>rl: */
    int64_t rate_wait_ms;      /* LST_GATEWAY_RATE_WAIT_MS */
    int64_t keycache_size;     /* LST_KEYCACHE_SIZE */
    int64_t event_threads;     /* LST_HTTP_EVENT_THREADS */
};

/* Outcome of one callback; decides the HTTP status and the metric label. */
enum gwin_result {
    GWIN_ACCEPTED = 0,      /* 200: lst.inbound acknowledged */
    GWIN_DUPLICATE,         /* 200: already in Kafka, nothing produced */
    GWIN_DUPLICATE_PENDING, /* 503: the same event is being processed right now */
    GWIN_BAD_MAC,           /* 401 */
    GWIN_MALFORMED,         /* 400: the form is too broken to check its MAC */
    GWIN_DLQ,               /* 200: authentic but never processable, lst.inbound.dlq acked */
    GWIN_UNAVAILABLE,       /* 503: Kafka, blob store, Gateway: try again later */
    GWIN_RESULT__COUNT
};

const char *gwin_result_name(enum gwin_result r);

#define GWIN_TOKEN_LEN 24 /* "pending:" + 16 hex, see dedupe.c */

#define GWIN_TYPES 7 /* lst_threema_msg_kind values, text .. unsupported */

struct gwin_metrics {
    struct lst_counter *callbacks[GWIN_RESULT__COUNT];
    struct lst_counter *messages[GWIN_TYPES];
    struct lst_histogram *latency;
    struct lst_counter *blob_bytes;
    struct lst_counter *blobs_stored;
    struct lst_counter *blobs_failed;
    struct lst_counter *pubkey_local, *pubkey_redis, *pubkey_gateway;
    struct lst_counter *redis_errors;
    struct lst_counter *redis_skipped;
    struct lst_counter *possible_duplicates;
    struct lst_gauge *rate_limit;   /* the effective shared Gateway rate */
    struct lst_counter *rate_waits; /* Gateway calls that waited for the shared rate */
    struct lst_counter *rate_busy;  /* callbacks answered 503: no token within the wait */
};

/* rgate.c: how long callbacks skip Redis after a connection failure or timeout */
#define GWIN_RGATE_OPEN_MS 1000

struct gwin_rgate {
    _Atomic int64_t open_until_ms; /* 0: closed (use Redis); else monotonic ms */
    atomic_bool probing;           /* one callback tries Redis once the time is up */
};

struct gwin_pool;
struct gwin_pubkeys;
struct gwin_async;

/* The one context of the service: it owns every resource. */
struct gateway_in {
    struct gateway_in_config cfg;
    struct lst_service *svc;
    struct lst_blobstore *blobs;
    struct lst_threema_keycache *keys;
    struct gwin_pool *redis;   /* struct lst_redis * items */
    struct gwin_pool *clients; /* struct lst_gateway * items */
    struct gwin_pubkeys *pubkeys;
    struct lst_gateway_rate *rate; /* gateway-out's shared Gateway rate (ratelimit.c) */
    struct lst_redis_script *release_script;
    struct gwin_async *async; /* event mode only (LST_HTTP_EVENT_THREADS > 0) */
    struct gwin_rgate rgate;  /* in front of the Redis pool and event mode's connection */
    char topic_inbound[LST_TOPIC_MAX + 1];
    char topic_dlq[LST_TOPIC_MAX + 1];
    struct gwin_metrics m;
};

extern const struct lst_config_program gateway_in_program;

/* The service's own configuration section (common and Gateway sections come from the
 * library). */
struct lst_config_section gateway_in_config_section(struct gateway_in_config *cfg);

/* Runs the service with its loaded configuration until SIGTERM; returns the exit code.
 * It is gateway_in_start, lst_service_run, gateway_in_stop. */
int gateway_in_run(struct gateway_in *ctx);

/* Builds every resource from the loaded configuration (ctx->cfg) and starts the service
 * frame: the callback route is live on return (its port: ctx->svc->http). Either way
 * gateway_in_stop tears down. Split from gateway_in_run so tests drive the real service
 * in-process (tests/unit/test_gateway_in_faults.c). */
lst_err gateway_in_start(struct gateway_in *ctx);

/* Stops the HTTP server first (callbacks in flight are answered), then the event-mode stage,
 * the frame (producer flush) and the parts. Safe on a half-started context. */
void gateway_in_stop(struct gateway_in *ctx);

/* ---- metrics.c ---- */
void gwin_metrics_init(struct gwin_metrics *m, struct lst_metrics *reg);

/* ---- rgate.c ---- */
/* A pooled Redis connection, or NULL while the gate is open (go on without Redis). probe:
 * this call decides whether the gate closes. Give it back with the command's result. */
struct lst_redis *gwin_redis_take(struct gateway_in *ctx, bool *probe);
void gwin_redis_give(struct gateway_in *ctx, struct lst_redis *r, bool probe, lst_err err);
/* The same for a connection of one's own (event mode): admit before, note after. */
bool gwin_rgate_admit(struct gwin_rgate *g, bool *probe);
void gwin_rgate_note(struct gwin_rgate *g, bool probe, lst_err err);
/* True while the gate is open (Redis found unreachable or stalled, not yet probed again):
 * for Redis users outside the pool, such as the shared rate limit. */
bool gwin_rgate_open(struct gwin_rgate *g);

/* ---- pool.c ---- */
typedef lst_err (*gwin_pool_make_fn)(void *ud, void **item);
typedef void (*gwin_pool_free_fn)(void *item);
/* n items made by make(ud) up front; destroy frees them (NULL is a no-op). */
lst_err gwin_pool_create(size_t n, gwin_pool_make_fn make, gwin_pool_free_fn free_fn, void *ud,
                         struct gwin_pool **out);
void gwin_pool_destroy(struct gwin_pool *p);
/* Borrows an item, waiting while all are lent out; give it back with gwin_pool_give. */
void *gwin_pool_take(struct gwin_pool *p);
void gwin_pool_give(struct gwin_pool *p, void *item);

/* ---- callback.c ---- */
/* One callback on its way: owned by whoever handles it (a handler thread, or in event mode
 * async.c's job). body is borrowed for the call's life. */
struct gwin_call {
    const char *body;
    size_t body_len;
    char remote[48]; /* peer address, for logs */
    int64_t t0_ms;
    struct lst_threema_callback cb;
    struct lst_threema_msg msg;
    struct lst_threema_shared shared;
    struct lst_inbound rec;
    char event_id[LST_EVENT_ID_LEN + 1];
    char token[GWIN_TOKEN_LEN + 1];
    struct lst_buf why;
};
void gwin_call_init(struct gwin_call *c, const char *body, size_t len, const char *remote);
void gwin_call_cleanup(struct gwin_call *c);
/* Steps 1 and 2, CPU only: GWIN_ACCEPTED; GWIN_BAD_MAC or GWIN_MALFORMED (answer 401/400);
 * GWIN_DLQ with *dlq_err (authentic but unusable: dead-letter it with gwin_call_dead_letter);
 * GWIN_UNAVAILABLE when out of memory. */
enum gwin_result gwin_call_check(struct gateway_in *ctx, struct gwin_call *c, lst_err *dlq_err);
/* Blocking (waits for Kafka): the dead letter; GWIN_DLQ or GWIN_UNAVAILABLE. */
enum gwin_result gwin_call_dead_letter(struct gateway_in *ctx, struct gwin_call *c, lst_err err);
/* Steps 4 and 5 of a claimed event, blocking (key fetch, blobs, the Kafka wait). */
enum gwin_result gwin_call_process(struct gateway_in *ctx, struct gwin_call *c);
/* Steps 4 and 5 without blocking, for the common case: the sender's key in the process cache,
 * a box that opens, no blob to fetch. true: c->rec is built (produce it); false: take the
 * blocking path (gwin_call_process starts over). */
bool gwin_call_open_fast(struct gateway_in *ctx, struct gwin_call *c);
/* Fills resp for r, logs, counts. */
void gwin_call_answer(struct gateway_in *ctx, struct gwin_call *c, enum gwin_result r,
                      struct lst_http_response *resp);
/* The route handler; ud is the struct lst_service. */
void gwin_callback_handler(void *ud, const struct lst_http_request *req,
                           struct lst_http_response *resp);

/* ---- pubkeys.c ---- */
/* The process cache only (never blocks): true and pk when id's key is there. */
bool gwin_pubkey_cached(struct gateway_in *ctx, const char *id, uint8_t pk[LST_THREEMA_KEY_SIZE]);
enum gwin_fetch {
    GWIN_FETCH_OK = 0,
    GWIN_FETCH_RETRY,     /* try later: 503 */
    GWIN_FETCH_PERMANENT, /* will never work (unknown ID, blob gone, corrupt): record why */
};
/* The process cache (bounded, direct-mapped, with TTL). */
lst_err gwin_pubkeys_create(size_t slots, int64_t ttl_ms, struct gwin_pubkeys **out);
void gwin_pubkeys_destroy(struct gwin_pubkeys *pk);
/* The public key of id: process cache, Redis, then GET /pubkeys/{id} (cached in both).
 * fresh: skip the caches (after a box did not open with the cached key). *cached tells
 * whether the key came from a cache. */
enum gwin_fetch gwin_pubkey_get(struct gateway_in *ctx, const char *id, bool fresh,
                                uint8_t pk[LST_THREEMA_KEY_SIZE], bool *cached,
                                struct lst_buf *why);

/* ---- ratelimit.c ---- */
/* The limiter on gateway-out's shared keys (ctx->rate). */
lst_err gwin_rate_create(struct gateway_in *ctx);
/* Before a Gateway call: waits up to LST_GATEWAY_RATE_WAIT_MS for a token; false with why
 * (the callback is then answered 503). */
bool gwin_rate_admit(struct gateway_in *ctx, const char *what, struct lst_buf *why);
/* After a Gateway call: a 429 lowers the shared rate for every process. */
void gwin_rate_note(struct gateway_in *ctx, const struct lst_gateway_result *res);

/* ---- blobs.c ---- */
/* A file message's blob (or thumbnail): download, secretbox-open with the message's key,
 * check the size (declared_size < 0: no declared size), store; ref receives the blob store
 * reference. PERMANENT with the reason in why. */
enum gwin_fetch gwin_blob_file(struct gateway_in *ctx, const char *blob_id,
                               const uint8_t key[LST_THREEMA_KEY_SIZE],
                               enum lst_threema_blob_kind kind, int64_t declared_size,
                               const char *mime, const char *filename,
                               char ref[LST_BLOBSTORE_REF_HEX + 1], struct lst_buf *why);
/* A legacy image message's blob: a crypto_box with the message's key pair and its nonce. */
enum gwin_fetch gwin_blob_image(struct gateway_in *ctx, const struct lst_threema_shared *shared,
                                const struct lst_threema_image *img,
                                char ref[LST_BLOBSTORE_REF_HEX + 1], struct lst_buf *why);

/* ---- publish.c ---- */
/* Encodes rec and produces it to lst.inbound (key: from), waiting for the ack.
 * LST_ERR_INVALID (why) when the record does not encode: the caller dead-letters it. Kafka
 * errors as lst_kafka_produce; *possibly_persisted tells whether a failed record may still
 * have been written. */
lst_err gwin_publish_inbound(struct gateway_in *ctx, const struct lst_inbound *rec,
                             bool *possibly_persisted, struct lst_buf *why);
/* Like gwin_publish_inbound without the wait: cb(opaque) gets the delivery report on the
 * producer's poll thread, exactly once when LST_OK is returned. LST_ERR_INVALID: does not
 * encode (why); other errors: not queued. */
lst_err gwin_publish_inbound_async(struct gateway_in *ctx, const struct lst_inbound *rec,
                                   lst_kafka_delivery_cb cb, void *opaque, struct lst_buf *why);
/* An lst.dlq record on lst.inbound.dlq with the raw callback body, waiting for the ack. key
 * may be NULL. */
lst_err gwin_publish_dlq(struct gateway_in *ctx, const char *key, const char *body, size_t len,
                         lst_err error, const char *reason);

/* ---- async.c (event mode) ---- */
/* The stage thread and the workers (see async.c). */
lst_err gwin_async_create(struct gateway_in *ctx, struct gwin_async **out);
/* After the HTTP server is gone, before the producer: the workers finish their jobs, the
 * producer is flushed (up to flush_ms) so every delivery report has queued its marker, the
 * stage writes the markers and ends. */
void gwin_async_stop(struct gwin_async *as, int flush_ms);
/* After lst_service_destroy (late delivery reports may still have queued markers). */
void gwin_async_destroy(struct gwin_async *as);
/* The async callback route (runs on an event thread): verify and parse, then hand over. */
struct lst_http_async *gwin_callback_async(void *ud, const struct lst_http_request *req,
                                           struct lst_http_response *resp);

/* ---- dedupe.c ---- */
enum gwin_claim {
    GWIN_CLAIM_OK = 0,   /* ours to process */
    GWIN_CLAIM_DONE,     /* already in Kafka */
    GWIN_CLAIM_PENDING,  /* someone is processing it right now */
    GWIN_CLAIM_NO_REDIS, /* Redis unreachable: processed without a marker (ledger dedupes) */
};
/* Claims event_id with a pending marker carrying token (random, filled here). */
enum gwin_claim gwin_dedupe_claim(struct gateway_in *ctx, const char *event_id,
                                  char token[GWIN_TOKEN_LEN + 1]);
/* The record is in Kafka: the marker becomes "done" for LST_DEDUPE_DONE_TTL_S. */
void gwin_dedupe_done(struct gateway_in *ctx, const char *event_id);
/* Processing failed: removes our pending marker (only if it is still ours) so the Gateway's
 * retry can claim it. */
void gwin_dedupe_release(struct gateway_in *ctx, const char *event_id, const char *token);
/* A new pending token ("pending:" + 16 random hex). */
void gwin_dedupe_token(char token[GWIN_TOKEN_LEN + 1]);
/* The claim from the GET after a SET NX that did not set (get NULL: Redis failed). */
enum gwin_claim gwin_dedupe_classify(const redisReply *get, const char *token);
/* The Lua script of release (compare-and-delete). */
extern const char gwin_release_lua[];
/* Why a Redis call on r failed, for the log: Redis's own words (an error reply such as MISCONF
 * on a full disk, NOREPLICAS or LOADING; or the connection error), else lst_strerror(err).
 * Call it before r goes back to its pool. */
void gwin_redis_reason(struct lst_redis *r, lst_err err, char *out, size_t cap);

#endif
