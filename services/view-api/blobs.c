/* GET /api/blobs/{sha256}: the bytes of a blob in the company blob store (photos and files
 * drivers sent, attachments dispatchers sent), so the apps can show what items reference in
 * `blob` and `thumbnail_blob`. Sent from the file itself (lst_http_reply_fd). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lst/log.h"
#include "view_api.h"

#define BLOB_ROUTE "/api/blobs/"

/* Content-addressed, so a copy never goes stale; but an erasure deletes blobs, and a browser
 * should not keep an erased employee's photo for long: a day, not a year. */
#define BLOB_CACHE_CONTROL "private, max-age=86400, immutable"
/* Also for a hostile upload opened on its own (not as an <img>): no script, no plugin, no
 * same-origin rights. */
#define BLOB_CSP "default-src 'none'; sandbox"

/* Raster image types a browser shows inline without running anything. Not image/svg+xml: an
 * SVG is a document that can hold scripts. */
static const char *const inline_types[] = {
    "image/jpeg", "image/png",  "image/gif",  "image/webp",
    "image/bmp",  "image/avif", "image/heic", "image/heif",
};

static bool is_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$&^_.+-", c) != NULL;
}

/* True when s is exactly "type/subtype" of RFC 6838 characters: anything else in the stored
 * metadata (parameters, blanks, control characters) makes the answer application/octet-stream. */
static bool mime_ok(const char *s)
{
    size_t i = 0, slash = 0;
    for (; s != NULL && s[i] != '\0' && i <= LST_BLOBSTORE_MIME_MAX; i++) {
        if (s[i] == '/' && slash == 0 && i > 0)
            slash = i;
        else if (!is_token_char((unsigned char)s[i]))
            return false;
    }
    return slash > 0 && i > slash + 1 && i <= LST_BLOBSTORE_MIME_MAX;
}

static bool is_inline(const char *mime)
{
    for (size_t i = 0; i < LST_ARRAY_LEN(inline_types); i++) {
        if (strcasecmp(mime, inline_types[i]) == 0)
            return true;
    }
    return false;
}

/* Content-Disposition: inline for the raster images above, attachment for everything else
 * (an HTML or SVG upload is then downloaded, never rendered in the app's origin); the stored
 * file name as RFC 8187 filename* (percent-encoded UTF-8, nothing else passes). */
static void disposition(struct lst_buf *b, const char *mime, const char *filename)
{
    static const char hex[] = "0123456789ABCDEF";
    lst_buf_puts(b, is_inline(mime) ? "inline" : "attachment");
    if (filename == NULL || filename[0] == '\0' || strlen(filename) > LST_BLOBSTORE_NAME_MAX)
        return;
    lst_buf_puts(b, "; filename*=UTF-8''");
    for (const unsigned char *p = (const unsigned char *)filename; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("!#$&+-.^_`|~", *p) != NULL)
            lst_buf_append(b, p, 1);
        else
            lst_buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
    }
}

/* If-None-Match holds "*" or the blob's entity tag (weak comparison, RFC 9110 13.1.2). */
static bool none_match(const char *inm, const char *ref)
{
    const char *p = inm;
    while (p != NULL && *p != '\0') {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",");
        size_t len = n;
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        const char *tag = p;
        if (len >= 2 && strncmp(tag, "W/", 2) == 0) {
            tag += 2;
            len -= 2;
        }
        if ((len == 1 && tag[0] == '*') ||
            (len == LST_BLOBSTORE_REF_HEX + 2 && tag[0] == '"' &&
             strncmp(tag + 1, ref, LST_BLOBSTORE_REF_HEX) == 0 && tag[len - 1] == '"'))
            return true;
        p += n;
    }
    return false;
}

/* Opens the bytes of ref read-only; -1 with errno. Only a regular file counts. */
static int open_blob(struct view_api *ctx, const char *ref, uint64_t *size)
{
    char path[4200];
    struct stat st;
    if (lst_blobstore_path(ctx->blobs, ref, path, sizeof(path)) != LST_OK) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = ENOENT;
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

/* The headers every answer about an existing blob carries (200 and 304). */
static void cache_headers(struct lst_http_response *resp, const char *ref)
{
    char etag[LST_BLOBSTORE_REF_HEX + 3];
    snprintf(etag, sizeof(etag), "\"%s\"", ref);
    lst_http_add_header(resp, "ETag", etag);
    lst_http_add_header(resp, "Cache-Control", BLOB_CACHE_CONTROL);
}

/* The 200: type, disposition and the protective headers from the stored metadata (missing or
 * malformed metadata: application/octet-stream, attachment), the body from fd (owned). */
static void send_blob(struct va_req *r, const char *ref, int fd, uint64_t size)
{
    struct lst_blob_meta m = {0};
    struct lst_buf cd;
    lst_buf_init(&cd);
    bool have_meta = lst_blobstore_meta(r->ctx->blobs, ref, &m) == LST_OK;
    const char *mime = have_meta && mime_ok(m.mime) ? m.mime : "application/octet-stream";
    disposition(&cd, mime, have_meta ? m.filename : NULL);
    lst_http_reply_fd(r->resp, 200, "application/octet-stream", fd, size);
    cache_headers(r->resp, ref);
    lst_http_add_header(r->resp, "Content-Type", mime); /* replaces the literal above */
    lst_http_add_header(r->resp, "X-Content-Type-Options", "nosniff");
    lst_http_add_header(r->resp, "Content-Security-Policy", BLOB_CSP);
    if (!lst_buf_failed(&cd))
        lst_http_add_header(r->resp, "Content-Disposition", cd.data);
    else
        lst_http_add_header(r->resp, "Content-Disposition", "attachment");
    lst_buf_cleanup(&cd);
    lst_blob_meta_cleanup(&m);
}

void va_handle_blob(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct va_req r;
    if (!va_begin(ud, req, resp, VA_ROLE_DISPATCHER, &r))
        return;
    /* the ref is the whole rest of the path and exactly 64 lowercase hex: nothing the client
     * sends reaches a path but those characters ("../", "%2e", uppercase, a suffix: 400) */
    const char *ref = req->path + strlen(BLOB_ROUTE);
    if (ref[0] == '\0') { /* the collection: no listing */
        lst_http_problem(resp, 404, "not-found", "Not Found", "no such resource");
        return;
    }
    if (!lst_blobstore_ref_valid(ref)) {
        lst_http_problem(resp, 400, "invalid-blob-ref", "Invalid Blob Reference",
                         "a blob reference is the sha256 of its bytes: 64 lowercase hex digits");
        return;
    }
    if (r.ctx->blobs == NULL) {
        lst_http_problem(resp, 503, "blobstore-unavailable", "Blob Store Unavailable",
                         "the blob store could not be opened");
        lst_http_add_header(resp, "Retry-After", "5");
        return;
    }
    uint64_t size = 0;
    int fd = open_blob(r.ctx, ref, &size);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        lst_http_problem(resp, 404, "blob-not-found", "Blob Not Found",
                         "no such blob (never stored, or erased)");
        return;
    }
    if (fd < 0) {
        LST_WARN("view_api.blob_open", "blob %.12s...: %s", ref, strerror(errno));
        lst_http_problem(resp, 503, "blobstore-unavailable", "Blob Store Unavailable",
                         "the blob could not be read");
        lst_http_add_header(resp, "Retry-After", "5");
        return;
    }
    const char *inm = lst_http_header(req, "If-None-Match");
    if (inm != NULL && none_match(inm, ref)) {
        close(fd);
        lst_http_reply(resp, 304, "application/octet-stream", "", 0);
        cache_headers(resp, ref);
        return;
    }
    send_blob(&r, ref, fd, size);
}
