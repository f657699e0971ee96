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

/* The client. All fields are fixed after create except the curl handle, errbuf, primed and
 * url, which the lock guards. */
struct lst_gateway {
    pthread_mutex_t lock;
    bool lock_ready;
    CURL *curl;
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
    char errbuf[CURL_ERROR_SIZE];
    bool primed;        /* the common options are set on curl (see prepare_handle) */
    struct lst_buf url; /* the current call's URL, kept between calls (wiped after each) */
    /* "X-Request-Id: <id>" sent with every call, "" for none (lst_gateway_set_request_id). */
    char request_id_header[LST_GATEWAY_REQUEST_ID_MAX + sizeof("X-Request-Id: ")];
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
