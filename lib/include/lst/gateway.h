/* Threema Gateway HTTP client (msgapi): every endpoint of docs/threema-gateway.md section 2 on
 * libcurl, with one classification of every outcome.
 *
 * The client deals in what goes over the wire: Threema IDs, lowercase hex (nonces, boxes, keys,
 * hashes, message and blob IDs) and raw blob bytes. Encryption is lst/threema.h's business.
 *
 * Threads and connections: one client owns one libcurl easy handle and reuses it for every call,
 * so consecutive calls ride the same keep-alive connection (TLS handshakes are the expensive
 * part of a send). A mutex serialises the calls of one client: sharing a client between threads
 * is safe but gives no parallelism. Parallel senders (gateway-out workers) create one client per
 * thread; the cost is one connection per thread, which is what parallel requests need anyway.
 * One thread can also run many sends at once through a multi client (end of this header).
 * One handle per client rather than a curl share of connections keeps every call's connection
 * state private and the code free of share locks.
 *
 * Transport policy (not configurable on purpose): certificate and host verification on, no
 * pinning (pinning broke SDK users on every certificate rotation), redirects not followed (a
 * redirect would carry the secret in the query string to another URL; a 3xx is a configuration
 * fault), only http and https, TCP keepalive, no signals (CURLOPT_NOSIGNAL, threads), answer
 * sizes capped (text answers 4 KiB, JSON answers 1 MiB, blobs max_blob) so a broken server
 * cannot make us allocate without bound; error bodies are discarded as they arrive.
 *
 * Secrets: the API secret (and its URL-encoded form) is registered with the log secret guard;
 * the client never logs paths (they contain phone numbers and e-mail addresses) nor bodies. */
#ifndef LST_GATEWAY_H
#define LST_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lst/error.h"
#include "lst/threema.h"
#include "lst/util.h"

/* Sizes come from lst/threema.h so the protocol has one definition of them. */
#define LST_GATEWAY_DEFAULT_URL        "https://msgapi.threema.ch"
#define LST_GATEWAY_ID_LEN             LST_THREEMA_ID_SIZE     /* 8 chars of 0-9A-Z, '*' first */
#define LST_GATEWAY_MSGID_HEX          LST_THREEMA_MSGID_HEX   /* 16 */
#define LST_GATEWAY_NONCE_HEX          LST_THREEMA_NONCE_HEX   /* 48 */
#define LST_GATEWAY_KEY_HEX            LST_THREEMA_KEY_HEX     /* 64, public key */
#define LST_GATEWAY_HASH_HEX           LST_THREEMA_HASH_HEX    /* 64, phone / e-mail lookup hash */
#define LST_GATEWAY_BLOBID_HEX         LST_THREEMA_BLOB_ID_HEX /* 32 */
#define LST_GATEWAY_TEXT_MAX           LST_THREEMA_TEXT_MAX    /* send_simple text, UTF-8 bytes */
#define LST_GATEWAY_BOX_MAX            LST_THREEMA_BOX_MAX     /* send_e2e box, bytes (2x in hex) */
#define LST_GATEWAY_BULK_LOOKUP_MAX    1000 /* phone + e-mail hashes in one lookup/bulk */
#define LST_GATEWAY_DEFAULT_MAX_BLOB   (20u * 1024u * 1024u)
#define LST_GATEWAY_DEFAULT_CONNECT_MS 5000
#define LST_GATEWAY_DEFAULT_TIMEOUT_MS 30000

/* ---- outcome classification ---- */

/* What the caller does next. One mapping for every endpoint (lst_gateway_classify):
 *   OK         the call succeeded and the answer was well-formed.
 *   RETRY      try again later with backoff: 429, 408, 5xx, timeouts, transport errors, and a
 *              malformed 2xx answer (a garbled success is a server fault, not the item's).
 *   PAUSE      402, no credits left: stop sending and uploading until credits return.
 *   FATAL      the account or the configuration is wrong, nothing will succeed until an
 *              operator acts: 401, 3xx (base URL redirects), TLS verification failures, a bad
 *              URL or CA file.
 *   PERMANENT  this item can never succeed: 400, 404, 413, other 4xx, and requests rejected
 *              locally before sending (bad ID or hex, too many hashes, text too long). */
enum lst_gateway_outcome {
    LST_GATEWAY_OK = 0,
    LST_GATEWAY_RETRY,
    LST_GATEWAY_PAUSE,
    LST_GATEWAY_FATAL,
    LST_GATEWAY_PERMANENT,
};

/* "ok", "retry", "pause", "fatal", "permanent" (static storage). */
const char *lst_gateway_outcome_name(enum lst_gateway_outcome outcome);

/* The table-driven mapping. http_status is the final status (0 when none was received),
 * curl_error a CURLcode (0 = CURLE_OK). A transport error wins over any status seen before it
 * (a body cut off after a 200 header is RETRY). Pure; safe from any thread. */
enum lst_gateway_outcome lst_gateway_classify(long http_status, int curl_error);

/* Filled by every call, also on local rejection (then http_status is 0, curl_code 0). */
struct lst_gateway_result {
    enum lst_gateway_outcome outcome;
    long http_status; /* final HTTP status, 0 when none */
    int curl_code;    /* CURLcode of the transfer, 0 when it completed */
    lst_err err;      /* LST_OK; LST_ERR_INVALID / LST_ERR_TOO_LARGE for a local rejection or a
                         malformed answer; LST_ERR_TIMEOUT; LST_ERR_HTTP otherwise */
    /* True when a POST's outcome is RETRY but the Gateway may nevertheless have acted on it:
     * the request went out and then the answer timed out, broke off or was a garbled 2xx. A
     * retry of a send may then duplicate the message: gateway-out marks such sends as in
     * doubt. Always false for GETs and for requests that never left (connect failures). */
    bool in_doubt;
    /* The answer's Retry-After in ms (a number of seconds or an HTTP date), 0 when none: the
     * Gateway documents none, but a proxy or a future Gateway may send one with 429 or 503,
     * and a client that retries sooner only prolongs the storm. */
    int64_t retry_after_ms;
    long connects;      /* new connections this call opened (0: an existing one was reused) */
    int64_t elapsed_ms; /* wall time of the call */
    char reason[160];   /* short text for logs; never the secret, a path or message content */
};

/* ---- the client ---- */

struct lst_gateway_config {
    const char *base_url;    /* NULL: LST_GATEWAY_DEFAULT_URL; http(s)://host[:port][/prefix] */
    const char *gateway_id;  /* required, "*XXXXXXX" */
    const char *secret;      /* required, the API secret; registered with the log guard */
    long connect_timeout_ms; /* 0: LST_GATEWAY_DEFAULT_CONNECT_MS */
    long timeout_ms;         /* whole call incl. connect; 0: LST_GATEWAY_DEFAULT_TIMEOUT_MS */
    const char *ca_file;     /* PEM CA bundle; NULL: the system store */
    size_t max_blob;         /* largest blob up- or downloaded; 0: LST_GATEWAY_DEFAULT_MAX_BLOB */
    const char *user_agent;  /* NULL: "leitstand/<version>" */
};

struct lst_gateway;

/* Calls curl_global_init exactly once per process (pthread_once). libcurl requires it before
 * any other thread uses libcurl: call it from main before starting threads. lst_gateway_create
 * calls it too, which is enough for single-threaded programs and tests. Never calls
 * curl_global_cleanup (other modules may still use libcurl at exit). */
lst_err lst_gateway_global_init(void);

/* Copies everything it keeps from cfg. LST_ERR_CONFIG for a missing or malformed gateway ID or
 * secret, a base URL that is not http(s), bad timeouts; LST_ERR_NOMEM; LST_ERR_HTTP when
 * libcurl cannot be initialised. *out is owned by the caller: lst_gateway_destroy. */
lst_err lst_gateway_create(const struct lst_gateway_config *cfg, struct lst_gateway **out);
/* Closes the connection. NULL is a no-op. No call may be in progress. */
void lst_gateway_destroy(struct lst_gateway *gw);

/* Longest X-Request-Id value lst_gateway_set_request_id accepts. */
#define LST_GATEWAY_REQUEST_ID_MAX 128

/* Sends "X-Request-Id: <request_id>" with every later call of this client (tracing: the
 * simulator's journal records it, so tests attribute each send to a request); NULL or ""
 * stops sending it. The value is copied. LST_ERR_INVALID (nothing changed) for more than
 * LST_GATEWAY_REQUEST_ID_MAX characters or any character outside printable ASCII. Clients are
 * per thread, so a sender sets the ID of the request it is about to send. */
lst_err lst_gateway_set_request_id(struct lst_gateway *gw, const char *request_id);

/* ---- endpoints ----
 * Every call returns res->outcome and fills *res (required). Output parameters are written
 * only when the outcome is OK. Hex outputs are lowercase and NUL-terminated; inputs accept
 * either case and are sent lowercase. IDs must be 8 chars of 0-9A-Z ('*' allowed first). */

enum lst_gateway_recipient {
    LST_GATEWAY_TO_ID = 0, /* form field "to" */
    LST_GATEWAY_TO_PHONE,  /* "phone": E.164 digits, no '+' */
    LST_GATEWAY_TO_EMAIL,  /* "email" */
};

/* POST /send_simple (form body: from, secret, to|phone|email, text). text is valid UTF-8 of
 * at most LST_GATEWAY_TEXT_MAX bytes. msgid receives 16 hex chars. */
enum lst_gateway_outcome lst_gateway_send_simple(struct lst_gateway *gw,
                                                 enum lst_gateway_recipient kind,
                                                 const char *recipient, const char *text,
                                                 char msgid[LST_GATEWAY_MSGID_HEX + 1],
                                                 struct lst_gateway_result *res);

/* One end-to-end message, already encrypted. Borrowed for the call. */
struct lst_gateway_e2e {
    const char *to;        /* recipient Threema ID */
    const char *nonce_hex; /* 48 hex */
    const char *box_hex;   /* hex of 1..LST_GATEWAY_BOX_MAX bytes */
    bool no_delivery_receipts;
    bool no_push;
};

/* POST /send_e2e (form body: from, to, nonce, box, [noDeliveryReceipts=1], [noPush=1],
 * secret). */
enum lst_gateway_outcome lst_gateway_send_e2e(struct lst_gateway *gw,
                                              const struct lst_gateway_e2e *msg,
                                              char msgid[LST_GATEWAY_MSGID_HEX + 1],
                                              struct lst_gateway_result *res);

/* Per item of a bulk send, in request order. */
struct lst_gateway_bulk_item {
    enum lst_gateway_outcome outcome; /* the item's errorCode classified like a status */
    int error_code;                   /* the item's errorCode, 0 when it has a message ID */
    char msgid[LST_GATEWAY_MSGID_HEX + 1];
};

/* POST /send_e2e_bulk?from=..&secret=.. with a JSON array of {"to","nonce","box"} (nonce and
 * box base64, converted here from the hex given) plus "noDeliveryReceipts":true /
 * "noPush":true where set. The answer must be an array of n objects, each {"messageId"} or
 * {"errorCode"}; items[0..n) receives them. OK means the call worked: look at each item. */
enum lst_gateway_outcome lst_gateway_send_e2e_bulk(struct lst_gateway *gw,
                                                   const struct lst_gateway_e2e *msgs, size_t n,
                                                   struct lst_gateway_bulk_item *items,
                                                   struct lst_gateway_result *res);

/* GET /pubkeys/{id}. key_hex receives 64 hex chars. */
enum lst_gateway_outcome lst_gateway_pubkey(struct lst_gateway *gw, const char *id,
                                            char key_hex[LST_GATEWAY_KEY_HEX + 1],
                                            struct lst_gateway_result *res);

struct lst_gateway_pubkey_entry {
    char identity[LST_GATEWAY_ID_LEN + 1];
    char public_key[LST_GATEWAY_KEY_HEX + 1];
};

/* POST /pubkeys/bulk?from=..&secret=.. with {"identities":[...]}. On OK *out is a new array
 * of *nout entries (IDs the Gateway does not know are simply absent), free it with free(). */
enum lst_gateway_outcome lst_gateway_pubkeys_bulk(struct lst_gateway *gw, const char *const *ids,
                                                  size_t n, struct lst_gateway_pubkey_entry **out,
                                                  size_t *nout, struct lst_gateway_result *res);

enum lst_gateway_lookup_kind {
    LST_GATEWAY_LOOKUP_PHONE = 0,  /* /lookup/phone/{E.164 digits} */
    LST_GATEWAY_LOOKUP_PHONE_HASH, /* /lookup/phone_hash/{64 hex} */
    LST_GATEWAY_LOOKUP_EMAIL,      /* /lookup/email/{address, percent-encoded} */
    LST_GATEWAY_LOOKUP_EMAIL_HASH, /* /lookup/email_hash/{64 hex} */
};

/* GET /lookup/...: the Threema ID for a phone number, e-mail address or their hash. An unknown
 * one is 404, PERMANENT. id receives 8 chars. */
enum lst_gateway_outcome lst_gateway_lookup(struct lst_gateway *gw,
                                            enum lst_gateway_lookup_kind kind, const char *value,
                                            char id[LST_GATEWAY_ID_LEN + 1],
                                            struct lst_gateway_result *res);

struct lst_gateway_lookup_entry {
    char identity[LST_GATEWAY_ID_LEN + 1];
    char public_key[LST_GATEWAY_KEY_HEX + 1];
    char phone_hash[LST_GATEWAY_HASH_HEX + 1]; /* "" when the answer had none */
    char email_hash[LST_GATEWAY_HASH_HEX + 1]; /* "" when the answer had none */
};

/* POST /lookup/bulk?from=..&secret=.. with {"phoneHashes":[...],"emailHashes":[...]} (hex).
 * More than LST_GATEWAY_BULK_LOOKUP_MAX hashes in all is rejected locally (PERMANENT,
 * LST_ERR_TOO_LARGE) without a request. On OK *out is a new array of *nout matches, free it
 * with free(). */
enum lst_gateway_outcome lst_gateway_lookup_bulk(struct lst_gateway *gw,
                                                 const char *const *phone_hashes, size_t nphone,
                                                 const char *const *email_hashes, size_t nemail,
                                                 struct lst_gateway_lookup_entry **out,
                                                 size_t *nout, struct lst_gateway_result *res);

/* Reception capabilities as a bit set. Tokens not listed here are counted, not refused. */
enum lst_gateway_cap {
    LST_GATEWAY_CAP_TEXT = 1u << 0,
    LST_GATEWAY_CAP_IMAGE = 1u << 1,
    LST_GATEWAY_CAP_VIDEO = 1u << 2,
    LST_GATEWAY_CAP_AUDIO = 1u << 3,
    LST_GATEWAY_CAP_FILE = 1u << 4,
    LST_GATEWAY_CAP_BALLOT = 1u << 5,
    LST_GATEWAY_CAP_GROUP = 1u << 6,
    LST_GATEWAY_CAP_CALL = 1u << 7,
    LST_GATEWAY_CAP_VIDEOCALL = 1u << 8,
};

struct lst_gateway_caps {
    uint32_t mask;    /* enum lst_gateway_cap bits */
    unsigned unknown; /* tokens we do not know (tolerated) */
};

/* Parses the comma-separated answer of /capabilities: tokens trimmed of spaces, any order,
 * duplicates and empty tokens ignored, unknown tokens counted. A token with characters other
 * than [a-z0-9_-] (after ASCII lowercasing) is LST_ERR_INVALID. */
lst_err lst_gateway_caps_parse(const char *s, size_t len, struct lst_gateway_caps *out);
/* The token of one capability bit ("text", ...), NULL for anything else. */
const char *lst_gateway_cap_name(enum lst_gateway_cap cap);

/* GET /capabilities/{id}. */
enum lst_gateway_outcome lst_gateway_capabilities(struct lst_gateway *gw, const char *id,
                                                  struct lst_gateway_caps *caps,
                                                  struct lst_gateway_result *res);

/* GET /credits: the remaining balance, a non-negative decimal. */
enum lst_gateway_outcome lst_gateway_credits(struct lst_gateway *gw, int64_t *credits,
                                             struct lst_gateway_result *res);

/* POST /upload_blob?from=..&secret=..[&persist=1], multipart/form-data with one part named
 * "blob" (filename "blob", application/octet-stream; persist goes in the query string). data is the
 * already-encrypted blob, 1..max_blob bytes. blob_id receives 32 hex chars. Costs one credit (402
 * -> PAUSE). */
enum lst_gateway_outcome lst_gateway_upload_blob(struct lst_gateway *gw, const void *data,
                                                 size_t len, bool persist,
                                                 char blob_id[LST_GATEWAY_BLOBID_HEX + 1],
                                                 struct lst_gateway_result *res);

/* GET /blobs/{blobId}: the raw bytes, appended to out (reset first). A blob above max_blob is
 * PERMANENT with LST_ERR_TOO_LARGE (it will never fit); out then holds nothing useful. */
enum lst_gateway_outcome lst_gateway_download_blob(struct lst_gateway *gw, const char *blob_id,
                                                   struct lst_buf *out,
                                                   struct lst_gateway_result *res);

/* ---- many send_e2e calls on one thread (curl multi) ----
 *
 * A multi client runs up to `slots` sends at once on one thread: each slot is one easy handle
 * (its common options set once and kept, like the blocking client's), all slots share the
 * multi handle's pool of keep-alive connections (at most `slots` kept). Requests and their
 * classification are exactly those of lst_gateway_send_e2e (and lst_gateway_send_e2e_bulk):
 * the same code builds the body, sets up the transfer and classifies its outcome.
 *
 * Threads: every function except lst_gateway_multi_wakeup must be called from one thread at a
 * time (the owner's event loop); there is no lock. lst_gateway_multi_wakeup may be called from
 * any thread. The form body of a send (it holds the secret) is wiped when its transfer ends. */
struct lst_gateway_multi;
struct lst_gateway_settings; /* lst/gateway_config.h */

/* The most slots one multi client takes. */
#define LST_GATEWAY_MULTI_SLOTS_MAX 1024

/* slots: how many transfers may run at once, 1..LST_GATEWAY_MULTI_SLOTS_MAX (else
 * LST_ERR_CONFIG). The config is validated and copied like lst_gateway_create's (same errors);
 * the secret is registered with the log guard. *out is owned by the caller:
 * lst_gateway_multi_destroy. */
lst_err lst_gateway_multi_create(const struct lst_gateway_config *cfg, unsigned slots,
                                 struct lst_gateway_multi **out);
/* Aborts running transfers (no done() for them: their sends are in doubt if they had left),
 * closes the connections, frees everything. NULL is a no-op. */
void lst_gateway_multi_destroy(struct lst_gateway_multi *m);
/* A new multi client for the settings, like lst_gateway_settings_client. */
lst_err lst_gateway_settings_multi(const struct lst_gateway_settings *s, unsigned slots,
                                   struct lst_gateway_multi **out);

/* Starts POST /send_e2e on slot (idle) with "X-Request-Id: <request_id>" (NULL or "" for
 * none; the rules of lst_gateway_set_request_id). msg and request_id are copied (the form
 * body is built now), so they may go right after the call. LST_OK: the transfer runs and
 * lst_gateway_multi_run reports it once; *res is zeroed. On any error no transfer is started
 * and *res says what to do with the message:
 *   LST_ERR_INVALID / LST_ERR_TOO_LARGE / LST_ERR_NOMEM: refused locally (bad ID or hex, box
 *     too large, out of memory building the form, a malformed request_id): PERMANENT with the
 *     reason, exactly as lst_gateway_send_e2e fills it;
 *   LST_ERR_STATE: the slot is busy; LST_ERR_RANGE: no such slot; LST_ERR_HTTP / _NOMEM from
 *     libcurl while preparing the transfer: RETRY with the reason (nothing was sent). */
lst_err lst_gateway_multi_send_e2e(struct lst_gateway_multi *m, unsigned slot,
                                   const struct lst_gateway_e2e *msg, const char *request_id,
                                   struct lst_gateway_result *res);

/* Starts POST /send_e2e_bulk of msgs[0..n) on slot (idle), as lst_gateway_send_e2e_bulk
 * builds and checks it, with "X-Request-Id: <request_id>". msgs and request_id are copied (the
 * body is built now); items (n of them) is borrowed until the transfer is reported: when done
 * says OK, every item holds its own answer (message ID or errorCode, in request order); any
 * other outcome is the whole call's, and items are unspecified. Errors as for
 * lst_gateway_multi_send_e2e; a local refusal (LST_ERR_INVALID, _TOO_LARGE) concerns the call
 * as a whole, not one known item. */
lst_err lst_gateway_multi_send_e2e_bulk(struct lst_gateway_multi *m, unsigned slot,
                                        const struct lst_gateway_e2e *msgs, size_t n,
                                        const char *request_id, struct lst_gateway_bulk_item *items,
                                        struct lst_gateway_result *res);

/* Called once per finished transfer, on the thread of lst_gateway_multi_run. msgid is the 16
 * lowercase hex of a send_e2e's answer when res->outcome is OK, "" otherwise (always "" for
 * a bulk call: its answers are in its items); both are valid only
 * during the call. The slot is idle again: done may start the next send on it (on any slot),
 * but must not destroy the multi client. */
typedef void (*lst_gateway_multi_done)(void *ud, unsigned slot, const char *msgid,
                                       const struct lst_gateway_result *res);

/* Waits up to timeout_ms (0: no wait) for activity on the transfers (curl_multi_poll; returns
 * early on lst_gateway_multi_wakeup, and at once after a send was started), drives them and
 * calls done (required) for each finished one with the result classified exactly as
 * lst_gateway_send_e2e would (a malformed 2xx answer is RETRY and in doubt). res->elapsed_ms
 * counts from lst_gateway_multi_send_e2e. Waits the whole timeout when nothing runs (unless
 * woken). Returns the number of transfers still running (sends started by done included), or
 * -(int)LST_ERR_HTTP when libcurl's multi interface fails (a bug or out of memory). */
int lst_gateway_multi_run(struct lst_gateway_multi *m, int timeout_ms, lst_gateway_multi_done done,
                          void *ud);
/* Thread-safe: makes a lst_gateway_multi_run blocked in its wait return now (or its next wait,
 * when none is blocked). */
void lst_gateway_multi_wakeup(struct lst_gateway_multi *m);
/* The number of busy slots. */
unsigned lst_gateway_multi_running(const struct lst_gateway_multi *m);

#endif
