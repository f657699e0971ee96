/* Gateway client: lifecycle, the libcurl transport and the outcome classification. The
 * endpoints are in gateway_endpoints.c and gateway_bulk.c. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_internal.h"
#include "lst/gateway.h"
#include "lst/log.h"

#ifndef LST_VERSION
#define LST_VERSION "0"
#endif
#define KEEPALIVE_IDLE_S  30
#define KEEPALIVE_INTVL_S 15

/* ---- classification ---- */

const char *lst_gateway_outcome_name(enum lst_gateway_outcome outcome)
{
    switch (outcome) {
    case LST_GATEWAY_OK:
        return "ok";
    case LST_GATEWAY_RETRY:
        return "retry";
    case LST_GATEWAY_PAUSE:
        return "pause";
    case LST_GATEWAY_FATAL:
        return "fatal";
    case LST_GATEWAY_PERMANENT:
        return "permanent";
    }
    return "unknown";
}

/* Transport errors that retrying cannot cure: the configuration (URL, CA file, TLS setup) or
 * the server's identity is wrong. Every other CURLcode is transient (RETRY). A failed
 * certificate verification is FATAL rather than RETRY because it needs an operator (a missing
 * CA, a wrong host, or an attack): retrying quietly would hide it. */
static const CURLcode fatal_curl_codes[] = {
    CURLE_UNSUPPORTED_PROTOCOL,
    CURLE_URL_MALFORMAT,
    CURLE_NOT_BUILT_IN,
    CURLE_FUNCTION_NOT_FOUND,
    CURLE_BAD_FUNCTION_ARGUMENT,
    CURLE_TOO_MANY_REDIRECTS,
    CURLE_UNKNOWN_OPTION,
    CURLE_SSL_ENGINE_NOTFOUND,
    CURLE_SSL_ENGINE_SETFAILED,
    CURLE_SSL_CERTPROBLEM,
    CURLE_SSL_CIPHER,
    CURLE_PEER_FAILED_VERIFICATION,
    CURLE_SSL_CACERT_BADFILE,
    CURLE_SSL_CRL_BADFILE,
    CURLE_SSL_ISSUER_ERROR,
    CURLE_SSL_PINNEDPUBKEYNOTMATCH,
    CURLE_SSL_INVALIDCERTSTATUS,
};

/* HTTP status ranges, first match wins. */
static const struct {
    long lo, hi;
    enum lst_gateway_outcome outcome;
} status_table[] = {
    {200, 299, LST_GATEWAY_OK},        /* the answer is validated by the endpoint */
    {300, 399, LST_GATEWAY_FATAL},     /* redirects are not followed: the base URL is wrong */
    {401, 401, LST_GATEWAY_FATAL},     /* wrong from / secret */
    {402, 402, LST_GATEWAY_PAUSE},     /* no credits */
    {408, 408, LST_GATEWAY_RETRY},     /* request timeout: transient by definition */
    {429, 429, LST_GATEWAY_RETRY},     /* rate limited */
    {400, 499, LST_GATEWAY_PERMANENT}, /* 400, 404, 413 and every other 4xx */
    {500, 599, LST_GATEWAY_RETRY},     /* server faults */
};

enum lst_gateway_outcome lst_gateway_classify(long http_status, int curl_error)
{
    if (curl_error != CURLE_OK) {
        for (size_t i = 0; i < LST_ARRAY_LEN(fatal_curl_codes); i++) {
            if ((int)fatal_curl_codes[i] == curl_error)
                return LST_GATEWAY_FATAL;
        }
        return LST_GATEWAY_RETRY;
    }
    for (size_t i = 0; i < LST_ARRAY_LEN(status_table); i++) {
        if (http_status >= status_table[i].lo && http_status <= status_table[i].hi)
            return status_table[i].outcome;
    }
    /* No status, 1xx as final answer, or out of range: a garbled exchange. */
    return LST_GATEWAY_RETRY;
}

/* ---- helpers shared with the endpoint files ---- */

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

lst_err lst_gw_urlencode(struct lst_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i = 0;
    while (i < len) {
        /* Runs of unreserved characters (all of a hex value) go in one append. */
        size_t run = i;
        while (run < len && unreserved((unsigned char)s[run]))
            run++;
        if (run > i)
            lst_buf_append(b, s + i, run - i);
        if (run == len)
            break;
        unsigned char c = (unsigned char)s[run];
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        lst_buf_append(b, esc, 3);
        i = run + 1;
    }
    return lst_buf_failed(b) ? LST_ERR_NOMEM : LST_OK;
}

lst_err lst_gw_form_add(struct lst_buf *b, const char *name, const char *value)
{
    if (b->len > 0)
        lst_buf_append(b, "&", 1);
    lst_buf_puts(b, name);
    lst_buf_append(b, "=", 1);
    return lst_gw_urlencode(b, value, strlen(value));
}

lst_err lst_gw_auth_form(const struct lst_gateway *gw, struct lst_buf *b)
{
    if (gw->auth_query != NULL) {
        /* Encoded once at create: the same "from=..&secret=.." as the query string. */
        if (b->len > 0)
            lst_buf_append(b, "&", 1);
        lst_buf_puts(b, gw->auth_query);
        return lst_buf_failed(b) ? LST_ERR_NOMEM : LST_OK;
    }
    lst_gw_form_add(b, "from", gw->id);
    return lst_gw_form_add(b, "secret", gw->secret);
}

static void set_reason(struct lst_gateway_result *res, const char *why)
{
    snprintf(res->reason, sizeof(res->reason), "%s", why);
}

enum lst_gateway_outcome lst_gw_reject(struct lst_gateway_result *res, lst_err err, const char *why)
{
    memset(res, 0, sizeof(*res));
    res->outcome = LST_GATEWAY_PERMANENT;
    res->err = err;
    snprintf(res->reason, sizeof(res->reason), "rejected locally: %s", why);
    return res->outcome;
}

enum lst_gateway_outcome lst_gw_malformed(struct lst_gateway_result *res, bool post,
                                          const char *what)
{
    res->outcome = LST_GATEWAY_RETRY;
    res->err = LST_ERR_INVALID;
    res->in_doubt = post;
    snprintf(res->reason, sizeof(res->reason), "http %ld with malformed answer: %s",
             res->http_status, what);
    return res->outcome;
}

bool lst_gw_is_hex(const char *s, size_t len)
{
    /* Branch-free per character: boxes are up to 8000 hex characters per send. */
    static const uint8_t is_hex[256] = {
        ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
        ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
        ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    };
    unsigned ok = 1;
    for (size_t i = 0; i < len; i++)
        ok &= is_hex[(unsigned char)s[i]];
    return ok != 0;
}

bool lst_gw_hex_copy(const char *s, size_t n, char *out)
{
    if (s == NULL || strlen(s) != n || !lst_gw_is_hex(s, n))
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] - 'A' + 'a') : s[i];
    out[n] = '\0';
    return true;
}

bool lst_gw_valid_id(const char *s)
{
    if (s == NULL || strlen(s) != LST_GATEWAY_ID_LEN)
        return false;
    for (size_t i = 0; i < LST_GATEWAY_ID_LEN; i++) {
        char c = s[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c == '*' && i == 0);
        if (!ok)
            return false;
    }
    return true;
}

void lst_gw_trim_answer(struct lst_buf *b)
{
    while (b->len > 0) {
        char c = b->data[b->len - 1];
        if (c != '\r' && c != '\n' && c != ' ' && c != '\t')
            break;
        b->data[--b->len] = '\0';
    }
}

/* ---- lifecycle ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init_once(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

lst_err lst_gateway_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return global_rc == CURLE_OK ? LST_OK : LST_ERR_HTTP;
}

void lst_gateway_destroy(struct lst_gateway *gw)
{
    if (gw == NULL)
        return;
    lst_gw_xfer_cleanup(&gw->x);
    if (gw->lock_ready)
        pthread_mutex_destroy(&gw->lock);
    free(gw->base_url);
    free(gw->auth_query);
    free(gw->id);
    free(gw->secret);
    free(gw->secret_enc);
    free(gw->user_agent);
    free(gw->ca_file);
    free(gw);
}

lst_err lst_gateway_set_request_id(struct lst_gateway *gw, const char *request_id)
{
    pthread_mutex_lock(&gw->lock);
    lst_err err = lst_gw_set_request_id(&gw->x, request_id);
    pthread_mutex_unlock(&gw->lock);
    return err;
}

static lst_err check_base_url(const char *url)
{
    bool http = strncmp(url, "http://", 7) == 0;
    bool https = strncmp(url, "https://", 8) == 0;
    if (!http && !https)
        return LST_ERR_CONFIG;
    if (strlen(url) <= (http ? 7u : 8u) || strpbrk(url, "?# \r\n") != NULL)
        return LST_ERR_CONFIG;
    return LST_OK;
}

static lst_err copy_config(struct lst_gateway *gw, const struct lst_gateway_config *cfg)
{
    const char *base = cfg->base_url ? cfg->base_url : LST_GATEWAY_DEFAULT_URL;
    gw->base_url = lst_strdup(base);
    gw->id = lst_strdup(cfg->gateway_id);
    gw->secret = lst_strdup(cfg->secret);
    gw->user_agent = lst_strdup(cfg->user_agent ? cfg->user_agent : "leitstand/" LST_VERSION);
    gw->ca_file = cfg->ca_file ? lst_strdup(cfg->ca_file) : NULL;
    if (!gw->base_url || !gw->id || !gw->secret || !gw->user_agent ||
        (cfg->ca_file && !gw->ca_file))
        return LST_ERR_NOMEM;
    size_t n = strlen(gw->base_url);
    while (n > 0 && gw->base_url[n - 1] == '/')
        gw->base_url[--n] = '\0';
    gw->connect_ms =
        cfg->connect_timeout_ms ? cfg->connect_timeout_ms : LST_GATEWAY_DEFAULT_CONNECT_MS;
    gw->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : LST_GATEWAY_DEFAULT_TIMEOUT_MS;
    gw->max_blob = cfg->max_blob ? cfg->max_blob : LST_GATEWAY_DEFAULT_MAX_BLOB;
    return LST_OK;
}

static lst_err build_auth(struct lst_gateway *gw)
{
    struct lst_buf b;
    lst_buf_init(&b);
    lst_gw_urlencode(&b, gw->secret, strlen(gw->secret));
    gw->secret_enc = lst_buf_steal(&b);
    lst_gw_auth_form(gw, &b);
    gw->auth_query = lst_buf_steal(&b);
    lst_buf_cleanup(&b);
    if (gw->secret_enc == NULL || gw->auth_query == NULL)
        return LST_ERR_NOMEM;
    lst_err err = lst_log_add_secret(gw->secret);
    if (err == LST_OK && strcmp(gw->secret, gw->secret_enc) != 0)
        err = lst_log_add_secret(gw->secret_enc);
    return err;
}

static lst_err validate_config(const struct lst_gateway_config *cfg)
{
    if (cfg == NULL || !lst_gw_valid_id(cfg->gateway_id) || cfg->gateway_id[0] != '*')
        return LST_ERR_CONFIG;
    if (cfg->secret == NULL || cfg->secret[0] == '\0')
        return LST_ERR_CONFIG;
    if (cfg->base_url != NULL && check_base_url(cfg->base_url) != LST_OK)
        return LST_ERR_CONFIG;
    if (cfg->connect_timeout_ms < 0 || cfg->timeout_ms < 0)
        return LST_ERR_CONFIG;
    return LST_OK;
}

lst_err lst_gateway_create(const struct lst_gateway_config *cfg, struct lst_gateway **out)
{
    struct lst_gateway *gw = NULL;
    lst_err err = validate_config(cfg);
    if (err != LST_OK) {
        LST_ERROR("gateway.config", "gateway client: invalid gateway id, secret, base url or "
                                    "timeouts");
        goto out;
    }
    err = lst_gateway_global_init();
    if (err != LST_OK)
        goto out;
    gw = calloc(1, sizeof(*gw));
    if (gw == NULL) {
        err = LST_ERR_NOMEM;
        goto out;
    }
    err = lst_gw_xfer_init(&gw->x);
    if (err == LST_OK)
        err = copy_config(gw, cfg);
    if (err == LST_OK)
        err = build_auth(gw);
    if (err != LST_OK)
        goto out;
    if (pthread_mutex_init(&gw->lock, NULL) != 0) {
        err = LST_ERR_NOMEM;
        goto out;
    }
    gw->lock_ready = true;
    *out = gw;
    gw = NULL;
out:
    lst_gateway_destroy(gw);
    return err;
}

/* ---- the transport ---- */

lst_err lst_gw_xfer_init(struct lst_gw_xfer *x)
{
    memset(x, 0, sizeof(*x));
    lst_buf_init(&x->url);
    x->curl = curl_easy_init();
    return x->curl != NULL ? LST_OK : LST_ERR_HTTP;
}

void lst_gw_xfer_cleanup(struct lst_gw_xfer *x)
{
    if (x->curl != NULL)
        curl_easy_cleanup(x->curl);
    x->curl = NULL;
    lst_gw_wipe(&x->url); /* already wiped after every call; a half-run one is not */
}

lst_err lst_gw_set_request_id(struct lst_gw_xfer *x, const char *request_id)
{
    size_t len = request_id != NULL ? strlen(request_id) : 0;
    if (len > LST_GATEWAY_REQUEST_ID_MAX)
        return LST_ERR_INVALID;
    for (size_t i = 0; i < len; i++) {
        /* Printable ASCII only: a CR or LF would inject headers. */
        if (request_id[i] < '!' || request_id[i] > '~')
            return LST_ERR_INVALID;
    }
    if (len == 0)
        x->request_id_header[0] = '\0';
    else
        snprintf(x->request_id_header, sizeof(x->request_id_header), "X-Request-Id: %s",
                 request_id);
    return LST_OK;
}

/* Where a 2xx answer goes. Error bodies say nothing useful (docs): they are dropped as they
 * arrive, so their size costs no memory and only the total timeout bounds them. */
static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
    struct lst_gw_sink *s = ud;
    size_t n = size * nmemb;
    if (!s->decided) {
        long status = 0;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
        s->keep = status >= 200 && status <= 299;
        s->decided = true;
    }
    if (!s->keep)
        return n;
    if (n > s->cap - s->buf->len) {
        s->over = true;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    return lst_buf_append(s->buf, data, n) == LST_OK ? n : 0;
}

/* Options every call needs. curl_easy_reset before them keeps the live connections (and the
 * DNS and TLS session caches) but clears the previous call's method, body and headers. */
static lst_err set_common(const struct lst_gateway *gw, struct lst_gw_xfer *x)
{
    CURL *c = x->curl;
    CURLcode rc = CURLE_OK;
    curl_easy_reset(c);
    rc |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
    rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    rc |= curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, (long)KEEPALIVE_IDLE_S);
    rc |= curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, (long)KEEPALIVE_INTVL_S);
    rc |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, gw->connect_ms);
    rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, gw->timeout_ms);
    rc |= curl_easy_setopt(c, CURLOPT_USERAGENT, gw->user_agent);
    if (gw->ca_file != NULL)
        rc |= curl_easy_setopt(c, CURLOPT_CAINFO, gw->ca_file);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    return rc == CURLE_OK ? LST_OK : LST_ERR_HTTP;
}

/* The common options stay on the handle between calls (resetting and setting them again
 * was a measurable part of every send); each call sets its URL, headers, method and body,
 * which replace the previous call's. A multipart upload leaves a MIME post behind, and a call
 * that failed to prepare may leave anything: the next call starts from a reset handle. */
static lst_err prepare_handle(const struct lst_gateway *gw, struct lst_gw_xfer *x)
{
    lst_err err = LST_OK;
    if (!x->primed)
        err = set_common(gw, x);
    x->primed = err == LST_OK;
    x->errbuf[0] = '\0';
    if (err == LST_OK && curl_easy_setopt(x->curl, CURLOPT_WRITEDATA, &x->sink) != CURLE_OK)
        err = LST_ERR_HTTP;
    return err;
}

static lst_err build_url(const struct lst_gateway *gw, const struct lst_gw_request *rq,
                         struct lst_buf *url)
{
    lst_buf_puts(url, gw->base_url);
    lst_buf_puts(url, rq->path);
    if (rq->auth_in_query) {
        lst_buf_append(url, "?", 1);
        lst_buf_puts(url, gw->auth_query);
    }
    if (rq->extra_query != NULL) {
        lst_buf_puts(url, rq->auth_in_query ? "&" : "?");
        lst_buf_puts(url, rq->extra_query);
    }
    return lst_buf_failed(url) ? LST_ERR_NOMEM : LST_OK;
}

static void link_header(struct lst_gw_headers *h, size_t *n, char *line)
{
    h->node[*n].data = line;
    h->node[*n].next = NULL;
    if (*n > 0)
        h->node[*n - 1].next = &h->node[*n];
    (*n)++;
}

/* Method, body and headers of one request. x->mime and x->hdrs are freed or forgotten by
 * lst_gw_xfer_end. */
static lst_err set_request(struct lst_gw_xfer *x, const struct lst_gw_request *rq)
{
    static char expect[] = "Expect:";
    CURL *c = x->curl;
    struct lst_gw_headers *hdrs = &x->hdrs;
    CURLcode rc = CURLE_OK;
    size_t n = 0;
    /* curl sends "Expect: 100-continue" before larger bodies and then waits up to a second
     * for a 100 the server may never send; the Gateway's bodies are small or wanted anyway. */
    link_header(hdrs, &n, expect);
    if (rq->content_type != NULL) {
        snprintf(hdrs->content_type, sizeof(hdrs->content_type), "Content-Type: %s",
                 rq->content_type);
        link_header(hdrs, &n, hdrs->content_type);
    }
    if (x->request_id_header[0] != '\0')
        link_header(hdrs, &n, x->request_id_header); /* stable while the transfer runs */
    rc |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, &hdrs->node[0]);
    if (rq->blob != NULL) {
        x->mime = curl_mime_init(c);
        curl_mimepart *part = x->mime ? curl_mime_addpart(x->mime) : NULL;
        if (part == NULL)
            return LST_ERR_NOMEM;
        rc |= curl_mime_name(part, "blob");
        rc |= curl_mime_filename(part, "blob");
        rc |= curl_mime_type(part, "application/octet-stream");
        rc |= curl_mime_data(part, rq->blob, rq->blob_len);
        rc |= curl_easy_setopt(c, CURLOPT_MIMEPOST, x->mime);
    } else if (rq->post) {
        rc |= curl_easy_setopt(c, CURLOPT_POST, 1L);
        rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
    } else {
        rc |= curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    return rc == CURLE_OK ? LST_OK : LST_ERR_HTTP;
}

/* A curl error text may name the host; it must never carry the secret. */
static void transport_reason(const struct lst_gateway *gw, const struct lst_gw_xfer *x,
                             struct lst_gateway_result *res)
{
    const char *text = x->errbuf[0] ? x->errbuf : curl_easy_strerror(res->curl_code);
    if (strstr(text, gw->secret) != NULL || strstr(text, gw->secret_enc) != NULL)
        text = curl_easy_strerror(res->curl_code);
    if (res->curl_code == CURLE_OPERATION_TIMEDOUT)
        snprintf(res->reason, sizeof(res->reason), "timeout after %lld ms (limit %ld ms)",
                 (long long)res->elapsed_ms, gw->timeout_ms);
    else
        snprintf(res->reason, sizeof(res->reason), "transport error %d: %.120s", res->curl_code,
                 text);
}

static const char *status_text(long status)
{
    switch (status) {
    case 400:
        return "bad request";
    case 401:
        return "wrong gateway id or secret";
    case 402:
        return "no credits left";
    case 404:
        return "not found";
    case 413:
        return "too large";
    case 429:
        return "rate limited";
    case 500:
        return "server fault";
    default:
        return "unexpected status";
    }
}

/* Classifies a finished transfer into res. */
static void finish(const struct lst_gateway *gw, const struct lst_gw_xfer *x, CURLcode rc,
                   struct lst_gateway_result *res)
{
    const struct lst_gw_request *rq = x->rq;
    const struct lst_gw_sink *sink = &x->sink;
    long request_size = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &res->http_status);
    curl_easy_getinfo(x->curl, CURLINFO_NUM_CONNECTS, &res->connects);
    curl_easy_getinfo(x->curl, CURLINFO_REQUEST_SIZE, &request_size);
    curl_off_t retry_after = 0; /* libcurl parses both forms of the header (7.66+) */
    if (curl_easy_getinfo(x->curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
        retry_after > 0)
        res->retry_after_ms = retry_after > 86400 ? 86400000 : (int64_t)retry_after * 1000;
    res->curl_code = (int)rc;
    res->outcome = lst_gateway_classify(res->http_status, (int)rc);
    if (sink->over) {
        /* A success answer above its cap: a blob that will never fit is the item's problem;
         * a text or JSON answer that large is a broken server. */
        res->outcome = rq->oversize_permanent ? LST_GATEWAY_PERMANENT : LST_GATEWAY_RETRY;
        res->err = LST_ERR_TOO_LARGE;
        snprintf(res->reason, sizeof(res->reason), "http %ld answer above %zu bytes",
                 res->http_status, sink->cap);
    } else if (rc != CURLE_OK) {
        res->err = rc == CURLE_OPERATION_TIMEDOUT ? LST_ERR_TIMEOUT
                   : rc == CURLE_OUT_OF_MEMORY    ? LST_ERR_NOMEM
                                                  : LST_ERR_HTTP;
        transport_reason(gw, x, res);
    } else if (res->outcome != LST_GATEWAY_OK) {
        res->err = LST_ERR_HTTP;
        snprintf(res->reason, sizeof(res->reason), "http %ld: %s", res->http_status,
                 status_text(res->http_status));
    } else {
        snprintf(res->reason, sizeof(res->reason), "http %ld", res->http_status);
    }
    /* The request left us and no clear answer came back: the Gateway may have acted on it. */
    bool unclear = res->http_status == 0 || (res->http_status >= 200 && res->http_status < 300);
    res->in_doubt = rq->post && res->outcome == LST_GATEWAY_RETRY && request_size > 0 && unclear;
}

lst_err lst_gw_xfer_begin(const struct lst_gateway *gw, struct lst_gw_xfer *x,
                          const struct lst_gw_request *rq, struct lst_buf *answer,
                          struct lst_gateway_result *res)
{
    x->sink = (struct lst_gw_sink){.curl = x->curl, .buf = answer, .cap = rq->max_answer};
    x->rq = rq;
    x->mime = NULL;
    lst_buf_reset(&x->url);
    lst_err err = prepare_handle(gw, x);
    if (err == LST_OK)
        err = build_url(gw, rq, &x->url);
    if (err == LST_OK && curl_easy_setopt(x->curl, CURLOPT_URL, x->url.data) != CURLE_OK)
        err = LST_ERR_NOMEM;
    if (err == LST_OK)
        err = set_request(x, rq);
    if (err != LST_OK) {
        x->primed = false;
        res->outcome = LST_GATEWAY_RETRY;
        res->err = err;
        set_reason(res, "could not prepare the request");
        lst_gw_xfer_end(x);
        return err;
    }
    x->t0 = lst_mono_ms();
    return LST_OK;
}

void lst_gw_xfer_finish(const struct lst_gateway *gw, struct lst_gw_xfer *x, CURLcode rc,
                        struct lst_gateway_result *res)
{
    res->elapsed_ms = lst_mono_ms() - x->t0;
    finish(gw, x, rc, res);
    lst_gw_xfer_end(x);
}

void lst_gw_xfer_end(struct lst_gw_xfer *x)
{
    /* The header list is rebuilt by every call: the handle must not keep pointing at it. */
    curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, NULL);
    /* The URL may hold the secret: wipe it (the buffer is kept for the next call). */
    if (x->url.data != NULL)
        memset(x->url.data, 0, x->url.len);
    lst_buf_reset(&x->url);
    if (x->rq != NULL && x->rq->blob != NULL)
        x->primed = false; /* the MIME post stays on the handle: start the next from a reset */
    curl_mime_free(x->mime);
    x->mime = NULL;
    x->rq = NULL;
}

enum lst_gateway_outcome lst_gw_report(const struct lst_gw_request *rq,
                                       const struct lst_buf *answer, struct lst_gateway_result *res)
{
    if (lst_buf_failed(answer) && res->outcome == LST_GATEWAY_OK) {
        res->outcome = LST_GATEWAY_RETRY;
        res->err = LST_ERR_NOMEM;
        set_reason(res, "out of memory reading the answer");
    }
    LST_DEBUG("gateway.call", "%s %s: %s (%s) in %lld ms, %ld new connection(s)",
              rq->post ? "POST" : "GET", rq->endpoint, lst_gateway_outcome_name(res->outcome),
              res->reason, (long long)res->elapsed_ms, res->connects);
    return res->outcome;
}

enum lst_gateway_outcome lst_gw_perform(struct lst_gateway *gw, const struct lst_gw_request *rq,
                                        struct lst_buf *answer, struct lst_gateway_result *res)
{
    memset(res, 0, sizeof(*res));
    lst_buf_reset(answer);
    int64_t t0 = lst_mono_ms();
    pthread_mutex_lock(&gw->lock);
    if (lst_gw_xfer_begin(gw, &gw->x, rq, answer, res) == LST_OK)
        lst_gw_xfer_finish(gw, &gw->x, curl_easy_perform(gw->x.curl), res);
    pthread_mutex_unlock(&gw->lock);
    res->elapsed_ms = lst_mono_ms() - t0;
    return lst_gw_report(rq, answer, res);
}
