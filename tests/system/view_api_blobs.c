/* Service tier of GET /api/blobs/{sha256} (services/view-api/blobs.c): the view-api
 * in-process, a redis-server of the test's own, blobs put into the view-api's blob store
 * directory as gateway-in and the send route put them (lst_blobstore_put):
 *
 *   - a PNG comes back byte for byte with image/png, Content-Length, ETag "<ref>",
 *     Cache-Control private, nosniff, Content-Disposition inline with the file name; HEAD the
 *     same headers without a body; 200 KiB of binary bytes byte for byte; the admin role too
 *   - If-None-Match with the ETag (also weak, in a list, "*") answers 304 with the ETag and
 *     no body; another tag 200
 *   - text/html and image/svg+xml are sent as attachment (never rendered in the app's
 *     origin); a blob without metadata as application/octet-stream, attachment
 *   - 404 blob-not-found for an unknown ref and for an erased one (bytes and metadata gone),
 *     also with its old ETag
 *   - 400 invalid-blob-ref for "../etc/passwd" percent-encoded (curl would resolve a plain
 *     "../" itself), "..", "/etc/passwd", uppercase hex, 63 and 65 characters, "<ref>.json";
 *     404 not-found for the collection ("/api/blobs/", no listing), a plain "../../etc/passwd"
 *     (resolved by curl to /api/etc/passwd: no route) and "%00"
 *   - 401 without or with a wrong token; CORS headers for an allowed origin, ETag and
 *     Content-Disposition exposed to the SPA's fetch()
 *   - served while the ledger refills the projections (files, not Redis)
 *
 * The incoming photo of a simulated driver, end to end through gateway-in and the ledger, is
 * fetched in system_mission_e2e (tests/system/mission_e2e.c, steps 5 and 6). */
#include <ctype.h>

#include "view_api_common.h"

static struct harness H;
static struct lst_blobstore *BS;
static bool UP; /* the setup succeeded */

/* A 1x1 PNG, the bytes of a photo. */
static const unsigned char png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
    0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

static char ref_png[LST_BLOBSTORE_REF_HEX + 1], ref_big[LST_BLOBSTORE_REF_HEX + 1];
static char ref_html[LST_BLOBSTORE_REF_HEX + 1], ref_svg[LST_BLOBSTORE_REF_HEX + 1];
static char ref_nometa[LST_BLOBSTORE_REF_HEX + 1];
static unsigned char big[200 * 1024];

static void put(const void *data, size_t len, const char *mime, const char *filename,
                char ref[LST_BLOBSTORE_REF_HEX + 1])
{
    struct lst_blob_desc d = {.mime = mime, .filename = filename, .source = "gateway-in"};
    REQUIRE(lst_blobstore_put(BS, data, len, &d, ref) == LST_OK);
}

/* The value of response header name ("" when absent), case-insensitive. */
static const char *hval(const struct http_result *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    out[0] = '\0';
    for (const char *p = r->headers.data; p != NULL && *p != '\0';) {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL)
            break;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1 + strspn(p + n + 1, " ");
            snprintf(out, cap, "%.*s", (int)(eol - v), v);
            break;
        }
        p = eol + 2;
    }
    return out;
}

static long blob(const char *ref, const char *token, const char *const *headers,
                 struct http_result *r)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/blobs/%s", ref);
    return http(&H, "GET", path, token, NULL, NULL, 0, headers, r);
}

static void check_problem(struct http_result *r, long status, const char *slug)
{
    char want[128], v[128];
    snprintf(want, sizeof(want), "urn:leitstand:problem:%s", slug);
    CHECK_EQ(r->status, status);
    CHECK_STREQ(S(jstr(r->json, "type")), want);
    CHECK_STREQ(hval(r, "Content-Type", v, sizeof(v)), "application/problem+json");
}

static void test_setup(void)
{
    REQUIRE(harness_start(&H, NULL, NULL, NULL));
    REQUIRE(lst_blobstore_create(H.blob_dir, &BS) == LST_OK);
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 131u + (i >> 9));
    put(png, sizeof(png), "image/png", "Lieferschein Tour 17.png", ref_png);
    put(big, sizeof(big), "image/jpeg", NULL, ref_big);
    const char html[] = "<html><script>alert(document.cookie)</script></html>";
    put(html, sizeof(html) - 1, "text/html", "x.html", ref_html);
    const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    put(svg, sizeof(svg) - 1, "image/svg+xml", "x.svg", ref_svg);
    put("no metadata", 11, "text/plain", NULL, ref_nometa);
    char meta[512];
    REQUIRE(lst_blobstore_path(BS, ref_nometa, meta, sizeof(meta) - 5) == LST_OK);
    strcat(meta, ".json");
    REQUIRE(unlink(meta) == 0);
    UP = true;
}

static void test_photo_bytes_and_headers(void)
{
    REQUIRE(UP);
    struct http_result r;
    char v[256], want[256];
    CHECK_EQ(blob(ref_png, TOKEN_DISPATCHER, NULL, &r), 200);
    CHECK(r.body.len == sizeof(png) && memcmp(r.body.data, png, sizeof(png)) == 0);
    CHECK_STREQ(hval(&r, "Content-Type", v, sizeof(v)), "image/png");
    snprintf(want, sizeof(want), "%zu", sizeof(png));
    CHECK_STREQ(hval(&r, "Content-Length", v, sizeof(v)), want);
    snprintf(want, sizeof(want), "\"%s\"", ref_png);
    CHECK_STREQ(hval(&r, "ETag", v, sizeof(v)), want);
    CHECK(strncmp(hval(&r, "Cache-Control", v, sizeof(v)), "private, max-age=", 17) == 0);
    CHECK_STREQ(hval(&r, "X-Content-Type-Options", v, sizeof(v)), "nosniff");
    CHECK_STREQ(hval(&r, "Content-Disposition", v, sizeof(v)),
                "inline; filename*=UTF-8''Lieferschein%20Tour%2017.png");
    CHECK(strstr(hval(&r, "Content-Security-Policy", v, sizeof(v)), "sandbox") != NULL);
    http_result_cleanup(&r);
    /* HEAD: the same headers, no body */
    char path[128];
    snprintf(path, sizeof(path), "/api/blobs/%s", ref_png);
    CHECK_EQ(http(&H, "HEAD", path, TOKEN_DISPATCHER, NULL, NULL, 0, NULL, &r), 200);
    CHECK_EQ(r.body.len, 0);
    snprintf(want, sizeof(want), "%zu", sizeof(png));
    CHECK_STREQ(hval(&r, "Content-Length", v, sizeof(v)), want);
    CHECK_STREQ(hval(&r, "Content-Type", v, sizeof(v)), "image/png");
    http_result_cleanup(&r);
    /* larger than a socket buffer, every byte value; the admin role reads blobs too */
    CHECK_EQ(blob(ref_big, TOKEN_ADMIN, NULL, &r), 200);
    CHECK(r.body.len == sizeof(big) && memcmp(r.body.data, big, sizeof(big)) == 0);
    CHECK_STREQ(hval(&r, "Content-Type", v, sizeof(v)), "image/jpeg");
    CHECK_STREQ(hval(&r, "Content-Disposition", v, sizeof(v)), "inline");
    char got[LST_BLOBSTORE_REF_HEX + 1];
    lst_blobstore_ref_of(r.body.data, r.body.len, got);
    CHECK_STREQ(got, ref_big);
    http_result_cleanup(&r);
}

static void check_304(const char *inm, long want)
{
    struct http_result r;
    char hdr[256], v[128], etag[80];
    const char *headers[] = {hdr, NULL};
    snprintf(hdr, sizeof(hdr), "If-None-Match: %s", inm);
    CHECK_EQ(blob(ref_png, TOKEN_DISPATCHER, headers, &r), want);
    snprintf(etag, sizeof(etag), "\"%s\"", ref_png);
    CHECK_STREQ(hval(&r, "ETag", v, sizeof(v)), etag);
    CHECK_EQ(r.body.len, want == 304 ? 0 : sizeof(png));
    http_result_cleanup(&r);
}

static void test_if_none_match(void)
{
    REQUIRE(UP);
    char tag[200];
    snprintf(tag, sizeof(tag), "\"%s\"", ref_png);
    check_304(tag, 304);
    snprintf(tag, sizeof(tag), "W/\"%s\"", ref_png);
    check_304(tag, 304);
    snprintf(tag, sizeof(tag), "\"%s\", \"%s\"", ref_big, ref_png);
    check_304(tag, 304);
    check_304("*", 304);
    snprintf(tag, sizeof(tag), "\"%s\"", ref_big);
    check_304(tag, 200);
    snprintf(tag, sizeof(tag), "%s", ref_png); /* not quoted: not an entity tag */
    check_304(tag, 200);
}

static void check_type(const char *ref, const char *ctype, const char *disp)
{
    struct http_result r;
    char v[256];
    CHECK_EQ(blob(ref, TOKEN_DISPATCHER, NULL, &r), 200);
    CHECK_STREQ(hval(&r, "Content-Type", v, sizeof(v)), ctype);
    CHECK_STREQ(hval(&r, "Content-Disposition", v, sizeof(v)), disp);
    CHECK_STREQ(hval(&r, "X-Content-Type-Options", v, sizeof(v)), "nosniff");
    http_result_cleanup(&r);
}

static void test_hostile_types_are_attachments(void)
{
    REQUIRE(UP);
    check_type(ref_html, "text/html", "attachment; filename*=UTF-8''x.html");
    check_type(ref_svg, "image/svg+xml", "attachment; filename*=UTF-8''x.svg");
    check_type(ref_nometa, "application/octet-stream", "attachment");
}

static void test_unknown_and_erased_404(void)
{
    REQUIRE(UP);
    struct http_result r;
    char ref[LST_BLOBSTORE_REF_HEX + 1], path[512], hdr[100];
    lst_blobstore_ref_of("never stored", 12, ref);
    CHECK_EQ(blob(ref, TOKEN_DISPATCHER, NULL, &r), 404);
    check_problem(&r, 404, "blob-not-found");
    http_result_cleanup(&r);
    /* what the erasure does (gdpr.c blob_delete): bytes and metadata removed */
    char gone[LST_BLOBSTORE_REF_HEX + 1];
    put("erased photo", 12, "image/jpeg", "e.jpg", gone);
    CHECK_EQ(blob(gone, TOKEN_DISPATCHER, NULL, &r), 200);
    http_result_cleanup(&r);
    REQUIRE(lst_blobstore_path(BS, gone, path, sizeof(path) - 5) == LST_OK);
    CHECK_EQ(unlink(path), 0);
    strcat(path, ".json");
    CHECK_EQ(unlink(path), 0);
    CHECK_EQ(blob(gone, TOKEN_DISPATCHER, NULL, &r), 404);
    check_problem(&r, 404, "blob-not-found");
    http_result_cleanup(&r);
    snprintf(hdr, sizeof(hdr), "If-None-Match: \"%s\"", gone);
    const char *headers[] = {hdr, NULL};
    CHECK_EQ(blob(gone, TOKEN_DISPATCHER, headers, &r), 404);
    http_result_cleanup(&r);
}

static void test_malformed_400(void)
{
    REQUIRE(UP);
    char upper[LST_BLOBSTORE_REF_HEX + 1], s63[64], s65[66], json[80];
    for (size_t i = 0; i <= LST_BLOBSTORE_REF_HEX; i++)
        upper[i] = (char)toupper((unsigned char)ref_png[i]);
    snprintf(s63, sizeof(s63), "%.63s", ref_png);
    snprintf(s65, sizeof(s65), "%s0", ref_png);
    snprintf(json, sizeof(json), "%s.json", ref_png);
    const char *bad[] = {"..%2F..%2F..%2Fetc%2Fpasswd",
                         "%2e%2e%2fetc%2fpasswd",
                         "%2e%2e",
                         upper,
                         s63,
                         s65,
                         json,
                         "%2Fetc%2Fpasswd"};
    for (size_t i = 0; i < LST_ARRAY_LEN(bad); i++) {
        struct http_result r;
        blob(bad[i], TOKEN_DISPATCHER, NULL, &r);
        if (r.status != 400)
            fprintf(stderr, "  %s -> %ld\n", bad[i], r.status);
        check_problem(&r, 400, "invalid-blob-ref");
        http_result_cleanup(&r);
    }
    /* no blob's path: the collection (no listing), a plain "../" that curl resolves
     * (/api/etc/passwd: no route), an encoded NUL (the HTTP server finds no route) */
    const char *none[] = {"", "../../etc/passwd", "%00"};
    for (size_t i = 0; i < LST_ARRAY_LEN(none); i++) {
        struct http_result r;
        blob(none[i], TOKEN_DISPATCHER, NULL, &r);
        if (r.status != 404)
            fprintf(stderr, "  %s -> %ld\n", none[i], r.status);
        check_problem(&r, 404, "not-found");
        http_result_cleanup(&r);
    }
}

static void test_auth_and_cors(void)
{
    REQUIRE(UP);
    struct http_result r;
    char v[128];
    CHECK_EQ(blob(ref_png, NULL, NULL, &r), 401);
    check_problem(&r, 401, "unauthorized");
    CHECK(has_header(&r, "WWW-Authenticate: Bearer"));
    http_result_cleanup(&r);
    CHECK_EQ(blob(ref_png, "not-a-token", NULL, &r), 401);
    http_result_cleanup(&r);
    /* the token comes before the ref is even looked at */
    CHECK_EQ(blob("..%2Fx", NULL, NULL, &r), 401);
    http_result_cleanup(&r);
    const char *origin[] = {"Origin: " ORIGIN_OK, NULL};
    CHECK_EQ(blob(ref_png, TOKEN_DISPATCHER, origin, &r), 200);
    CHECK_STREQ(hval(&r, "Access-Control-Allow-Origin", v, sizeof(v)), ORIGIN_OK);
    /* the SPA's fetch() sees only the headers exposed to it: the blob's cache key and file
     * name, besides a send's Location and a 503's Retry-After */
    static const char *const exposed[] = {"ETag", "Content-Disposition", "Location", "Retry-After"};
    hval(&r, "Access-Control-Expose-Headers", v, sizeof(v));
    for (size_t i = 0; i < LST_ARRAY_LEN(exposed); i++) {
        if (strstr(v, exposed[i]) == NULL) {
            fprintf(stderr, "  Access-Control-Expose-Headers: %s, without %s\n", v, exposed[i]);
            lst_test_failed_checks++;
        }
    }
    http_result_cleanup(&r);
}

/* Blobs are files, not projections: a refill (503 on the timeline) does not hold them up. */
static void test_served_during_refill(void)
{
    REQUIRE(UP);
    struct http_result r;
    redisReply *info = redisCommand(H.rc, "INFO server");
    const char *p =
        info != NULL && info->type == REDIS_REPLY_STRING ? strstr(info->str, "run_id:") : NULL;
    REQUIRE(p != NULL);
    char run_id[64];
    snprintf(run_id, sizeof(run_id), "%.*s", (int)strcspn(p + 7, "\r\n"), p + 7);
    freeReplyObject(info);
    rcmd(&H, "HSET lst:lg:refill run %s", run_id);
    rcmd(&H, "HSET lst:lg:refill lst.message:3 4711");
    int64_t until = lst_mono_ms() + 3000;
    long st;
    while ((st = get(&H, "/api/timeline", TOKEN_DISPATCHER, &r)) != 503 && lst_mono_ms() < until) {
        http_result_cleanup(&r);
        lst_sleep_ms(20, NULL);
    }
    CHECK_EQ(st, 503);
    http_result_cleanup(&r);
    CHECK_EQ(blob(ref_png, TOKEN_DISPATCHER, NULL, &r), 200);
    CHECK(r.body.len == sizeof(png));
    http_result_cleanup(&r);
    rcmd(&H, "DEL lst:lg:refill");
}

static void test_teardown(void)
{
    lst_blobstore_destroy(BS);
    harness_stop(&H);
}

LST_TEST_MAIN(T(test_setup), T(test_photo_bytes_and_headers), T(test_if_none_match),
              T(test_hostile_types_are_attachments), T(test_unknown_and_erased_404),
              T(test_malformed_400), T(test_auth_and_cors), T(test_served_during_refill),
              T(test_teardown))
