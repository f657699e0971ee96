/* End to end through both gateways: lst.outbound -> gateway-out -> Threema Gateway simulator
 * (its phones decrypt) -> delivery receipts and replies as callbacks -> gateway-in ->
 * lst.inbound. Real Kafka and Redis (the stack), the real service binaries, the demo Gateway
 * account of demo/, a simulator of its own on a free port.
 *
 *   1. sends: text, location, file (rendering 0) and image (a file message with rendering 1 and
 *      a thumbnail) to eight drivers of demo/erp-export.csv, addressed by Threema ID, phone or
 *      e-mail; a text without delivery receipts to two of them; a text to two employees
 *      unknown to Threema (one by phone, one by e-mail). Every request has exactly one
 *      lst.sent outcome: accepted with a Threema message ID (and the resolved Threema ID), or
 *      the final failure lookup_not_found; the simulator saw each accepted send exactly once.
 *   2. phones: every accepted message is in the recipient's inbox, decrypted, of the right
 *      type and content, file and image blobs verified by the phone.
 *   3. receipts: lst.inbound holds, for every accepted send, delivery receipts whose message IDs
 *      are the Threema IDs of lst.sent: "received" for all, "read" exactly for recipients with
 *      read receipts on, and exactly one of "acknowledged"/"declined" (the simulator is set to
 *      0.5/0.5, so with 32 sends both appear); none for the requests without receipts.
 *   4. replies: three drivers answer through POST /_sim/reply with text, location and photo;
 *      they arrive in lst.inbound with the right sender and nickname, the photo as an image
 *      whose blob is in the company blob store (hash, size, type and metadata checked).
 *   5. callbacks: gateway-in answered every callback 200 (simulator: none failed, none dropped;
 *      one lst.inbound record per callback sent; nothing in lst.inbound.dlq).
 *
 * Environment (set by tests/system/e2e_gateways/CMakeLists.txt): LST_KAFKA_BROKERS,
 * LST_REDIS_PORT (the stack), GWIN_BIN, GWIN_ADMIN, LST_SOURCE_DIR, GWIN_WORK (as the gateway-in
 * tests), E2E_GWOUT_BIN, E2E_SIM_BIN. Own topic prefix, Redis key prefix, consumer group, blob
 * directory and simulator per run; every process started dies with the driver (PDEATHSIG) and
 * is stopped at the end; the run's Redis keys are deleted, its logs and blob directory too
 * unless a check failed or E2E_KEEP=1. Every wait polls to a deadline. */
#include <math.h>

#include "e2e_common.h"
#include "lst/blobstore.h"
#include "lst/redis.h"
#include "lst_test.h"

#define NKNOWN   8 /* drivers that get every type */
#define NNOREAD  2 /* of them with read receipts off */
#define NUNKNOWN 2 /* employees unknown to Threema */
#define NQUIET   2 /* drivers that also get a text without receipts */
#define NREPLY   3 /* drivers that answer */
#define MAX_REQ  64

enum kind { K_TEXT, K_LOCATION, K_FILE, K_IMAGE, K__COUNT };
static const char *const kind_names[] = {"text", "location", "file", "image"};

struct drv {
    char employee[LST_EMPLOYEE_ID_MAX + 1];
    char first_name[64];
    char id[LST_THREEMA_ID_SIZE + 1]; /* "" when unknown to Threema */
    char phone[LST_PHONE_MAX + 1];
    char email[LST_EMAIL_MAX + 1];
    bool read_receipts;
    const char *address; /* what the requests carry: "id", "phone" or "email" */
};

struct req {
    char request_id[LST_REQUEST_ID_MAX + 1];
    const struct drv *to;
    enum kind kind;
    bool quiet; /* no_delivery_receipts (and no_push) */
    char text[128];
    /* lst.sent */
    int records;
    bool accepted, failed_final;
    char tmid[LST_THREEMA_MSGID_HEX + 1];
    char threema_id[LST_THREEMA_ID_SIZE + 1];
    char code[LST_SLUG_MAX + 1];
    /* lst.inbound: receipts by status ([0]: any other status) */
    int status[5];
};

struct reply {
    const struct drv *from;
    enum kind kind;
    char msgid[LST_THREEMA_MSGID_HEX + 1];
    char blob_id[LST_THREEMA_BLOB_ID_HEX + 1];
    char text[128];
    double lat, lon;
};

struct e2e {
    struct gwin_env E;
    bool up;
    pid_t sim_pid, out_pid;
    int out_port;
    char sim_log[600], out_log[600];
    struct lst_kafka_config kc;
    struct drv drv[NKNOWN + NUNKNOWN];
    size_t nknown, nunknown;
    struct req req[MAX_REQ];
    size_t nreq;
    struct reply rep[NREPLY * 3];
    size_t nrep;
    char pdf[LST_BLOBSTORE_REF_HEX + 1], jpg[LST_BLOBSTORE_REF_HEX + 1],
        thumb[LST_BLOBSTORE_REF_HEX + 1];
    int64_t pdf_size, jpg_size;
    size_t stray_sent, unmatched, wrong_sender, messages;
};

/* Test state: the harness runs argument-less test functions in order. */
static struct e2e X;

static char s_pdf_mime[] = "application/pdf", s_jpeg[] = "image/jpeg", s_pdf_name[] = "tour-17.pdf",
            s_jpg_name[] = "rampe-4.jpg", s_caption[] = "Tour 17", s_place[] = "Depot Hannover",
            s_addr[] = "Lahe 1, 30659 Hannover";
static const double loc_lat = 52.3759, loc_lon = 9.7320;

/* ---- processes ---------------------------------------------------------------------- */

/* Every read message is acknowledged or declined (half and half); the test asks for replies. */
static bool start_sim(void)
{
    const char *const tuning[] = {"LST_SIM_DELAY_JITTER_MS=100", "LST_SIM_ACK_PROBABILITY=0.5",
                                  "LST_SIM_DECLINE_PROBABILITY=0.5", NULL};
    return e2e_start_sim(&X.E, tuning, &X.sim_pid, X.sim_log, sizeof(X.sim_log));
}

static bool start_gateway_out(void)
{
    const char *const extra[] = {"LST_GATEWAY_OUT_REVOKE_TIMEOUT_MS=3000", NULL};
    return e2e_start_gateway_out(&X.E, extra, &X.out_pid, &X.out_port, X.out_log,
                                 sizeof(X.out_log));
}

/* ---- drivers from the ERP export, joined with the simulator's users ---------------------- */

/* The simulator's user of an employee: its ID, read receipts and whether it takes files. */
static bool sim_user_of(json_object *users, const char *employee, char id[LST_THREEMA_ID_SIZE + 1],
                        bool *read_receipts, bool *files)
{
    for (size_t i = 0; i < json_object_array_length(users); i++) {
        json_object *u = json_object_array_get_idx(users, i), *v = NULL;
        if (!json_object_object_get_ex(u, "employeeNo", &v) ||
            strcmp(json_object_get_string(v), employee) != 0)
            continue;
        json_object_object_get_ex(u, "identity", &v);
        snprintf(id, LST_THREEMA_ID_SIZE + 1, "%s", json_object_get_string(v));
        json_object_object_get_ex(u, "readReceipts", &v);
        *read_receipts = json_object_get_boolean(v);
        json_object_object_get_ex(u, "capabilities", &v);
        *files = strstr(json_object_get_string(v), "file") != NULL;
        return true;
    }
    return false;
}

static void add_driver(char **f, const char *id, bool rr, bool known)
{
    struct drv *d = &X.drv[X.nknown + X.nunknown];
    static const char *const modes[] = {"id", "phone", "email"};
    snprintf(d->employee, sizeof(d->employee), "%s", f[0]);
    snprintf(d->first_name, sizeof(d->first_name), "%s", f[1]);
    snprintf(d->phone, sizeof(d->phone), "%s", f[7]);
    snprintf(d->email, sizeof(d->email), "%s", f[8]);
    snprintf(d->id, sizeof(d->id), "%s", known ? id : "");
    d->read_receipts = rr;
    if (known)
        d->address = modes[X.nknown++ % 3];
    else
        d->address = modes[1 + X.nunknown++ % 2];
}

/* Picks NKNOWN drivers that take files and have phone and e-mail (NNOREAD of them with read
 * receipts off, so both cases are covered) and NUNKNOWN employees without a Threema ID. */
static bool load_drivers(void)
{
    char line[1024];
    json_object *users = e2e_sim_users(&X.E);
    FILE *csv = e2e_open_export(&X.E);
    size_t noread = 0, read = 0;
    bool header = true;
    while (users != NULL && csv != NULL && fgets(line, sizeof(line), csv) != NULL) {
        char *f[16], id[LST_THREEMA_ID_SIZE + 1];
        bool rr = false, files = false;
        line[strcspn(line, "\r\n")] = '\0';
        if (header || e2e_csv_split(line, f, 16) < 12 || f[7][0] == '\0' || f[8][0] == '\0') {
            header = false;
            continue;
        }
        if (strcmp(f[11], "none") == 0) {
            if (X.nunknown < NUNKNOWN)
                add_driver(f, NULL, false, false);
        } else if (sim_user_of(users, f[0], id, &rr, &files) && files && X.nknown < NKNOWN) {
            if (rr && read < NKNOWN - NNOREAD) {
                read++;
                add_driver(f, id, rr, true);
            } else if (!rr && noread < NNOREAD) {
                noread++;
                add_driver(f, id, rr, true);
            }
        }
    }
    if (csv != NULL)
        fclose(csv);
    json_object_put(users);
    return X.nknown == NKNOWN && X.nunknown == NUNKNOWN;
}

/* The files dispatchers send, put into the company blob store as view-api would. */
static bool put_blobs(void)
{
    struct lst_blobstore *bs = NULL;
    uint8_t pdf[3000], jpg[1500], thumb[300];
    struct lst_blob_desc d_pdf = {
        .mime = "application/pdf", .filename = "tour-17.pdf", .source = "e2e-test"};
    struct lst_blob_desc d_jpg = {
        .mime = "image/jpeg", .filename = "rampe-4.jpg", .source = "e2e-test"};
    for (size_t i = 0; i < sizeof(pdf); i += LST_THREEMA_KEY_SIZE) { /* random bytes */
        uint8_t rnd[LST_THREEMA_KEY_SIZE];
        lst_threema_blob_keygen(rnd);
        memcpy(pdf + i, rnd, sizeof(pdf) - i < sizeof(rnd) ? sizeof(pdf) - i : sizeof(rnd));
    }
    for (size_t i = 0; i < sizeof(jpg); i++)
        jpg[i] = (uint8_t)(i * 7 + 3);
    for (size_t i = 0; i < sizeof(thumb); i++)
        thumb[i] = (uint8_t)(i * 13 + 1);
    bool ok = lst_blobstore_create(X.E.blob_dir, &bs) == LST_OK &&
              lst_blobstore_put(bs, pdf, sizeof(pdf), &d_pdf, X.pdf) == LST_OK &&
              lst_blobstore_put(bs, jpg, sizeof(jpg), &d_jpg, X.jpg) == LST_OK &&
              lst_blobstore_put(bs, thumb, sizeof(thumb), &d_jpg, X.thumb) == LST_OK;
    X.pdf_size = (int64_t)sizeof(pdf);
    X.jpg_size = (int64_t)sizeof(jpg);
    lst_blobstore_destroy(bs);
    return ok;
}

static void test_setup(void)
{
    REQUIRE(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
    REQUIRE(lst_threema_init() == LST_OK);
    lst_log_init("e2e-gateways", LST_LOG_WARN);
    REQUIRE(gwin_env_init(&X.E, "e2e"));
    X.kc = (struct lst_kafka_config){.brokers = X.E.brokers, .client_id = "e2e-gateways"};
    REQUIRE(start_sim());
    const char *extra[] = {"LST_LOG_LEVEL=info", NULL};
    REQUIRE(gwin_start(&X.E, extra));
    char body[320];
    snprintf(body, sizeof(body), "{\"callbackUrl\":\"%s\"}", X.E.url);
    REQUIRE(gwin_sim_faults(&X.E, body));
    REQUIRE(start_gateway_out());
    REQUIRE(load_drivers());
    REQUIRE(put_blobs());
    printf("     run %s: simulator %s, gateway-in :%d, gateway-out :%d, logs %s.*\n", X.E.prefix,
           X.E.sim, X.E.port, X.out_port, X.E.log);
    X.up = true;
}

/* ---- 1. sends and outcomes --------------------------------------------------------------- */

static void fill_content(struct req *r, struct lst_content *c)
{
    memset(c, 0, sizeof(*c));
    switch (r->kind) {
    case K_TEXT:
        c->kind = LST_CONTENT_TEXT;
        c->text = r->text;
        break;
    case K_LOCATION:
        c->kind = LST_CONTENT_LOCATION;
        c->lat = loc_lat;
        c->lon = loc_lon;
        c->has_accuracy = true;
        c->accuracy = 12.5;
        c->name = s_place;
        c->address = s_addr;
        break;
    case K_FILE:
        c->kind = LST_CONTENT_FILE;
        c->blob = X.pdf;
        c->mime = s_pdf_mime;
        c->size = X.pdf_size;
        c->filename = s_pdf_name;
        c->caption = s_caption;
        break;
    default:
        c->kind = LST_CONTENT_IMAGE;
        c->blob = X.jpg;
        c->mime = s_jpeg;
        c->size = X.jpg_size;
        c->filename = s_jpg_name;
        c->caption = s_caption;
        c->thumbnail_blob = X.thumb;
        c->thumbnail_mime = s_jpeg;
        break;
    }
}

/* Adds one request of message mid for d and produces it to lst.outbound (key: employee). */
static bool send_request(struct lst_kafka_producer *p, char *mid, struct drv *d, enum kind kind,
                         bool quiet)
{
    struct lst_buf rid, out;
    struct lst_outbound ob;
    char topic[128];
    if (X.nreq >= MAX_REQ)
        return false;
    struct req *r = &X.req[X.nreq++];
    lst_buf_init(&rid);
    lst_buf_init(&out);
    memset(&ob, 0, sizeof(ob));
    lst_request_id_format(&rid, mid, d->employee);
    snprintf(r->request_id, sizeof(r->request_id), "%s", rid.data != NULL ? rid.data : "");
    r->to = d;
    r->kind = kind;
    r->quiet = quiet;
    snprintf(r->text, sizeof(r->text), "E2E %zu: Tour 17 ab Rampe 4, bitte bestätigen.", X.nreq);
    ob.request_id = r->request_id;
    ob.message_id = mid;
    ob.employee_id = d->employee;
    if (strcmp(d->address, "phone") == 0)
        ob.to.phone = d->phone;
    else if (strcmp(d->address, "email") == 0)
        ob.to.email = d->email;
    else
        ob.to.threema_id = d->id;
    fill_content(r, &ob.content);
    ob.no_delivery_receipts = quiet;
    ob.no_push = quiet;
    ob.created_at = lst_wall_ms();
    snprintf(topic, sizeof(topic), "%slst.outbound", X.E.prefix);
    bool ok = lst_outbound_encode(&ob, &out) == LST_OK &&
              lst_kafka_produce_async(p, topic, d->employee, strlen(d->employee), out.data, out.len,
                                      NULL, NULL) == LST_OK;
    lst_buf_cleanup(&rid);
    lst_buf_cleanup(&out);
    return ok;
}

/* One dispatcher message of each type to every known driver (the text also to the unknown
 * employees), then a text without receipts to NQUIET drivers. */
static bool produce_all(void)
{
    struct lst_kafka_producer *p = NULL;
    char mid[LST_MESSAGE_ID_LEN + 1];
    bool ok = lst_kafka_producer_create(&X.kc, &p) == LST_OK;
    for (int k = 0; ok && k < K__COUNT; k++) {
        ok = lst_message_id_new(lst_wall_ms(), mid) == LST_OK;
        size_t n = k == K_TEXT ? X.nknown + X.nunknown : X.nknown;
        for (size_t i = 0; ok && i < n; i++)
            ok = send_request(p, mid, &X.drv[i], (enum kind)k, false);
    }
    ok = ok && lst_message_id_new(lst_wall_ms(), mid) == LST_OK;
    for (size_t i = 0; ok && i < NQUIET; i++)
        ok = send_request(p, mid, &X.drv[i], K_TEXT, true);
    ok = ok && lst_kafka_producer_flush(p, 30000) == LST_OK;
    lst_kafka_producer_destroy(p);
    return ok;
}

static struct req *req_by_id(const char *request_id)
{
    for (size_t i = 0; i < X.nreq; i++)
        if (strcmp(X.req[i].request_id, request_id) == 0)
            return &X.req[i];
    return NULL;
}

static bool all_outcomes(void)
{
    for (size_t i = 0; i < X.nreq; i++)
        if (!X.req[i].accepted && !X.req[i].failed_final)
            return false;
    return true;
}

static void take_sent(const struct lst_kafka_record *rec)
{
    struct lst_sent s;
    struct lst_buf why;
    lst_buf_init(&why);
    if (lst_sent_decode(rec->value, rec->len, &s, &why) != LST_OK) {
        fprintf(stderr, "undecodable lst.sent record: %s\n", why.data ? why.data : "?");
        X.stray_sent++;
        lst_buf_cleanup(&why);
        return;
    }
    struct req *r = req_by_id(s.request_id);
    if (r == NULL) {
        X.stray_sent++;
    } else {
        r->records++;
        r->accepted = s.outcome == LST_SENT_ACCEPTED;
        r->failed_final = s.outcome == LST_SENT_FAILED && s.failure.final;
        snprintf(r->tmid, sizeof(r->tmid), "%s", r->accepted ? s.threema_message_id : "");
        snprintf(r->threema_id, sizeof(r->threema_id), "%s", s.threema_id ? s.threema_id : "");
        snprintf(r->code, sizeof(r->code), "%s", r->accepted ? "ok" : s.failure.code);
    }
    lst_sent_cleanup(&s);
    lst_buf_cleanup(&why);
}

/* Reads the run's lst.sent from the start until every request has a final outcome, then
 * settle_ms more to catch a second record. */
static bool collect_sent(int64_t timeout_ms, int64_t settle_ms)
{
    char topic[128], group[160];
    snprintf(topic, sizeof(topic), "%slst.sent", X.E.prefix);
    snprintf(group, sizeof(group), "%ssent-reader.%lld", X.E.prefix, (long long)lst_wall_ms());
    const char *topics[] = {topic};
    struct lst_kafka_consumer_opts o = {.group_id = group, .topics = topics, .ntopics = 1};
    struct lst_kafka_consumer *c = NULL;
    if (lst_kafka_consumer_create(&X.kc, &o, &c) != LST_OK)
        return false;
    int64_t end = lst_mono_ms() + timeout_ms, settle_end = -1;
    bool ok = false;
    while (lst_mono_ms() < end) {
        if (settle_end < 0 && all_outcomes())
            settle_end = lst_mono_ms() + settle_ms;
        if (settle_end >= 0 && lst_mono_ms() >= settle_end) {
            ok = true;
            break;
        }
        struct lst_kafka_record rec;
        lst_err err = lst_kafka_consumer_poll(c, 200, &rec);
        if (err == LST_ERR_TIMEOUT)
            continue;
        if (err != LST_OK)
            break;
        if (rec.value != NULL)
            take_sent(&rec);
        lst_kafka_record_release(&rec);
    }
    lst_kafka_consumer_destroy(c);
    return ok;
}

/* The simulator's journal: how often each request was sent (200), uploads. */
static void check_journal(size_t accepted)
{
    char url[160];
    struct lst_buf b;
    lst_buf_init(&b);
    snprintf(url, sizeof(url), "%s/_sim/log?since=0&limit=100000", X.E.sim);
    REQUIRE(gwin_http("GET", url, NULL, 0, &b) == 200);
    json_object *doc = json_tokener_parse(b.data), *entries = NULL;
    size_t sends = 0, uploads = 0, twice = 0, untagged = 0;
    int count[MAX_REQ] = {0};
    if (json_object_object_get_ex(doc, "entries", &entries)) {
        for (size_t i = 0; i < json_object_array_length(entries); i++) {
            json_object *e = json_object_array_get_idx(entries, i), *v = NULL;
            json_object_object_get_ex(e, "status", &v);
            if (json_object_get_int(v) != 200)
                continue;
            json_object_object_get_ex(e, "endpoint", &v);
            const char *ep = json_object_get_string(v);
            uploads += strcmp(ep, "/upload_blob") == 0;
            if (strcmp(ep, "/send_e2e") != 0)
                continue;
            sends++;
            json_object_object_get_ex(e, "requestId", &v);
            struct req *r = v != NULL ? req_by_id(json_object_get_string(v)) : NULL;
            if (r == NULL)
                untagged++;
            else if (++count[r - X.req] > 1)
                twice++;
        }
    }
    json_object_put(doc);
    lst_buf_cleanup(&b);
    printf("     simulator: %zu send_e2e accepted, %zu blob uploads\n", sends, uploads);
    CHECK_EQ(sends, accepted);
    CHECK_EQ(twice, 0);
    CHECK_EQ(untagged, 0);
    /* One file message and one image message, each uploaded once for all its recipients
     * (the image with its thumbnail): three uploads. */
    CHECK_EQ(uploads, 3);
}

static void test_sends(void)
{
    REQUIRE(X.up);
    REQUIRE(produce_all());
    bool complete = collect_sent(90000, 1500);
    CHECK(complete);
    size_t accepted = 0, failed = 0;
    for (size_t i = 0; i < X.nreq; i++) {
        const struct req *r = &X.req[i];
        bool known = r->to->id[0] != '\0';
        bool ok = r->records == 1 &&
                  (known ? r->accepted && strlen(r->tmid) == LST_THREEMA_MSGID_HEX &&
                               strcmp(r->threema_id, r->to->id) == 0
                         : r->failed_final && strcmp(r->code, "lookup_not_found") == 0);
        if (!ok)
            fprintf(stderr, "request %s (%s to %s by %s): %d outcome(s), %s %s %s\n", r->request_id,
                    kind_names[r->kind], r->to->employee, r->to->address, r->records,
                    r->accepted       ? "accepted"
                    : r->failed_final ? "failed"
                                      : "none",
                    r->code, r->threema_id);
        CHECK(ok);
        accepted += r->accepted;
        failed += r->failed_final;
    }
    for (size_t i = 0; i < X.nreq; i++)
        for (size_t j = i + 1; j < X.nreq; j++)
            CHECK(!X.req[i].accepted || strcmp(X.req[i].tmid, X.req[j].tmid) != 0);
    CHECK_EQ(X.stray_sent, 0);
    printf("     %zu requests: %zu accepted, %zu failed for good (unknown to Threema)\n", X.nreq,
           accepted, failed);
    CHECK_EQ(accepted, NKNOWN * K__COUNT + NQUIET);
    CHECK_EQ(failed, NUNKNOWN);
    check_journal(accepted);
}

/* ---- 2. the phones ------------------------------------------------------------------- */

static const char *jstr(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

static int64_t jint(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -1;
}

/* The inbox entry of r as the phone decoded it: type, content, flags. */
static bool inbox_entry_ok(const struct req *r, json_object *m)
{
    json_object *v = NULL, *f = NULL, *loc = NULL;
    bool ok = json_object_object_get_ex(m, "ok", &v) && json_object_get_boolean(v) &&
              json_object_object_get_ex(m, "noDeliveryReceipts", &v) &&
              json_object_get_boolean(v) == r->quiet &&
              json_object_object_get_ex(m, "noPush", &v) && json_object_get_boolean(v) == r->quiet;
    switch (r->kind) {
    case K_TEXT:
        return ok && strcmp(jstr(m, "type"), "text") == 0 && strcmp(jstr(m, "text"), r->text) == 0;
    case K_LOCATION:
        return ok && strcmp(jstr(m, "type"), "location") == 0 &&
               json_object_object_get_ex(m, "location", &loc) &&
               json_object_object_get_ex(loc, "lat", &v) &&
               fabs(json_object_get_double(v) - loc_lat) < 1e-5 &&
               strcmp(jstr(loc, "name"), s_place) == 0;
    default:
        ok = ok && strcmp(jstr(m, "type"), "file") == 0 &&
             json_object_object_get_ex(m, "file", &f) && strcmp(jstr(f, "blobCheck"), "ok") == 0 &&
             strcmp(jstr(f, "caption"), s_caption) == 0;
        if (r->kind == K_FILE)
            return ok && jint(f, "rendering") <= 0 && jint(f, "size") == X.pdf_size &&
                   strcmp(jstr(f, "mime"), s_pdf_mime) == 0;
        return ok && jint(f, "rendering") == 1 && jint(f, "size") == X.jpg_size &&
               strcmp(jstr(f, "mime"), s_jpeg) == 0 && jstr(f, "thumbnailBlobId")[0] != '\0';
    }
}

static void check_inbox(const struct drv *d)
{
    char url[160];
    struct lst_buf b;
    lst_buf_init(&b);
    snprintf(url, sizeof(url), "%s/_sim/inbox/%s", X.E.sim, d->id);
    REQUIRE(gwin_http("GET", url, NULL, 0, &b) == 200);
    json_object *doc = json_tokener_parse(b.data), *msgs = NULL;
    size_t expected = 0;
    json_object_object_get_ex(doc, "messages", &msgs);
    for (size_t i = 0; i < X.nreq; i++) {
        const struct req *r = &X.req[i];
        if (r->to != d || !r->accepted)
            continue;
        expected++;
        size_t found = 0, good = 0;
        for (size_t k = 0; k < json_object_array_length(msgs); k++) {
            json_object *m = json_object_array_get_idx(msgs, k);
            if (strcmp(jstr(m, "messageId"), r->tmid) != 0)
                continue;
            found++;
            good += inbox_entry_ok(r, m);
        }
        if (found != 1 || good != 1)
            fprintf(stderr, "inbox of %s: %s message %s found %zu, as sent %zu\n", d->id,
                    kind_names[r->kind], r->tmid, found, good);
        CHECK(found == 1 && good == 1);
    }
    CHECK_EQ(json_object_array_length(msgs), expected);
    json_object_put(doc);
    lst_buf_cleanup(&b);
}

static long long sim_stat(const char *part, const char *key)
{
    char url[160];
    struct lst_buf b;
    lst_buf_init(&b);
    snprintf(url, sizeof(url), "%s/_sim/stats", X.E.sim);
    long long n = -1;
    if (gwin_http("GET", url, NULL, 0, &b) == 200) {
        json_object *doc = json_tokener_parse(b.data), *o = NULL, *v = NULL;
        if (json_object_object_get_ex(doc, part, &o) && json_object_object_get_ex(o, key, &v))
            n = json_object_get_int64(v);
        json_object_put(doc);
    }
    lst_buf_cleanup(&b);
    return n;
}

static void test_phones(void)
{
    REQUIRE(X.up);
    for (size_t i = 0; i < X.nknown; i++)
        check_inbox(&X.drv[i]);
    CHECK_EQ(sim_stat("phones", "messages"), NKNOWN * K__COUNT + NQUIET);
    CHECK_EQ(sim_stat("phones", "undecryptable"), 0);
    CHECK_EQ(sim_stat("phones", "badContainer"), 0);
    CHECK_EQ(sim_stat("phones", "badBlob"), 0);
}

/* ---- 3. delivery receipts in lst.inbound ---------------------------------------------- */

static struct req *req_by_tmid(const char *tmid)
{
    for (size_t i = 0; i < X.nreq; i++)
        if (X.req[i].accepted && strcmp(X.req[i].tmid, tmid) == 0)
            return &X.req[i];
    return NULL;
}

/* Counts the receipts of s per request and status (recomputed from scratch each time). */
static void tally(const struct gwin_seen *s)
{
    for (size_t i = 0; i < X.nreq; i++)
        memset(X.req[i].status, 0, sizeof(X.req[i].status));
    X.unmatched = X.wrong_sender = X.messages = 0;
    for (size_t i = 0; i < s->nin; i++) {
        const struct lst_inbound *in = &s->in[i];
        if (in->kind != LST_INBOUND_RECEIPT) {
            X.messages++;
            continue;
        }
        for (size_t k = 0; k < in->receipt.message_ids.len; k++) {
            struct req *r = req_by_tmid(in->receipt.message_ids.items[k]);
            if (r == NULL) {
                X.unmatched++;
                continue;
            }
            X.wrong_sender += strcmp(in->from, r->to->id) != 0;
            int64_t st = in->receipt.status;
            r->status[st >= 1 && st <= 4 ? st : 0]++;
        }
    }
}

static bool receipts_complete(const struct gwin_seen *s, void *ud)
{
    (void)ud;
    tally(s);
    for (size_t i = 0; i < X.nreq; i++) {
        const struct req *r = &X.req[i];
        if (!r->accepted || r->quiet)
            continue;
        if (r->status[1] < 1 || (r->to->read_receipts && r->status[2] < 1) ||
            r->status[3] + r->status[4] < 1)
            return false;
    }
    return true;
}

static void test_receipts(void)
{
    REQUIRE(X.up);
    struct gwin_seen s = {0};
    /* The settle time exceeds the simulator's whole receipt schedule (about 0.7 s), so a
     * receipt that should not exist has had time to arrive. */
    bool complete = gwin_consume(&X.E, &s, receipts_complete, NULL, 2500, 60000);
    tally(&s);
    CHECK(complete);
    size_t by_status[5] = {0}, receipts = 0;
    for (size_t i = 0; i < X.nreq; i++) {
        const struct req *r = &X.req[i];
        if (!r->accepted)
            continue;
        bool ok;
        if (r->quiet)
            ok = r->status[0] + r->status[1] + r->status[2] + r->status[3] + r->status[4] == 0;
        else
            ok = r->status[0] == 0 && r->status[1] == 1 &&
                 r->status[2] == (r->to->read_receipts ? 1 : 0) && r->status[3] + r->status[4] == 1;
        if (!ok)
            fprintf(stderr,
                    "receipts of %s (%s to %s, read receipts %s%s): other %d, received %d, "
                    "read %d, acknowledged %d, declined %d\n",
                    r->tmid, kind_names[r->kind], r->to->id, r->to->read_receipts ? "on" : "off",
                    r->quiet ? ", none requested" : "", r->status[0], r->status[1], r->status[2],
                    r->status[3], r->status[4]);
        CHECK(ok);
        for (int k = 0; k < 5; k++)
            by_status[k] += (size_t)r->status[k];
    }
    for (size_t i = 0; i < s.nin; i++) {
        receipts += s.in[i].kind == LST_INBOUND_RECEIPT;
        CHECK_EQ(gwin_count_event(&s, s.in[i].from, s.in[i].threema_message_id), 1);
    }
    printf("     %zu receipts: received %zu, read %zu, acknowledged %zu, declined %zu\n", receipts,
           by_status[1], by_status[2], by_status[3], by_status[4]);
    CHECK(by_status[1] > 0 && by_status[2] > 0 && by_status[3] > 0 && by_status[4] > 0);
    CHECK_EQ(X.unmatched, 0);
    CHECK_EQ(X.wrong_sender, 0);
    CHECK_EQ(X.messages, 0);
    CHECK_EQ(s.ndlq, 0);
    CHECK_EQ(s.undecodable, 0);
    gwin_seen_cleanup(&s);
}

/* ---- 4. replies ------------------------------------------------------------------------ */

/* POST /_sim/reply; the message ID (and for a photo the Gateway blob ID) go into rep. */
static bool reply(struct reply *rep, const char *extra)
{
    char url[160], body[512];
    struct lst_buf b;
    lst_buf_init(&b);
    snprintf(url, sizeof(url), "%s/_sim/reply", X.E.sim);
    int n = snprintf(body, sizeof(body), "{\"from\":\"%s\",\"kind\":\"%s\",%s}", rep->from->id,
                     rep->kind == K_IMAGE ? "photo" : kind_names[rep->kind], extra);
    bool ok = gwin_http("POST", url, body, (size_t)n, &b) == 200;
    char *id = ok ? gwin_json_str(&b, "messageId") : NULL;
    char *blob = ok ? gwin_json_str(&b, "blobId") : NULL;
    ok = id != NULL && strlen(id) == LST_THREEMA_MSGID_HEX;
    snprintf(rep->msgid, sizeof(rep->msgid), "%s", ok ? id : "");
    snprintf(rep->blob_id, sizeof(rep->blob_id), "%s", blob != NULL ? blob : "");
    free(id);
    free(blob);
    lst_buf_cleanup(&b);
    return ok;
}

static bool replies_complete(const struct gwin_seen *s, void *ud)
{
    (void)ud;
    for (size_t i = 0; i < X.nrep; i++)
        if (gwin_count_event(s, X.rep[i].from->id, X.rep[i].msgid) < 1)
            return false;
    return true;
}

/* The photo's blob: in the store under its hash, the declared size, a PNG, its metadata. */
static bool photo_stored(const struct lst_content *c)
{
    struct lst_blobstore *bs = NULL;
    struct lst_blob_meta meta = {0};
    struct lst_buf b;
    lst_buf_init(&b);
    bool ok = c->blob != NULL && c->thumbnail_blob != NULL &&
              lst_blobstore_create(X.E.blob_dir, &bs) == LST_OK &&
              lst_blobstore_get(bs, c->blob, 0, &b) == LST_OK && (int64_t)b.len == c->size &&
              b.len > 8 && memcmp(b.data, "\x89PNG\r\n\x1a\n", 8) == 0 &&
              lst_blobstore_meta(bs, c->blob, &meta) == LST_OK && meta.size == c->size &&
              strcmp(meta.mime, "image/png") == 0 && lst_blobstore_exists(bs, c->thumbnail_blob);
    if (!ok)
        fprintf(stderr, "photo blob %s (%lld bytes declared): %s, %zu bytes read\n",
                c->blob ? c->blob : "(none)", (long long)c->size,
                c->blob_error ? c->blob_error : "no blob error", b.len);
    lst_blob_meta_cleanup(&meta);
    lst_blobstore_destroy(bs);
    lst_buf_cleanup(&b);
    return ok;
}

static bool reply_arrived_ok(const struct reply *rep, const struct lst_inbound *in)
{
    const struct lst_content *c = &in->content;
    bool ok = in->kind == LST_INBOUND_MESSAGE && strcmp(in->from, rep->from->id) == 0 &&
              strcmp(in->to, GWIN_GATEWAY_ID) == 0 && in->nickname != NULL &&
              strcmp(in->nickname, rep->from->first_name) == 0;
    switch (rep->kind) {
    case K_TEXT:
        return ok && c->kind == LST_CONTENT_TEXT && strcmp(c->text, rep->text) == 0;
    case K_LOCATION:
        return ok && c->kind == LST_CONTENT_LOCATION && fabs(c->lat - rep->lat) < 1e-6 &&
               fabs(c->lon - rep->lon) < 1e-6;
    default:
        return ok && c->kind == LST_CONTENT_IMAGE && c->mime != NULL &&
               strcmp(c->mime, "image/png") == 0 && c->caption != NULL &&
               strcmp(c->caption, rep->text) == 0 && c->threema_blob_id != NULL &&
               strcmp(c->threema_blob_id, rep->blob_id) == 0 && photo_stored(c);
    }
}

static void test_replies(void)
{
    REQUIRE(X.up);
    for (size_t i = 0; i < NREPLY; i++) {
        struct reply *t = &X.rep[X.nrep++], *l = &X.rep[X.nrep++], *p = &X.rep[X.nrep++];
        char extra[256];
        *t = (struct reply){.from = &X.drv[i], .kind = K_TEXT};
        *l = (struct reply){.from = &X.drv[i], .kind = K_LOCATION};
        *p = (struct reply){.from = &X.drv[i], .kind = K_IMAGE};
        snprintf(t->text, sizeof(t->text), "Fahrer %zu: an Rampe 4, Ladung aufgenommen.", i);
        snprintf(extra, sizeof(extra), "\"text\":\"%s\"", t->text);
        CHECK(reply(t, extra));
        l->lat = 53.5 + 0.0123 * (double)i;
        l->lon = 9.9 + 0.0456 * (double)i;
        snprintf(extra, sizeof(extra), "\"lat\":%.6f,\"lon\":%.6f", l->lat, l->lon);
        CHECK(reply(l, extra));
        snprintf(p->text, sizeof(p->text), "Lieferschein %zu", i);
        snprintf(extra, sizeof(extra), "\"text\":\"%s\"", p->text);
        CHECK(reply(p, extra));
        CHECK(p->blob_id[0] != '\0');
    }
    struct gwin_seen s = {0};
    CHECK(gwin_consume(&X.E, &s, replies_complete, NULL, 1000, 60000));
    const char *photo_ref = NULL;
    for (size_t i = 0; i < X.nrep; i++) {
        const struct reply *rep = &X.rep[i];
        const struct lst_inbound *in = gwin_find_event(&s, rep->msgid);
        size_t n = gwin_count_event(&s, rep->from->id, rep->msgid);
        bool ok = n == 1 && in != NULL && reply_arrived_ok(rep, in);
        if (!ok)
            fprintf(stderr, "reply %s (%s from %s): %zu record(s), not as sent\n", rep->msgid,
                    kind_names[rep->kind], rep->from->id, n);
        CHECK(ok);
        /* Every driver sends the same picture, under its own key and blob ID: decrypted, it is
         * one content-addressed file. */
        if (ok && rep->kind == K_IMAGE) {
            if (photo_ref != NULL)
                CHECK_STREQ(in->content.blob, photo_ref);
            photo_ref = in->content.blob;
        }
    }
    CHECK_EQ(s.ndlq, 0);
    gwin_seen_cleanup(&s);
}

/* ---- 5. every callback answered 200 --------------------------------------------------- */

static bool callbacks_idle(void)
{
    for (int64_t end = lst_mono_ms() + 30000; lst_mono_ms() < end;) {
        if (gwin_sim_cb_stat(&X.E, "queued") == 0 && gwin_sim_cb_stat(&X.E, "inFlight") == 0)
            return true;
        lst_sleep_ms(100, NULL);
    }
    return false;
}

static bool all_callbacks_in(const struct gwin_seen *s, void *ud)
{
    return (long long)s->nin >= *(const long long *)ud;
}

static void test_callbacks(void)
{
    REQUIRE(X.up);
    CHECK(callbacks_idle());
    long long sent = gwin_sim_cb_stat(&X.E, "sent");
    long long failed = gwin_sim_cb_stat(&X.E, "failedAttempts");
    long long dropped = gwin_sim_cb_stat(&X.E, "dropped");
    struct gwin_seen s = {0};
    CHECK(gwin_consume(&X.E, &s, all_callbacks_in, &sent, 1000, 30000));
    double accepted = gwin_metric(&X.E, "lst_gateway_in_callbacks_total{result=\"accepted\"}");
    printf("     simulator: %lld callbacks answered 200, %lld failed attempts, %lld dropped; "
           "lst.inbound: %zu records; gateway-in accepted %.0f\n",
           sent, failed, dropped, s.nin, accepted);
    CHECK(sent > 0);
    CHECK_EQ(failed, 0);
    CHECK_EQ(dropped, 0);
    CHECK_EQ((long long)s.nin, sent);
    CHECK_EQ((long long)accepted, sent);
    CHECK_EQ(s.ndlq, 0);
    gwin_seen_cleanup(&s);
}

/* ---- teardown --------------------------------------------------------------------------- */

/* Deletes the run's Redis keys (gateway-in's and gateway-out's share the run prefix). */
static void redis_cleanup(void)
{
    int64_t db = 0;
    lst_parse_i64(gwin_getenv("LST_REDIS_DB", "0"), 0, 1000000, &db); /* as the services */
    struct lst_redis_config rc = {.host = gwin_getenv("LST_REDIS_HOST", NULL),
                                  .port = X.E.redis_port,
                                  .db = (int)db,
                                  .password = gwin_getenv("LST_REDIS_PASSWORD", NULL),
                                  .timeout_ms = 5000};
    struct lst_redis *r = NULL;
    redisReply *rep = NULL;
    char pattern[96];
    snprintf(pattern, sizeof(pattern), "%s*", X.E.key_prefix);
    const char *argv[] = {"EVAL",
                          "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                          "redis.call('DEL', k) n = n + 1 end return n",
                          "0", pattern};
    if (lst_redis_create(&rc, &r) == LST_OK && lst_redis_cmd(r, &rep, 4, argv, NULL) == LST_OK)
        freeReplyObject(rep);
    lst_redis_destroy(r);
}

static void test_teardown(void)
{
    int out_rc = e2e_stop(&X.out_pid);
    int in_rc = gwin_stop(&X.E);
    int sim_rc = e2e_stop(&X.sim_pid);
    if (X.E.redis_port > 0 && X.E.key_prefix[0] != '\0')
        redis_cleanup();
    REQUIRE(X.up);
    CHECK_EQ(out_rc, 0);
    CHECK_EQ(in_rc, 0);
    CHECK_EQ(sim_rc, 0);
    const char *const files[] = {X.sim_log, X.out_log, NULL};
    e2e_remove_run(&X.E, files);
}

LST_TEST_MAIN(T(test_setup), T(test_sends), T(test_phones), T(test_receipts), T(test_replies),
              T(test_callbacks), T(test_teardown))
