/* Internals of the Gateway client shared by gateway_client.c (lifecycle, transport,
 * classification), gateway_endpoints.c (single-value endpoints) and gateway_bulk.c (JSON bulk
 * endpoints). Not a public header. */
#ifndef LST_GATEWAY_INTERNAL_H
#define LST_GATEWAY_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "lst/gateway.h"
#include "lst/util.h"

/* Answer caps. The Gateway's text answers are at most 64 bytes; 4 KiB leaves room for a
 * proxy's trailing junk without letting a broken server grow our memory. A bulk lookup of 1000
 * hashes answers about 250 bytes per match. */
#define LST_GW_TEXT_ANSWER_MAX ((size_t)4096)
#define LST_GW_JSON_ANSWER_MAX ((size_t)1024 * 1024)

/* The header lines of one request, linked by hand: libcurl only reads the list during the
 * transfer, so the per-call allocations of curl_slist_append are saved. */
struct lst_gw_headers {
    struct curl_slist node[3];
    char content_type[96];
};

/* "X-Request-Id: " plus the longest ID plus NUL. */
#define LST_GW_REQUEST_ID_HEADER_SIZE (LST_GATEWAY_REQUEST_ID_MAX + sizeof("X-Request-Id: "))

/* Where a 2xx answer goes (on_write). Error bodies are dropped as they arrive. */
struct lst_gw_sink {
    CURL *curl;
    struct lst_buf *buf;
    size_t cap;
    bool decided;
    bool keep;
    bool over;
};

/* One easy handle and everything a transfer on it needs for as long as it runs: the blocking
 * client has one (used under its lock), the multi client one per slot. The storage the handle
 * points at during a transfer (error buffer, URL, header lines, sink) lives here, not in a
 * stack frame, so a transfer may outlive the call that started it. */
struct lst_gw_xfer {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    bool primed;        /* the common options are set on curl (see prepare_handle) */
    struct lst_buf url; /* the current transfer's URL, kept between calls (wiped after each) */
    /* "X-Request-Id: <id>" sent with every transfer, "" for none (lst_gw_set_request_id). */
    char request_id_header[LST_GW_REQUEST_ID_HEADER_SIZE];
    struct lst_gw_headers hdrs;
    curl_mime *mime;                 /* upload_blob's body, freed when the transfer ends */
    struct lst_gw_sink sink;         /* the 2xx answer of the running transfer */
    const struct lst_gw_request *rq; /* the running request, borrowed until it ends */
    int64_t t0;                      /* lst_mono_ms when the transfer was handed to curl */
};

/* The client. All fields are fixed after create except x, which the lock guards. */
struct lst_gateway {
    pthread_mutex_t lock;
    bool lock_ready;
    char *base_url;   /* without trailing '/' */
    char *auth_query; /* "from=..&secret=.." percent-encoded */
    char *id;
    char *secret;
    char *secret_enc; /* the secret as it appears on the wire, for scrubbing */
    char *user_agent;
    char *ca_file;
    long connect_ms;
    long timeout_ms;
    size_t max_blob;
    struct lst_gw_xfer x;
};

/* One request, described by the endpoint code and executed by lst_gw_perform. Borrowed. */
struct lst_gw_request {
    const char *endpoint;     /* name for logs, e.g. "send_e2e"; never the path */
    bool post;                /* POST, else GET */
    const char *path;         /* percent-encoded path starting with '/' */
    const char *extra_query;  /* encoded "k=v" appended after from & secret, or NULL */
    bool auth_in_query;       /* from & secret in the query string (else the form body) */
    const char *content_type; /* of body; NULL without body */
    const char *body;         /* request body (form or JSON), body_len bytes */
    size_t body_len;
    const void *blob; /* non-NULL: multipart/form-data with one part "blob" of blob_len */
    size_t blob_len;
    size_t max_answer;       /* answer cap for 2xx bodies */
    bool oversize_permanent; /* an answer above the cap is PERMANENT (blob), else RETRY */
};

/* Runs the request on the client's handle (under its lock) and classifies the outcome. A 2xx
 * body is in answer (reset first, NUL-terminated). res is filled completely. */
enum lst_gateway_outcome lst_gw_perform(struct lst_gateway *gw, const struct lst_gw_request *rq,
                                        struct lst_buf *answer, struct lst_gateway_result *res);

/* ---- the transport, step by step (lst_gw_perform and the multi client share it) ----
 * gw only lends its configuration (URL, auth, timeouts, secret for scrubbing); the transfer
 * runs on x. The caller serialises the use of x. */
/* curl_easy_init and an empty URL buffer. LST_ERR_HTTP when libcurl cannot make a handle. */
lst_err lst_gw_xfer_init(struct lst_gw_xfer *x);
/* Closes the handle and wipes the URL. x must not be in a transfer (lst_gw_xfer_end first). */
void lst_gw_xfer_cleanup(struct lst_gw_xfer *x);
/* Sets "X-Request-Id" for the following transfers of x, see lst_gateway_set_request_id.
 * LST_ERR_INVALID (nothing changed) for an ID that is too long or not printable ASCII. */
lst_err lst_gw_set_request_id(struct lst_gw_xfer *x, const char *request_id);
/* Prepares x for rq: common options (once), URL, headers, method and body; the 2xx answer
 * goes to answer (the caller resets it). rq, its body and answer are borrowed until the
 * transfer ends. On failure res (zeroed by the caller) says RETRY with the error, the
 * transfer is ended and the error returned. */
lst_err lst_gw_xfer_begin(const struct lst_gateway *gw, struct lst_gw_xfer *x,
                          const struct lst_gw_request *rq, struct lst_buf *answer,
                          struct lst_gateway_result *res);
/* Classifies the transfer curl finished with rc into res (zeroed by the caller; elapsed_ms
 * counts from lst_gw_xfer_begin) and ends it. */
void lst_gw_xfer_finish(const struct lst_gateway *gw, struct lst_gw_xfer *x, CURLcode rc,
                        struct lst_gateway_result *res);
/* Ends a transfer, finished or not: the handle forgets the header list, the URL (it may hold
 * the secret) is wiped, the MIME body freed. */
void lst_gw_xfer_end(struct lst_gw_xfer *x);
/* The last step of every call: a 2xx whose answer ran out of memory is RETRY; logs the call at
 * debug level. Returns res->outcome. */
enum lst_gateway_outcome lst_gw_report(const struct lst_gw_request *rq,
                                       const struct lst_buf *answer,
                                       struct lst_gateway_result *res);

/* ---- send_e2e, shared by lst_gateway_send_e2e and the multi client ---- */
/* Validates msg and builds its form body (holds the secret) into form (empty). On a local
 * refusal fills res like lst_gw_reject, leaves form wiped and returns the error. */
lst_err lst_gw_e2e_form(const struct lst_gateway *gw, const struct lst_gateway_e2e *msg,
                        struct lst_buf *form, struct lst_gateway_result *res);
/* The request of a form POST with from and secret in the body and a text answer. form is
 * borrowed for as long as rq is used. */
void lst_gw_form_request(struct lst_gw_request *rq, const char *endpoint, const char *path,
                         const struct lst_buf *form);
/* The message ID answer of both sends: exactly 16 hex, lowercased into msgid (17 bytes, only
 * written when valid); anything else makes res RETRY via lst_gw_malformed. */
enum lst_gateway_outcome lst_gw_take_msgid(struct lst_buf *answer, bool post, char *msgid,
                                           struct lst_gateway_result *res);
/* ---- send_e2e_bulk, shared by lst_gateway_send_e2e_bulk and the multi client ---- */
/* Validates msgs (1..n) and appends the JSON array body to body (empty). On a local refusal
 * fills res like lst_gw_reject and returns the error. */
lst_err lst_gw_bulk_body(const struct lst_gateway_e2e *msgs, size_t n, struct lst_buf *body,
                         struct lst_gateway_result *res);
/* The request of a JSON POST with from and secret in the query string and a JSON answer. body
 * is borrowed for as long as rq is used. */
void lst_gw_json_request(struct lst_gw_request *rq, const char *endpoint, const char *path,
                         const struct lst_buf *body);
/* Parses the 2xx answer of send_e2e_bulk into items[0..n) (request order); a malformed answer
 * makes res RETRY and in doubt. Returns res->outcome. */
enum lst_gateway_outcome lst_gw_bulk_answer(const struct lst_buf *answer, size_t n,
                                            struct lst_gateway_bulk_item *items,
                                            struct lst_gateway_result *res);
/* Zeroes b's whole allocation (form bodies and URLs carry the secret) and frees it. */
void lst_gw_wipe(struct lst_buf *b);

/* Appends "from=<id>&secret=<secret>" percent-encoded (form bodies). */
lst_err lst_gw_auth_form(const struct lst_gateway *gw, struct lst_buf *b);

/* Percent-encodes s[0..len) per RFC 3986: unreserved characters stay, every other byte
 * becomes %XX (uppercase). Safe in paths, query strings and form bodies. */
lst_err lst_gw_urlencode(struct lst_buf *b, const char *s, size_t len);
/* Appends "&name=<encoded value>" (no '&' when b is empty). */
lst_err lst_gw_form_add(struct lst_buf *b, const char *name, const char *value);

/* Fills res for a request refused before sending: PERMANENT, err, reason. */
enum lst_gateway_outcome lst_gw_reject(struct lst_gateway_result *res, lst_err err,
                                       const char *why);
/* Turns an OK res into RETRY for a malformed 2xx answer (a server fault). A POST may have been
 * acted upon, so it is in doubt. */
enum lst_gateway_outcome lst_gw_malformed(struct lst_gateway_result *res, bool post,
                                          const char *what);

/* Validators. */
/* Checks recipient ID, nonce and box hex of one E2E message; *why says what is wrong. */
bool lst_gw_e2e_valid(const struct lst_gateway_e2e *m, const char **why);
bool lst_gw_valid_id(const char *s);
bool lst_gw_is_hex(const char *s, size_t len);
/* Copies exactly n hex chars lowercased into out (n + 1 bytes) when s is exactly n hex chars. */
bool lst_gw_hex_copy(const char *s, size_t n, char *out);
/* Strips trailing CR, LF, space and tab from a text answer (some proxies append a newline). */
void lst_gw_trim_answer(struct lst_buf *b);

#endif
