/* threema-sim: a Threema Gateway (msgapi) simulator for tests, benchmarks and the demo.
 *
 * One context (struct sim) owns everything: the configuration, the directory of simulated
 * users, their phones (inboxes), the blob store, the fault settings, the request journal, the
 * callback scheduler with its worker threads, the metrics and the HTTP server. Handlers run on
 * libmicrohttpd's threads (one per connection, or LST_SIM_EVENT_THREADS event threads), so
 * every mutable part has its own mutex; the directory is immutable after loading.
 *
 * Files, one concern each:
 *   config.c     the configuration table
 *   directory.c  simulated users from the ERP CSV: IDs, key pairs, phone/e-mail lookups
 *   api.c        the Gateway endpoints (/send_e2e, /lookup/..., /upload_blob, ...)
 *   form.c       x-www-form-urlencoded and multipart/form-data request bodies
 *   faults.c     credits, rate limit (token bucket), injected 500s and timeouts
 *   journal.c    the request log the chaos checker reconciles against
 *   blobs.c      the blob store
 *   phones.c     the simulated devices: decrypt, record, receipts, replies
 *   callbacks.c  the time-ordered queue, worker pool and libcurl sender with the retry rule
 *   control.c    the /_sim/ control and inspection API
 *   main.c       command line, signals, run loop */
#ifndef LST_TOOL_THREEMA_SIM_H
#define LST_TOOL_THREEMA_SIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lst/config.h"
#include "lst/http.h"
#include "lst/metrics.h"
#include "lst/util.h"

#define SIM_ID_LEN       8
#define SIM_KEY_LEN      32
#define SIM_HASH_HEX_LEN 64
#define SIM_MSGID_LEN    8 /* bytes; 16 hex */
#define SIM_BLOBID_LEN   16

/* Protocol limits of the reference doc (fixed by the Gateway, not configuration). */
#define SIM_MAX_TEXT_BYTES 3500
#define SIM_MAX_BOX_BYTES  4000

/* ---- configuration (config.c) ---- */

struct sim_config {
    enum lst_log_level log_level;
    char *http_addr;
    int64_t port;
    int64_t max_connections;
    int64_t event_threads; /* LST_SIM_EVENT_THREADS: 0 = a thread per connection */
    char *gateway_id;
    char *secret;
    char *gateway_public_key; /* "public:<hex>" or bare hex; NULL: phones cannot decrypt */
    char *directory_csv;
    char *key_seed;
    int64_t credits;
    int64_t blob_max_bytes;
    int64_t blob_store_max_bytes;
    int64_t bulk_max;
    double rate_limit; /* requests per second over all Gateway endpoints; 0 = unlimited */
    int64_t rate_burst;
    int64_t retry_after_s; /* LST_SIM_RETRY_AFTER_S */
    double fault_500_rate;
    double fault_timeout_rate;       /* hang, then answer 500 without doing anything */
    double fault_timeout_after_rate; /* do the work, then hang: the client never learns */
    int64_t fault_timeout_ms;
    char *callback_url;
    int64_t callback_timeout_ms;
    int64_t callback_retries;
    int64_t callback_retry_interval_ms;
    int64_t callback_workers;
    int64_t callback_queue_max;
    int64_t received_delay_ms;
    int64_t read_delay_ms;
    int64_t delay_jitter_ms;
    double no_read_receipts_share;
    double text_only_share;
    double ack_probability;
    double decline_probability;
    double reply_probability;
    int64_t reply_delay_ms;
    int64_t journal_capacity;
    int64_t inbox_capacity;
};

extern const struct lst_config_program sim_program;
/* Whether a request may hang (the timeout faults): only with a thread per connection. */
bool sim_may_hang(const struct sim_config *cfg);
struct lst_config_section sim_config_section(struct sim_config *cfg);

/* ---- directory (directory.c) ---- */

struct sim_user {
    char id[SIM_ID_LEN + 1];
    char employee_no[32];
    char nickname[64]; /* first name, sent as the callback's nickname */
    char *phone;       /* E.164 digits without '+', NULL when none */
    char *email;       /* normalised (trimmed, ASCII-lowercased), NULL when none */
    char phone_hash[SIM_HASH_HEX_LEN + 1];
    char email_hash[SIM_HASH_HEX_LEN + 1];
    unsigned char pk[SIM_KEY_LEN];
    unsigned char sk[SIM_KEY_LEN];
    bool read_receipts; /* false: only "received" ever comes back */
    bool text_only;     /* capabilities "text" only */
    size_t index;       /* position in the directory (phone state uses the same index) */
};

/* Immutable after sim_directory_load; safe to read from any thread. */
struct sim_directory {
    struct sim_user *users; /* sorted by id */
    size_t n;
};

/* Loads the CSV (header row with at least employee_no; first_name, phone, email, threema_id
 * used when present). threema_id "none" leaves the employee out (unknown to Threema), a
 * given ID is used as is, an empty one is derived from the employee number. Keys derive from
 * seed and employee number. LST_ERR_IO / LST_ERR_INVALID with a log line on failure. */
lst_err sim_directory_load(struct sim_directory *d, const char *path, const char *seed,
                           double no_read_receipts_share, double text_only_share);
void sim_directory_cleanup(struct sim_directory *d);
/* Lookups return a borrowed user or NULL. Hashes and IDs compare case-insensitively. */
const struct sim_user *sim_directory_by_id(const struct sim_directory *d, const char *id);
const struct sim_user *sim_directory_by_phone(const struct sim_directory *d, const char *phone);
const struct sim_user *sim_directory_by_email(const struct sim_directory *d, const char *email);
const struct sim_user *sim_directory_by_phone_hash(const struct sim_directory *d, const char *hash);
const struct sim_user *sim_directory_by_email_hash(const struct sim_directory *d, const char *hash);
/* "text,image,video,audio,file" or "text". Static storage. */
const char *sim_user_capabilities(const struct sim_user *u);

/* ---- form bodies (form.c) ---- */

struct sim_form_field {
    char *name;
    char *value; /* NUL-terminated; value_len excludes the NUL (binary parts may hold NULs) */
    size_t value_len;
};

struct sim_form {
    struct sim_form_field *fields;
    size_t n;
};

/* Parses an application/x-www-form-urlencoded body. LST_ERR_INVALID for bad escapes. */
lst_err sim_form_parse_urlencoded(struct sim_form *f, const char *body, size_t len);
/* Parses a multipart/form-data body given the request's Content-Type (with boundary). */
lst_err sim_form_parse_multipart(struct sim_form *f, const char *content_type, const char *body,
                                 size_t len);
/* The first field of that name, NULL when absent. */
const struct sim_form_field *sim_form_get(const struct sim_form *f, const char *name);
void sim_form_cleanup(struct sim_form *f);

/* ---- faults, credits, rate limit (faults.c) ---- */

struct sim_faults {
    pthread_mutex_t lock;
    int64_t credits;
    double rate_limit;
    int64_t rate_burst;
    int64_t retry_after_s; /* Retry-After of a 429, 0: none */
    double tokens;
    int64_t tokens_at_ms;
    double fault_500_rate;
    double fault_timeout_rate;
    double fault_timeout_after_rate;
    int64_t fault_timeout_ms;
};

enum sim_fault {
    SIM_FAULT_NONE,
    SIM_FAULT_429,
    SIM_FAULT_500,
    SIM_FAULT_TIMEOUT,       /* hang, then 500, nothing done */
    SIM_FAULT_TIMEOUT_AFTER, /* do the work, hang, then answer */
};

lst_err sim_faults_init(struct sim_faults *f, const struct sim_config *cfg);
void sim_faults_cleanup(struct sim_faults *f);
/* Back to the configured values. */
void sim_faults_reset(struct sim_faults *f, const struct sim_config *cfg);
/* Decides the fault for one Gateway request (takes a token from the bucket); *timeout_ms
 * gets how long an injected timeout hangs. */
enum sim_fault sim_faults_draw(struct sim_faults *f, int64_t *timeout_ms);
/* The Retry-After (seconds) a 429 carries; 0: none, like the real Gateway's. */
int64_t sim_faults_retry_after(struct sim_faults *f);
/* Applies the members present in a /_sim/faults JSON object (parsed by control.c). */
struct sim_fault_update {
    bool has_credits, has_rate_limit, has_rate_burst, has_500, has_timeout, has_timeout_after,
        has_timeout_ms, has_retry_after;
    int64_t credits, rate_burst, timeout_ms, retry_after_s;
    double rate_limit, rate_500, rate_timeout, rate_timeout_after;
};
void sim_faults_update(struct sim_faults *f, const struct sim_fault_update *u);
/* Takes n credits if there are that many; false (and nothing taken) otherwise. */
bool sim_faults_take_credits(struct sim_faults *f, int64_t n);
int64_t sim_faults_credits(struct sim_faults *f);
/* Appends the current settings as a JSON object. */
void sim_faults_json(struct sim_faults *f, struct lst_buf *out);

/* ---- request journal (journal.c) ---- */

struct sim_journal_entry {
    uint64_t seq;
    int64_t time_ms; /* wall clock */
    char method[8];
    char endpoint[32]; /* route, e.g. "/send_e2e" or "/lookup/phone" (never the value) */
    int status;
    char request_id[65]; /* X-Request-Id when sent, else "" */
    char to[SIM_ID_LEN + 1];
    char message_id[2 * SIM_MSGID_LEN + 1];
    const char *fault; /* static: "none", "429", "500", "timeout", "timeout_after" */
};

struct sim_journal {
    pthread_mutex_t lock;
    struct sim_journal_entry *ring;
    size_t cap;
    uint64_t next_seq; /* entries seq are 1.. */
};

lst_err sim_journal_init(struct sim_journal *j, size_t cap);
void sim_journal_cleanup(struct sim_journal *j);
void sim_journal_reset(struct sim_journal *j);
/* Copies e (its seq is assigned here). */
void sim_journal_add(struct sim_journal *j, struct sim_journal_entry *e);
/* {"next":N,"entries":[...]} for entries with seq > since, at most limit. */
void sim_journal_json(struct sim_journal *j, uint64_t since, size_t limit, struct lst_buf *out);

/* ---- blob store (blobs.c) ---- */

struct sim_blob {
    char id[2 * SIM_BLOBID_LEN + 1];
    unsigned char *data;
    size_t len;
    bool persist;
    struct sim_blob *next; /* newest first */
};

struct sim_blobs {
    pthread_mutex_t lock;
    struct sim_blob *head;
    size_t count;
    size_t bytes;
    size_t max_bytes;
};

lst_err sim_blobs_init(struct sim_blobs *b, size_t max_bytes);
void sim_blobs_cleanup(struct sim_blobs *b);
/* Stores a copy; id_out gets the new 32-hex ID. Evicts the oldest blobs beyond max_bytes. */
lst_err sim_blobs_put(struct sim_blobs *b, const void *data, size_t len, bool persist,
                      char id_out[2 * SIM_BLOBID_LEN + 1]);
/* Appends the blob's bytes to out; LST_ERR_NOT_FOUND when unknown. */
lst_err sim_blobs_get(struct sim_blobs *b, const char *id, struct lst_buf *out);
void sim_blobs_clear(struct sim_blobs *b);

/* ---- callbacks (callbacks.c) ---- */

struct sim_callbacks;
struct sim;

/* Starts the worker threads. */
lst_err sim_callbacks_create(struct sim *sim, struct sim_callbacks **out);
/* Stops and joins the workers (bounded by the callback timeout), frees queued jobs. */
void sim_callbacks_destroy(struct sim_callbacks *cb);
/* Queues a callback from user u carrying container (plaintext, unpadded: type + body), to be
 * encrypted, signed and posted at now + delay_ms. Returns the 16-hex message ID through
 * msgid_out (may be NULL). LST_ERR_RANGE when the queue is full (counted as dropped). */
lst_err sim_callbacks_schedule(struct sim_callbacks *cb, const struct sim_user *u,
                               const unsigned char *container, size_t len, int64_t delay_ms,
                               char msgid_out[2 * SIM_MSGID_LEN + 1]);
void sim_callbacks_set_url(struct sim_callbacks *cb, const char *url);
/* Returns a copy of the URL (free()) or NULL when none. */
char *sim_callbacks_url(struct sim_callbacks *cb);
void sim_callbacks_set_paused(struct sim_callbacks *cb, bool paused);
void sim_callbacks_set_retry(struct sim_callbacks *cb, int64_t retries, int64_t interval_ms);
/* Drops every queued job and restores the configured URL, retry rule and pause state. */
void sim_callbacks_reset(struct sim_callbacks *cb);
void sim_callbacks_json(struct sim_callbacks *cb, struct lst_buf *out);

/* ---- phones (phones.c) ---- */

struct sim_phones;

lst_err sim_phones_create(struct sim *sim, struct sim_phones **out);
void sim_phones_destroy(struct sim_phones *p);
/* A message the Gateway accepted for u: decrypt, record, schedule receipts and replies. */
void sim_phones_deliver(struct sim_phones *p, const struct sim_user *u, const char *msgid_hex,
                        const unsigned char *nonce, const unsigned char *box, size_t box_len,
                        bool no_receipts, bool no_push);
/* A send_simple message (the Gateway encrypts it; we record the text). */
void sim_phones_deliver_simple(struct sim_phones *p, const struct sim_user *u,
                               const char *msgid_hex, const char *text, size_t len);
/* Makes u reply now: kind "text", "location", "photo" or "receipt". Fills the answer JSON
 * ({"messageId":...,"blobId":...}). LST_ERR_INVALID for a bad request (reason in why). */
lst_err sim_phones_reply(struct sim_phones *p, const struct sim_user *u, const char *kind,
                         const char *text, double lat, double lon, int receipt_status,
                         const char *receipt_msgid, struct lst_buf *answer, const char **why);
/* {"identity":...,"messages":[...]}. */
void sim_phones_inbox_json(struct sim_phones *p, const struct sim_user *u, struct lst_buf *out);
void sim_phones_reset(struct sim_phones *p);
void sim_phones_json(struct sim_phones *p, struct lst_buf *out);

/* ---- the context ---- */

struct sim_metrics {
    struct lst_counter *callbacks_sent;
    struct lst_counter *callbacks_failed; /* attempts that failed (each retry counts) */
    struct lst_counter *callbacks_dropped;
    struct lst_counter *phone_messages;
    struct lst_counter *phone_invalid;
    struct lst_gauge *credits;
};

struct sim {
    struct sim_config cfg;
    struct sim_directory dir;
    unsigned char gateway_pk[SIM_KEY_LEN];
    bool have_gateway_pk;
    struct sim_faults faults;
    struct sim_journal journal;
    struct sim_blobs blobs;
    struct sim_callbacks *callbacks;
    struct sim_phones *phones;
    struct lst_metrics *metrics;
    struct sim_metrics m;
    struct lst_http_server *http;
    volatile int stopping; /* set before the server drains: hanging handlers return early */
};

/* Builds everything from the loaded configuration and starts serving. */
lst_err sim_create(struct sim *sim);
/* Stops serving and frees everything; safe on a half-built context. */
void sim_destroy(struct sim *sim);

/* Route tables (api.c, control.c). */
extern const struct lst_http_route sim_api_routes[];
extern const size_t sim_api_nroutes;
extern const struct lst_http_route sim_control_routes[];
extern const size_t sim_control_nroutes;

/* Counts one request in lst_sim_requests_total{endpoint,code}. */
void sim_count_request(struct sim *sim, const char *endpoint, int status);
/* Random number in [0, 1) from the CSPRNG (probabilities, jitter). */
double sim_random_unit(void);

#endif
