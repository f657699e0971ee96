/* The mission's own day, end to end (issue 5, "Tests"): real Kafka and Redis (the stack), all
 * four services (gateway-out, gateway-in, ledger, view-api) and a Threema Gateway simulator
 * started by this test, talking to each other only as in production.
 *
 *   1. import: the admin imports demo/erp-export.csv (250 drivers) through the view-api; the
 *      ledger's directory shows all 250 (GET /api/employees).
 *   2. sends: dispatcher A (anna) sends a text (category dispo) to depot Lübeck-Genin (tag
 *      depot:Lübeck-Genin: 33 drivers can receive; 10713 is skipped inactive, 10408 no_contact)
 *      plus seven named drivers of other depots, among them driver 17 (the 17th data row, 10106)
 *      and the replier (data row 37, 10212): exactly 40 recipients. The depot holds exactly one
 *      driver unknown to Threema (10980, threema_id none), so exactly one recipient fails (no
 *      depot of the export has 37 receivable drivers, and naming a second unknown driver would
 *      make two failures). A photo (category ladung, base64 upload) goes to shift Tagdienst
 *      (20 active, 2 inactive skipped).
 *   3. phones: the simulator (ack/decline probability 0, 20 % read receipts off, 5 % text-only)
 *      delivers and reads; then two readers of the text acknowledge and one declines (POST
 *      /_sim/reply kind receipt). GET /api/messages/{id} shows for every recipient exactly what
 *      the simulator's user says (GET /_sim/users): read for read receipts on, delivered with
 *      read_unknown for read receipts off (the ledger runs with LST_LEDGER_READ_RECEIPTS_N=1),
 *      acknowledged/declined for those three, failed lookup_not_found with a reason for the one
 *      unknown to Threema, failed capability_missing for a text-only phone and the photo; the
 *      per-state counts and read_unknown match; timestamps and Threema message IDs present.
 *      GET /api/employees then shows each of the 250 as reached by ID (ERP), by lookup
 *      (phone/e-mail) or not at all, each text recipient found by phone or e-mail with the ID
 *      the ledger learned from gateway-out's lookup, and the one unknown to Threema with her
 *      failed lookup (threema.last_failure).
 *   4. dispatcher B (bernd), after two more sends (info to two Bremen drivers by A, info to
 *      Kühllogistik of Kiel by B), saves a view hiding category dispo and filtering
 *      department Kühllogistik: exactly [info-to-Kühllogistik, photo]; the same as plain
 *      parameters; each half alone. Then B's saved view of the issue hides dispo and holds
 *      depot Kiel-Wellsee itself (the ledger's tag index x:tag:depot:<depot>): exactly the
 *      info to Kiel and the shift photo (when the shift has a Kiel driver), newest first; the
 *      same as depot= and tag=depot: parameters and as the department view narrowed by
 *      depot= in the request; the depot alone adds the dispo text when it went to a Kiel
 *      driver. A does not see B's unshared view (404).
 *   5. the replier (his Threema ID is in the export) answers with a text, then a photo; his
 *      history shows both, the shift photo and the text, newest first, each outgoing one with
 *      his own state, the photo with its blob in the company blob store, both replies linked to
 *      the shift photo (reply_to, the detail's replies). GET /api/blobs/{sha256} returns his
 *      photo byte for byte as the phone sent it and the shift photo as uploaded, image/png,
 *      and 304 for their ETags. Driver 17 (no Threema ID in the export;
 *      gateway-out finds it by phone) answers too: his answer must be in his history.
 *   6. GDPR: the admin exports the replier (his four messages oldest first with his own state,
 *      both blobs, the audit entries of dispatcher A viewing his history) and erases him: gone
 *      from the directory and both messages' recipients, history 404 or empty, his replies 404,
 *      his photo deleted from the blob store (GET /api/blobs/{sha256}: 404) while the shift
 *      photo stays, the audit log lists the export and the erasure; a re-import of the ERP
 *      export, which still lists him, leaves him out; his export afterwards says he was erased
 *      and lists the erasure in his access log.
 *   7. refusals: missing and wrong token 401, dispatcher on admin routes 403, a malformed
 *      filter 400, a malformed body 400, a malformed CSV row 422 with its line; none changes
 *      the directory.
 *
 * Every response of the view-api goes through view_api_common.h's http(), which dumps it for
 * the OpenAPI check (tests/system/view_api_openapi.sh).
 *
 * Environment (tests/system/mission_e2e/CMakeLists.txt): LST_KAFKA_BROKERS, LST_REDIS_PORT
 * (the stack), LST_SOURCE_DIR, GWIN_WORK, and the binaries GWIN_BIN (gateway-in), GWIN_ADMIN
 * (lst-admin), E2E_GWOUT_BIN, E2E_SIM_BIN, MISSION_LEDGER_BIN, MISSION_VIEW_BIN. Isolation:
 * topics under a unique prefix; the ledger has no key prefix setting, so every service of the
 * run uses a Redis database of its own (the first empty one of 13, 14, 15, 12, claimed with a
 * marker key; MISSION_REDIS_DB forces one), flushed at the end; a scratch blob directory.
 * Every child dies with the driver (PDEATHSIG) and is stopped at the end; logs and blobs are
 * removed unless a check failed or E2E_KEEP=1. Every wait polls to a deadline. */
#include "e2e_common.h"
#include "lst/blobstore.h"
#include "view_api_common.h"

#define MAX_EMP      300
#define MAX_RCPT     64
#define DRIVER17_ROW 17 /* 10106: Threema ID found by phone */
#define REPLIER_ROW  37 /* 10212: Threema ID in the CSV, shift Tagdienst */
#define TEXT_DEPOT   "Lübeck-Genin"
#define PHOTO_SHIFT  "Tagdienst"
#define VIEW_DEP     "Kühllogistik"
#define VIEW_DEPOT   "Kiel-Wellsee"
#define TOK_A        "mission-dispatcher-anna-7f3a"
#define TOK_B        "mission-dispatcher-bernd-91c2"
#define TOK_ADMIN    "mission-admin-erp-5d08"
#define TOK_WRONG    "mission-not-a-token"

struct emp {
    char id[16], name[96], depot[48], dep[48], shift[32], veh[32];
    bool active, contact; /* contact: a Threema ID, phone or e-mail in the CSV */
    bool csv_tid;         /* the CSV names the Threema ID (else: found by phone/e-mail) */
    char tid[LST_THREEMA_ID_SIZE + 1]; /* the simulator's user; "" when unknown to Threema */
    bool rr, file;                     /* read receipts on; takes files */
};

enum react { R_NONE, R_ACK, R_DECLINE };

struct msg {
    char id[32];
    bool image;
    size_t n; /* expected recipients */
    const struct emp *to[MAX_RCPT];
    enum react react[MAX_RCPT];
};

struct mission {
    struct gwin_env E;
    bool up;
    pid_t sim_pid, out_pid, ledger_pid, view_pid;
    int out_port, ledger_port, view_port, db;
    char sim_log[600], out_log[600], ledger_log[600], view_log[600], tokens[600];
    redisContext *rc; /* the run's database (claim, flush) */
    struct emp emp[MAX_EMP];
    size_t nemp;
    const struct emp *d17, *rep;
    struct msg text, photo;
    size_t depot_n;
    char info_a[32], info_b[32];
    char reply_text[LST_THREEMA_MSGID_HEX + 1], reply_photo[LST_THREEMA_MSGID_HEX + 1];
    char reply_text_id[80], reply_photo_id[80], photo_blob[80], shift_blob[80];
    char skip_id[LST_EMPLOYEE_ID_MAX + 1], skip_reason[16]; /* the text's first skipped */
};

/* Test state: the harness runs argument-less test functions in order. H only carries the
 * view-api's port for view_api_common.h's http(). */
static struct mission X;
static struct harness H;

/* ---- processes ---------------------------------------------------------------------------- */

/* The first empty database of a few unusual ones, claimed with a marker key. */
static bool claim_db(void)
{
    static const int dbs[] = {13, 14, 15, 12};
    char tag[64];
    int64_t forced = -1;
    const char *f = gwin_getenv("MISSION_REDIS_DB", NULL);
    if (f != NULL && lst_parse_i64(f, 0, 15, &forced) != LST_OK)
        return false;
    struct timeval tv = {5, 0};
    X.rc = redisConnectWithTimeout("127.0.0.1", X.E.redis_port, tv);
    if (X.rc == NULL || X.rc->err != 0)
        return false;
    snprintf(tag, sizeof(tag), "%s", X.E.prefix);
    for (size_t i = 0; i < LST_ARRAY_LEN(dbs); i++) {
        int db = forced >= 0 ? (int)forced : dbs[i];
        redisReply *r = redisCommand(X.rc, "SELECT %d", db);
        freeReplyObject(r);
        r = redisCommand(X.rc, "DBSIZE");
        bool empty = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 0;
        freeReplyObject(r);
        if (empty || forced >= 0) {
            r = redisCommand(X.rc, "SET mission:claim %s NX", tag);
            bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            if (ok) {
                X.db = db;
                return true;
            }
        }
        if (forced >= 0)
            break;
    }
    return false;
}

static void release_db(void)
{
    if (X.rc == NULL || X.db <= 0)
        return;
    redisReply *r = redisCommand(X.rc, "GET mission:claim");
    bool mine = r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, X.E.prefix) == 0;
    freeReplyObject(r);
    if (mine)
        freeReplyObject(redisCommand(X.rc, "FLUSHDB"));
    redisFree(X.rc);
    X.rc = NULL;
}

/* Fast phones. Acknowledgements and declines are not left to chance: the test makes three
 * phones send them, so the expected state of every recipient is known. */
static bool start_sim(void)
{
    const char *const tuning[] = {"LST_SIM_DELAY_JITTER_MS=200", "LST_SIM_ACK_PROBABILITY=0",
                                  "LST_SIM_DECLINE_PROBABILITY=0", NULL};
    return e2e_start_sim(&X.E, tuning, &X.sim_pid, X.sim_log, sizeof(X.sim_log));
}

/* The settings every service of the run shares: topics, Redis database, blob store. */
struct common_env {
    char prefix[128], db[48], blobs[600], port[48];
};

static void common_env(struct common_env *c, int port)
{
    snprintf(c->prefix, sizeof(c->prefix), "LST_TOPIC_PREFIX=%s", X.E.prefix);
    snprintf(c->db, sizeof(c->db), "LST_REDIS_DB=%d", X.db);
    snprintf(c->blobs, sizeof(c->blobs), "LST_BLOB_DIR=%s", X.E.blob_dir);
    snprintf(c->port, sizeof(c->port), "LST_HTTP_PORT=%d", port);
}

/* gateway-out in the run's Redis database (the topics, blob store and key prefix are the
 * run's already). */
static bool start_gateway_out(void)
{
    char v_db[48];
    snprintf(v_db, sizeof(v_db), "LST_REDIS_DB=%d", X.db);
    const char *const extra[] = {v_db, NULL};
    return e2e_start_gateway_out(&X.E, extra, &X.out_pid, &X.out_port, X.out_log,
                                 sizeof(X.out_log));
}

static bool start_ledger(void)
{
    const char *bin = gwin_getenv("MISSION_LEDGER_BIN", NULL);
    struct common_env c;
    char v_group[128];
    X.ledger_port = gwin_free_port();
    if (bin == NULL || X.ledger_port <= 0)
        return false;
    common_env(&c, X.ledger_port);
    snprintf(v_group, sizeof(v_group), "LST_LEDGER_GROUP_ID=%sledger", X.E.prefix);
    /* N=1: a driver gets one or two messages here, so the evidence for "read receipts off" is
     * the latest one (read by others, not by them). */
    const char *env[] = {c.port,
                         c.prefix,
                         c.db,
                         c.blobs,
                         v_group,
                         "LST_LEDGER_READ_RECEIPTS_N=1",
                         "LST_LEDGER_POLL_MS=50",
                         "LST_LEDGER_RULES=",
                         "LST_LEDGER_RULES_FILE=",
                         "LST_LEDGER_RETENTION_MS=0",
                         "LST_KAFKA_SESSION_TIMEOUT_MS=6000",
                         "LST_LOG_LEVEL=info",
                         NULL};
    snprintf(X.ledger_log, sizeof(X.ledger_log), "%s.ledger", X.E.log);
    X.ledger_pid = e2e_spawn(bin, X.ledger_log, env);
    return X.ledger_pid > 0 && e2e_wait_port(X.ledger_port, "/readyz", X.ledger_pid, 30000);
}

static bool write_token_file(void)
{
    char a[65], b[65], adm[65];
    hash_hex(TOK_A, a);
    hash_hex(TOK_B, b);
    hash_hex(TOK_ADMIN, adm);
    snprintf(X.tokens, sizeof(X.tokens), "%s.tokens", X.E.log);
    FILE *f = fopen(X.tokens, "w");
    if (f == NULL)
        return false;
    fprintf(f,
            "# mission_e2e\n%s dispatcher anna Dispo-Nord\n%s dispatcher bernd Dispo-Sued\n"
            "%s admin erp-admin -\n",
            a, b, adm);
    return fclose(f) == 0;
}

static bool start_view_api(void)
{
    const char *bin = gwin_getenv("MISSION_VIEW_BIN", NULL);
    struct common_env c;
    char v_tokens[700], v_url[96], v_secret[600], v_key[600];
    X.view_port = gwin_free_port();
    if (bin == NULL || X.view_port <= 0 || !write_token_file())
        return false;
    common_env(&c, X.view_port);
    snprintf(v_tokens, sizeof(v_tokens), "LST_VIEW_TOKENS_FILE=%s", X.tokens);
    snprintf(v_url, sizeof(v_url), "LST_GATEWAY_URL=%s", X.E.sim);
    snprintf(v_secret, sizeof(v_secret), "LST_GATEWAY_SECRET_FILE=%s/demo/DEMO-ONLY-gateway.secret",
             X.E.src);
    snprintf(v_key, sizeof(v_key), "LST_PRIVATE_KEY_FILE=%s/demo/DEMO-ONLY-gateway.private.key",
             X.E.src);
    const char *env[] = {c.port,
                         c.prefix,
                         c.db,
                         c.blobs,
                         v_tokens,
                         v_url,
                         v_secret,
                         v_key,
                         "LST_GATEWAY_ID=*LSTDEMO",
                         "LST_GATEWAY_SECRET=",
                         "LST_PRIVATE_KEY=",
                         "LST_VIEW_CORS_ORIGINS=https://dispo.example.com",
                         "LST_LOG_LEVEL=info",
                         NULL};
    snprintf(X.view_log, sizeof(X.view_log), "%s.view-api", X.E.log);
    X.view_pid = e2e_spawn(bin, X.view_log, env);
    H.port = (uint16_t)X.view_port;
    return X.view_pid > 0 && e2e_wait_port(X.view_port, "/readyz", X.view_pid, 30000);
}

/* ---- the directory: the ERP export joined with the simulator's users ------------------------ */

static void join_sim_user(json_object *users, struct emp *e)
{
    for (size_t i = 0; i < json_object_array_length(users); i++) {
        json_object *u = json_object_array_get_idx(users, i);
        const char *no = jstr(u, "employeeNo");
        if (no == NULL || strcmp(no, e->id) != 0)
            continue;
        snprintf(e->tid, sizeof(e->tid), "%s", S(jstr(u, "identity")));
        e->rr = json_object_get_boolean(jget(u, "readReceipts"));
        e->file = strstr(S(jstr(u, "capabilities")), "file") != NULL;
        return;
    }
}

static bool load_directory(void)
{
    char line[1024];
    json_object *users = e2e_sim_users(&X.E);
    FILE *csv = e2e_open_export(&X.E);
    bool header = true;
    while (users != NULL && csv != NULL && X.nemp < MAX_EMP && fgets(line, sizeof(line), csv)) {
        char *f[16];
        line[strcspn(line, "\r\n")] = '\0';
        if (header || e2e_csv_split(line, f, 16) < 12) {
            header = false;
            continue;
        }
        struct emp *e = &X.emp[X.nemp++];
        snprintf(e->id, sizeof(e->id), "%s", f[0]);
        snprintf(e->name, sizeof(e->name), "%s %s", f[1], f[2]);
        snprintf(e->depot, sizeof(e->depot), "%s", f[3]);
        snprintf(e->dep, sizeof(e->dep), "%s", f[4]);
        snprintf(e->veh, sizeof(e->veh), "%s", f[5]);
        snprintf(e->shift, sizeof(e->shift), "%s", f[6]);
        e->active = strcmp(f[9], "1") == 0;
        e->csv_tid = f[11][0] != '\0' && strcmp(f[11], "none") != 0;
        e->contact = e->csv_tid || f[7][0] != '\0' || f[8][0] != '\0';
        if (strcmp(f[11], "none") != 0)
            join_sim_user(users, e);
    }
    if (csv != NULL)
        fclose(csv);
    json_object_put(users);
    X.d17 = X.nemp >= DRIVER17_ROW ? &X.emp[DRIVER17_ROW - 1] : NULL;
    X.rep = X.nemp >= REPLIER_ROW ? &X.emp[REPLIER_ROW - 1] : NULL;
    return X.nemp == 250 && X.d17 != NULL && X.d17->tid[0] != '\0' && X.rep != NULL &&
           X.rep->csv_tid && strcmp(X.rep->shift, PHOTO_SHIFT) == 0;
}

static const struct emp *emp_by_id(const char *id)
{
    for (size_t i = 0; id != NULL && i < X.nemp; i++)
        if (strcmp(X.emp[i].id, id) == 0)
            return &X.emp[i];
    return NULL;
}

static void test_setup(void)
{
    REQUIRE(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
    REQUIRE(lst_threema_init() == LST_OK);
    REQUIRE(sodium_init() >= 0);
    lst_log_init("mission-e2e", LST_LOG_WARN);
    X.sim_pid = X.out_pid = X.ledger_pid = X.view_pid = -1;
    REQUIRE(gwin_env_init(&X.E, "mission"));
    REQUIRE(claim_db());
    REQUIRE(start_sim());
    char v_db[48];
    snprintf(v_db, sizeof(v_db), "LST_REDIS_DB=%d", X.db);
    const char *extra[] = {"LST_LOG_LEVEL=info", v_db, NULL};
    REQUIRE(gwin_start(&X.E, extra));
    char body[320];
    snprintf(body, sizeof(body), "{\"callbackUrl\":\"%s\"}", X.E.url);
    REQUIRE(gwin_sim_faults(&X.E, body));
    REQUIRE(start_gateway_out());
    REQUIRE(start_ledger());
    REQUIRE(start_view_api());
    REQUIRE(load_directory());
    printf("     run %s: Redis db %d, simulator %s, gateway-in :%d, gateway-out :%d, ledger :%d, "
           "view-api :%d, logs %s.*\n",
           X.E.prefix, X.db, X.E.sim, X.E.port, X.out_port, X.ledger_port, X.view_port, X.E.log);
    X.up = true;
}

/* ---- helpers ----------------------------------------------------------------------------------
 */

/* Polls fn until it holds or timeout_ms passed. */
static bool poll_until(bool (*fn)(void *), void *ud, int64_t timeout_ms)
{
    for (int64_t end = lst_mono_ms() + timeout_ms; lst_mono_ms() < end;) {
        if (fn(ud))
            return true;
        lst_sleep_ms(250, NULL);
    }
    return fn(ud);
}

/* Walks GET /api/employees (optionally with a query) and counts the items; -1 on an error. */
static long count_employees(const char *query)
{
    char path[256], cursor[64] = "";
    long n = 0;
    for (int pages = 0; pages < 20; pages++) {
        struct http_result r;
        snprintf(path, sizeof(path), "/api/employees?limit=200%s%s%s", query,
                 cursor[0] ? "&cursor=" : "", cursor);
        if (get(&H, path, TOK_A, &r) != 200) {
            http_result_cleanup(&r);
            return -1;
        }
        n += (long)jlen(r.json, "items");
        const char *next = jstr(r.json, "next_cursor");
        bool more = next != NULL && next[0] != '\0';
        if (more)
            snprintf(cursor, sizeof(cursor), "%s", next);
        http_result_cleanup(&r);
        if (!more)
            return n;
    }
    return -1;
}

static bool directory_full(void *ud)
{
    (void)ud;
    return count_employees("") == 250;
}

/* ---- 1. import ----------------------------------------------------------------------------- */

static bool read_file(const char *path, struct lst_buf *b)
{
    char chunk[4096];
    size_t n;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        lst_buf_append(b, chunk, n);
    fclose(f);
    return b->len > 0;
}

/* POSTs demo/erp-export.csv to the ERP import; the status (-1: the file is unreadable). */
static long import_demo(struct http_result *r)
{
    char path[600];
    struct lst_buf csv;
    lst_buf_init(&csv);
    snprintf(path, sizeof(path), "%s/demo/erp-export.csv", X.E.src);
    long st = -1;
    if (read_file(path, &csv))
        st = http(&H, "POST", "/api/admin/erp-import", TOK_ADMIN, "text/csv", csv.data, csv.len,
                  NULL, r);
    lst_buf_cleanup(&csv);
    return st;
}

static void test_import(void)
{
    REQUIRE(X.up);
    char path[600];
    struct http_result r;
    CHECK_EQ(import_demo(&r), 200);
    CHECK_EQ(jint(r.json, "rows"), 250);
    CHECK_EQ(jint(r.json, "created.count"), 250);
    CHECK_EQ(jint(r.json, "produced"), 250);
    http_result_cleanup(&r);
    CHECK(poll_until(directory_full, NULL, 60000));
    /* The ledger's record of driver 17 is the CSV's, depot and shift as tags. */
    snprintf(path, sizeof(path), "/api/employees/%s", X.d17->id);
    CHECK_EQ(get(&H, path, TOK_B, &r), 200);
    CHECK_STREQ(jstr(r.json, "name"), X.d17->name);
    CHECK_STREQ(jstr(r.json, "department"), X.d17->dep);
    http_result_cleanup(&r);
}

/* ---- 2. sends -------------------------------------------------------------------------------- */

static void add_rcpt(struct msg *m, const struct emp *e)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->to[i] == e)
            return;
    if (m->n < MAX_RCPT)
        m->to[m->n++] = e;
}

/* POSTs a send as token; the message ID into id. Checks 202 and the resolved audience against
 * the expected recipients (m may be NULL: only the count is checked against want). */
static bool send_msg(const char *token, const char *body, struct msg *m, size_t want, char *id,
                     size_t idsz, struct json_object **skipped)
{
    struct http_result r;
    long st = post_json(&H, "/api/messages", token, body, NULL, &r);
    bool ok = st == 202 && jstr(r.json, "message_id") != NULL;
    CHECK_EQ(st, 202);
    if (ok) {
        snprintf(id, idsz, "%s", jstr(r.json, "message_id"));
        CHECK_EQ(jint(r.json, "recipient_count"), (long long)want);
        size_t n = jlen(r.json, "recipients");
        CHECK_EQ(n, want);
        for (size_t i = 0; m != NULL && i < n && i < MAX_RCPT; i++) {
            char k[48];
            snprintf(k, sizeof(k), "recipients.%zu.employee_id", i);
            const struct emp *e = emp_by_id(jstr(r.json, k));
            bool expected = false;
            for (size_t j = 0; j < m->n; j++)
                expected = expected || m->to[j] == e;
            if (!expected)
                fprintf(stderr, "unexpected recipient %s\n", S(jstr(r.json, k)));
            CHECK(expected);
        }
        if (skipped != NULL)
            *skipped = json_object_get(jget(r.json, "skipped"));
    } else {
        fprintf(stderr, "send answered %ld: %s\n", st, S(r.body.data));
    }
    http_result_cleanup(&r);
    return ok;
}

/* The skipped list holds exactly the drivers the selector matched that cannot receive:
 * inactive ones, and active ones without Threema ID, phone and e-mail. */
static void check_skipped(struct json_object *skipped, const char *field, const char *value)
{
    size_t want = 0;
    CHECK(json_object_is_type(skipped, json_type_array));
    if (!json_object_is_type(skipped, json_type_array)) {
        json_object_put(skipped);
        return;
    }
    for (size_t i = 0; i < X.nemp; i++) {
        const struct emp *e = &X.emp[i];
        const char *v = strcmp(field, "depot") == 0 ? e->depot : e->shift;
        if ((e->active && e->contact) || strcmp(v, value) != 0)
            continue;
        const char *reason = e->active ? "no_contact" : "inactive";
        want++;
        bool found = false;
        for (size_t k = 0; k < json_object_array_length(skipped); k++) {
            json_object *s = json_object_array_get_idx(skipped, k);
            found = found || (strcmp(S(jstr(s, "employee_id")), e->id) == 0 &&
                              strcmp(S(jstr(s, "reason")), reason) == 0);
        }
        if (!found)
            fprintf(stderr, "%s not skipped as %s\n", e->id, reason);
        CHECK(found);
    }
    CHECK_EQ(json_object_array_length(skipped), want);
    json_object_put(skipped);
}

/* The depot's drivers that can receive, plus named drivers of other depots (driver 17, the
 * replier, then the first known ones of the export) until there are 40. */
static void build_text(struct lst_buf *body)
{
    for (size_t i = 0; i < X.nemp; i++)
        if (X.emp[i].active && X.emp[i].contact && strcmp(X.emp[i].depot, TEXT_DEPOT) == 0)
            add_rcpt(&X.text, &X.emp[i]);
    X.depot_n = X.text.n;
    lst_buf_printf(body,
                   "{\"category\":\"dispo\",\"text\":\"Sturmwarnung A1: Planen sichern, "
                   "Ankunft melden.\",\"selector\":{\"tags\":[\"depot:%s\"]},"
                   "\"employee_ids\":[\"%s\",\"%s\"",
                   TEXT_DEPOT, X.d17->id, X.rep->id);
    add_rcpt(&X.text, X.d17);
    add_rcpt(&X.text, X.rep);
    for (size_t i = 0; i < X.nemp && X.text.n < 40; i++) {
        const struct emp *e = &X.emp[i];
        if (e == X.d17 || e == X.rep || !e->active || !e->contact || e->tid[0] == '\0' ||
            strcmp(e->depot, TEXT_DEPOT) == 0)
            continue;
        lst_buf_printf(body, ",\"%s\"", e->id);
        add_rcpt(&X.text, e);
    }
    lst_buf_puts(body, "]}");
}

/* The shift photo's bytes: a small PNG-looking picture (GET /api/blobs/ compares them). */
static void shift_image(unsigned char img[2048])
{
    memcpy(img, "\x89PNG\r\n\x1a\n", 8);
    for (size_t i = 8; i < 2048; i++)
        img[i] = (unsigned char)(i * 31 + 7);
}

/* The photo a simulated phone sends (photo_png of tools/threema-sim/phones.c, a 4x4 PNG),
 * which GET /api/blobs/{sha256} must return byte for byte. */
static const unsigned char sim_photo[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
    0x52, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x08, 0x02, 0x00, 0x00, 0x00, 0x26,
    0x93, 0x09, 0x29, 0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x50,
    0x48, 0x58, 0x00, 0x47, 0x0c, 0xc4, 0x71, 0x00, 0xcc, 0x43, 0x12, 0x01, 0x58, 0xb5, 0x33,
    0x58, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

/* GET /api/blobs/{ref} as dispatcher A: status want; with 200 exactly the bytes want_data with
 * Content-Type mime and the ETag, which answers 304 when sent back. */
static void check_blob(const char *ref, long want, const void *want_data, size_t len,
                       const char *mime)
{
    char path[128], line[160];
    struct http_result r;
    snprintf(path, sizeof(path), "/api/blobs/%s", ref);
    CHECK_EQ(get(&H, path, TOK_A, &r), want);
    if (want == 200) {
        CHECK(r.body.len == len && memcmp(r.body.data, want_data, len) == 0);
        snprintf(line, sizeof(line), "Content-Type: %s\r\n", mime);
        CHECK(has_header(&r, line));
        snprintf(line, sizeof(line), "ETag: \"%s\"", ref);
        CHECK(has_header(&r, line));
        CHECK(has_header(&r, "X-Content-Type-Options: nosniff"));
        http_result_cleanup(&r);
        snprintf(line, sizeof(line), "If-None-Match: \"%s\"", ref);
        const char *inm[] = {line, NULL};
        CHECK_EQ(http(&H, "GET", path, TOK_A, NULL, NULL, 0, inm, &r), 304);
        CHECK_EQ(r.body.len, 0);
    }
    http_result_cleanup(&r);
}

/* A small PNG-looking picture, base64. */
static void build_photo(struct lst_buf *body)
{
    unsigned char img[2048];
    char b64[4096];
    shift_image(img);
    sodium_bin2base64(b64, sizeof(b64), img, sizeof(img), sodium_base64_VARIANT_ORIGINAL);
    for (size_t i = 0; i < X.nemp; i++)
        if (X.emp[i].active && X.emp[i].contact && strcmp(X.emp[i].shift, PHOTO_SHIFT) == 0)
            add_rcpt(&X.photo, &X.emp[i]);
    lst_buf_printf(body,
                   "{\"category\":\"ladung\",\"selector\":{\"tags\":[\"shift:%s\"]},"
                   "\"attachment\":{\"mime\":\"image/png\",\"filename\":\"rampe-4.png\","
                   "\"caption\":\"Rampe 4 heute gesperrt\",\"data_base64\":\"%s\"}}",
                   PHOTO_SHIFT, b64);
    X.photo.image = true;
}

static void test_sends(void)
{
    REQUIRE(X.up);
    struct lst_buf body;
    struct json_object *skipped = NULL;
    lst_buf_init(&body);
    build_text(&body);
    REQUIRE(X.text.n == 40);
    REQUIRE(send_msg(TOK_A, body.data, &X.text, 40, X.text.id, sizeof(X.text.id), &skipped));
    json_object *s0 = json_object_array_get_idx(skipped, 0);
    snprintf(X.skip_id, sizeof(X.skip_id), "%s", S(jstr(s0, "employee_id")));
    snprintf(X.skip_reason, sizeof(X.skip_reason), "%s", S(jstr(s0, "reason")));
    check_skipped(skipped, "depot", TEXT_DEPOT);
    size_t unknown = 0;
    for (size_t i = 0; i < X.text.n; i++)
        unknown += X.text.to[i]->tid[0] == '\0';
    CHECK_EQ(unknown, 1); /* exactly one recipient unknown to Threema */
    lst_buf_reset(&body);
    build_photo(&body);
    skipped = NULL;
    REQUIRE(
        send_msg(TOK_A, body.data, &X.photo, X.photo.n, X.photo.id, sizeof(X.photo.id), &skipped));
    check_skipped(skipped, "shift", PHOTO_SHIFT);
    printf("     text %s: %zu recipients (depot %s: %zu, named %zu); photo %s: %zu "
           "recipients (shift %s)\n",
           X.text.id, X.text.n, TEXT_DEPOT, X.depot_n, X.text.n - X.depot_n, X.photo.id, X.photo.n,
           PHOTO_SHIFT);
    lst_buf_cleanup(&body);
}

/* ---- 3. per-recipient states ------------------------------------------------------------------
 */

struct expect {
    const char *state, *code;
    bool read_unknown;
};

static struct expect expected(const struct msg *m, size_t i, bool with_reactions)
{
    const struct emp *e = m->to[i];
    if (e->tid[0] == '\0')
        return (struct expect){"failed", "lookup_not_found", false};
    if (m->image && !e->file)
        return (struct expect){"failed", "capability_missing", false};
    if (with_reactions && m->react[i] == R_ACK)
        return (struct expect){"acknowledged", NULL, false};
    if (with_reactions && m->react[i] == R_DECLINE)
        return (struct expect){"declined", NULL, false};
    return e->rr ? (struct expect){"read", NULL, false} : (struct expect){"delivered", NULL, true};
}

static json_object *recipient_status(json_object *detail, const char *eid)
{
    json_object *rs = jget(detail, "recipients");
    for (size_t i = 0; rs != NULL && i < json_object_array_length(rs); i++) {
        json_object *x = json_object_array_get_idx(rs, i);
        if (strcmp(S(jstr(x, "employee_id")), eid) == 0)
            return jget(x, "status");
    }
    return NULL;
}

struct settle {
    struct msg *m;
    bool reactions;
    json_object *detail; /* the last detail read (owned) */
};

static bool settled(void *ud)
{
    struct settle *s = ud;
    struct http_result r;
    char path[96];
    snprintf(path, sizeof(path), "/api/messages/%s", s->m->id);
    bool ok = get(&H, path, TOK_B, &r) == 200;
    for (size_t i = 0; ok && i < s->m->n; i++) {
        json_object *st = recipient_status(r.json, s->m->to[i]->id);
        struct expect x = expected(s->m, i, s->reactions);
        ok = st != NULL && strcmp(S(jstr(st, "state")), x.state) == 0 &&
             (jget(st, "read_unknown") != NULL) == x.read_unknown;
    }
    json_object_put(s->detail);
    s->detail = json_object_get(r.json);
    http_result_cleanup(&r);
    return ok;
}

/* Reports the recipients not in their expected state. */
static void explain(const struct settle *s)
{
    for (size_t i = 0; i < s->m->n; i++) {
        json_object *st = recipient_status(s->detail, s->m->to[i]->id);
        struct expect x = expected(s->m, i, s->reactions);
        if (st == NULL || strcmp(S(jstr(st, "state")), x.state) != 0 ||
            (jget(st, "read_unknown") != NULL) != x.read_unknown)
            fprintf(stderr, "  %s %s (%s, rr %d): want %s%s, have %s\n", s->m->id, s->m->to[i]->id,
                    s->m->to[i]->tid, s->m->to[i]->rr, x.state,
                    x.read_unknown ? " read_unknown" : "",
                    st ? json_object_to_json_string(st) : "(no status)");
    }
}

/* Every recipient with the timestamps and details of its state; counts and read_unknown. */
static void check_detail(const struct msg *m, json_object *d)
{
    long long per[9] = {0}, unknown = 0;
    static const char *const states[] = {"queued",       "retrying",  "failed",
                                         "sent",         "delivered", "read",
                                         "acknowledged", "declined",  "unknown"};
    CHECK_EQ(jlen(d, "recipients"), m->n);
    CHECK_EQ(jint(d, "counts.recipients"), (long long)m->n);
    for (size_t i = 0; i < m->n; i++) {
        json_object *st = recipient_status(d, m->to[i]->id);
        struct expect x = expected(m, i, true);
        REQUIRE(st != NULL);
        CHECK_STREQ(jstr(st, "state"), x.state);
        CHECK(jint(st, "queued_at") > 0);
        if (x.code != NULL) {
            CHECK_STREQ(jstr(st, "failure_code"), x.code);
            CHECK(strlen(S(jstr(st, "failure_reason"))) > 0);
            CHECK(jint(st, "failed_at") > 0);
            CHECK(jget(st, "sent_at") == NULL);
        } else {
            CHECK(jint(st, "sent_at") > 0 && jint(st, "delivered_at") >= jint(st, "sent_at"));
            CHECK_EQ(strlen(S(jstr(st, "threema_message_id"))), LST_THREEMA_MSGID_HEX);
            CHECK_EQ(jget(st, "read_at") != NULL, m->to[i]->rr);
            CHECK_EQ(jget(st, "acknowledged_at") != NULL, m->react[i] == R_ACK);
            CHECK_EQ(jget(st, "declined_at") != NULL, m->react[i] == R_DECLINE);
        }
        CHECK_EQ(jget(st, "read_unknown") != NULL, x.read_unknown);
        unknown += x.read_unknown;
        for (size_t k = 0; k < LST_ARRAY_LEN(states); k++)
            per[k] += strcmp(states[k], x.state) == 0;
    }
    for (size_t k = 0; k + 1 < LST_ARRAY_LEN(states); k++) {
        char key[48];
        snprintf(key, sizeof(key), "counts.%s", states[k]);
        if (jint(d, key) != per[k])
            fprintf(stderr, "%s: %s %lld, expected %lld\n", m->id, key, (long long)jint(d, key),
                    per[k]);
        CHECK_EQ(jint(d, key), per[k]);
    }
    CHECK_EQ(jint(d, "read_unknown"), unknown);
    printf("     %s (%s): %zu recipients: failed %lld, delivered %lld (read unknown %lld), "
           "read %lld, acknowledged %lld, declined %lld\n",
           m->id, m->image ? "photo" : "text", m->n, per[2], per[4], unknown, per[5], per[6],
           per[7]);
}

/* Two readers of the text acknowledge and one declines, as their phones: receipts for the
 * Threema message IDs the ledger recorded. Driver 17 is left alone. */
static void react_to_text(json_object *detail)
{
    size_t acks = 0, declines = 0;
    for (size_t i = 0; i < X.text.n && declines < 1; i++) {
        const struct emp *e = X.text.to[i];
        if (e == X.d17 || e == X.rep || e->tid[0] == '\0' || !e->rr)
            continue;
        json_object *st = recipient_status(detail, e->id);
        const char *tmid = jstr(st, "threema_message_id");
        char extra[128], msgid[LST_THREEMA_MSGID_HEX + 1];
        REQUIRE(tmid != NULL);
        enum react k = acks < 2 ? R_ACK : R_DECLINE;
        snprintf(extra, sizeof(extra), "\"status\":%d,\"messageId\":\"%s\"", k == R_ACK ? 3 : 4,
                 tmid);
        CHECK(gwin_sim_reply(&X.E, e->tid, "receipt", extra, msgid));
        X.text.react[i] = k;
        acks += k == R_ACK;
        declines += k == R_DECLINE;
    }
    CHECK_EQ(acks, 2);
    CHECK_EQ(declines, 1);
}

/* Every employee's threema object after the text settled: "id" with the CSV's Threema ID,
 * "lookup" for a phone or e-mail, "none" without any; a text recipient found by phone or
 * e-mail shows the ID gateway-out's lookup found (learned from lst.sent by the ledger), the
 * one unknown to Threema no ID and her failed lookup. Returns the employees checked. */
static size_t check_reach_page(json_object *items)
{
    size_t n = 0;
    for (size_t i = 0; i < json_object_array_length(items); i++, n++) {
        json_object *it = json_object_array_get_idx(items, i), *t = jget(it, "threema");
        const struct emp *e = emp_by_id(jstr(it, "employee_id"));
        bool to_text = false;
        CHECK(e != NULL && t != NULL);
        if (e == NULL || t == NULL)
            continue;
        for (size_t j = 0; j < X.text.n; j++)
            to_text = to_text || X.text.to[j] == e;
        CHECK_STREQ(jstr(t, "reachable"), e->csv_tid ? "id" : e->contact ? "lookup" : "none");
        if (e->csv_tid)
            CHECK_STREQ(jstr(t, "threema_id"), e->tid);
        if (!to_text || e->csv_tid)
            continue;
        if (e->tid[0] != '\0') {
            CHECK_STREQ(jstr(t, "threema_id"), e->tid);
            CHECK(json_object_get_boolean(jget(t, "learned")));
        } else {
            CHECK(jget(t, "threema_id") == NULL);
            CHECK_EQ(jlen(t, "learned_ids"), 0);
            CHECK_STREQ(jstr(t, "last_failure.failure_code"), "lookup_not_found");
        }
    }
    return n;
}

static void check_reach(void)
{
    char path[128], cursor[64] = "";
    size_t n = 0;
    for (int pages = 0; pages < 5; pages++) {
        struct http_result r;
        snprintf(path, sizeof(path), "/api/employees?limit=200%s%s", cursor[0] ? "&cursor=" : "",
                 cursor);
        REQUIRE(get(&H, path, TOK_A, &r) == 200);
        n += check_reach_page(jget(r.json, "items"));
        const char *next = jstr(r.json, "next_cursor");
        snprintf(cursor, sizeof(cursor), "%s", next != NULL ? next : "");
        http_result_cleanup(&r);
        if (cursor[0] == '\0')
            break;
    }
    CHECK_EQ(n, 250);
}

static void test_states(void)
{
    REQUIRE(X.up);
    struct settle t = {&X.text, false, NULL}, p = {&X.photo, false, NULL};
    bool ok = poll_until(settled, &t, 90000);
    if (!ok)
        explain(&t);
    CHECK(ok);
    ok = poll_until(settled, &p, 60000);
    if (!ok)
        explain(&p);
    CHECK(ok);
    REQUIRE(t.detail != NULL && p.detail != NULL);
    react_to_text(t.detail);
    t.reactions = true;
    ok = poll_until(settled, &t, 30000);
    if (!ok)
        explain(&t);
    CHECK(ok);
    check_detail(&X.text, t.detail);
    check_detail(&X.photo, p.detail);
    check_reach();
    CHECK_STREQ(jstr(t.detail, "category"), "dispo");
    CHECK_STREQ(jstr(p.detail, "category"), "ladung");
    /* the skipped went through lst.message and the ledger into the detail, as the send said */
    check_skipped(json_object_get(jget(t.detail, "skipped")), "depot", TEXT_DEPOT);
    check_skipped(json_object_get(jget(p.detail, "skipped")), "shift", PHOTO_SHIFT);
    CHECK_STREQ(jstr(p.detail, "kind"), "image");
    CHECK_EQ(strlen(S(jstr(p.detail, "blob"))), 64);
    snprintf(X.shift_blob, sizeof(X.shift_blob), "%s", S(jstr(p.detail, "blob")));
    json_object_put(t.detail);
    json_object_put(p.detail);
}

/* ---- 4. dispatcher B's view -------------------------------------------------------------------
 */

static bool exists(void *ud)
{
    struct http_result r;
    long st = get(&H, ud, TOK_B, &r);
    http_result_cleanup(&r);
    return st == 200;
}

/* The item IDs of one timeline page, comma-separated, into out. */
static long timeline_ids(const char *token, const char *query, char *out, size_t outsz)
{
    char path[512];
    struct http_result r;
    snprintf(path, sizeof(path), "/api/timeline?limit=50%s", query);
    long st = get(&H, path, token, &r);
    out[0] = '\0';
    for (size_t i = 0; st == 200 && i < jlen(r.json, "items"); i++) {
        char k[32];
        snprintf(k, sizeof(k), "items.%zu.id", i);
        size_t n = strlen(out);
        snprintf(out + n, outsz - n, "%s%s", i > 0 ? "," : "", S(jstr(r.json, k)));
    }
    http_result_cleanup(&r);
    return st;
}

static void send_infos(void)
{
    char body[512], path[96];
    size_t n = 0, want_b = 0;
    struct msg m = {0};
    /* A: two Bremen Nahverkehr drivers (no Kühllogistik) */
    snprintf(body, sizeof(body),
             "{\"category\":\"info\",\"text\":\"Kantine heute zu\","
             "\"employee_ids\":[");
    for (size_t i = 0; i < X.nemp && n < 2; i++) {
        const struct emp *e = &X.emp[i];
        if (!e->active || strcmp(e->depot, "Bremen-Hemelingen") != 0 ||
            strcmp(e->dep, "Nahverkehr") != 0)
            continue;
        size_t len = strlen(body);
        snprintf(body + len, sizeof(body) - len, "%s\"%s\"", n > 0 ? "," : "", e->id);
        add_rcpt(&m, e);
        n++;
    }
    strncat(body, "]}", sizeof(body) - strlen(body) - 1);
    CHECK(send_msg(TOK_A, body, &m, 2, X.info_a, sizeof(X.info_a), NULL));
    /* B: Kühllogistik drivers of Kiel (both lists must match) */
    memset(&m, 0, sizeof(m));
    for (size_t i = 0; i < X.nemp; i++) {
        const struct emp *e = &X.emp[i];
        if (e->active && strcmp(e->depot, "Kiel-Wellsee") == 0 && strcmp(e->dep, VIEW_DEP) == 0) {
            add_rcpt(&m, e);
            want_b++;
        }
    }
    REQUIRE(want_b > 0);
    snprintf(body, sizeof(body),
             "{\"category\":\"info\",\"text\":\"Kühlaggregate prüfen\",\"selector\":"
             "{\"departments\":[\"%s\"],\"tags\":[\"depot:Kiel-Wellsee\"]}}",
             VIEW_DEP);
    CHECK(send_msg(TOK_B, body, &m, want_b, X.info_b, sizeof(X.info_b), NULL));
    snprintf(path, sizeof(path), "/api/messages/%s", X.info_b);
    CHECK(poll_until(exists, path, 30000));
    snprintf(path, sizeof(path), "/api/messages/%s", X.info_a);
    CHECK(poll_until(exists, path, 30000));
}

static bool to_depot(const struct msg *m, const char *depot)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->to[i]->depot, depot) == 0)
            return true;
    }
    return false;
}

/* The view: one category hidden, one depot, saved by B (the view holds the depot). */
static void test_depot_view(const char *dep_view_query)
{
    char ids[1024], want[256], query[320], path[160];
    struct http_result r;
    bool photo = to_depot(&X.photo, VIEW_DEPOT), text = to_depot(&X.text, VIEW_DEPOT);
    long st = post_json(&H, "/api/views", TOK_B,
                        "{\"name\":\"Kiel ohne Dispo\",\"shared\":false,"
                        "\"filter\":{\"depot\":\"" VIEW_DEPOT "\"},\"hidden\":[\"dispo\"]}",
                        NULL, &r);
    CHECK_EQ(st, 202);
    REQUIRE(jstr(r.json, "id") != NULL);
    snprintf(path, sizeof(path), "/api/views/%s", jstr(r.json, "id"));
    snprintf(query, sizeof(query), "&view=%s", jstr(r.json, "id"));
    http_result_cleanup(&r);
    CHECK(poll_until(exists, path, 30000));
    CHECK_EQ(get(&H, path, TOK_B, &r), 200);
    CHECK_STREQ(S(jstr(r.json, "filter.depot")), VIEW_DEPOT);
    http_result_cleanup(&r);
    snprintf(want, sizeof(want), "%s%s%s", X.info_b, photo ? "," : "", photo ? X.photo.id : "");
    CHECK_EQ(timeline_ids(TOK_B, query, ids, sizeof(ids)), 200);
    if (strcmp(ids, want) != 0)
        fprintf(stderr, "depot view: %s, want %s\n", ids, want);
    CHECK_STREQ(ids, want);
    /* the same as plain parameters, and as the tag the depot stands for */
    CHECK_EQ(timeline_ids(TOK_B, "&hidden=dispo&depot=" VIEW_DEPOT, ids, sizeof(ids)), 200);
    CHECK_STREQ(ids, want);
    CHECK_EQ(timeline_ids(TOK_B, "&hidden=dispo&tag=depot:" VIEW_DEPOT, ids, sizeof(ids)), 200);
    CHECK_STREQ(ids, want);
    /* B's department view (Kühllogistik, dispo hidden) narrowed by depot= in the request */
    snprintf(query, sizeof(query), "%s&depot=%s", dep_view_query, VIEW_DEPOT);
    CHECK_EQ(timeline_ids(TOK_B, query, ids, sizeof(ids)), 200);
    CHECK_STREQ(ids, want);
    /* without hiding, the dispo text too if it went there */
    size_t len = strlen(want);
    snprintf(want + len, sizeof(want) - len, "%s%s", text ? "," : "", text ? X.text.id : "");
    CHECK_EQ(timeline_ids(TOK_B, "&depot=" VIEW_DEPOT, ids, sizeof(ids)), 200);
    CHECK_STREQ(ids, want);
}

static char view_path[160];

static void test_view(void)
{
    REQUIRE(X.up);
    char ids[1024], want[256], query[256];
    struct http_result r;
    send_infos();
    /* The saved view of dispatcher B: no dispo traffic, Kühllogistik only. */
    long st = post_json(&H, "/api/views", TOK_B,
                        "{\"name\":\"Kühllogistik ohne Dispo\",\"shared\":false,"
                        "\"filter\":{\"department\":\"" VIEW_DEP "\"},\"hidden\":[\"dispo\"]}",
                        NULL, &r);
    CHECK_EQ(st, 202);
    REQUIRE(jstr(r.json, "id") != NULL);
    snprintf(view_path, sizeof(view_path), "/api/views/%s", jstr(r.json, "id"));
    snprintf(query, sizeof(query), "&view=%s", jstr(r.json, "id"));
    http_result_cleanup(&r);
    CHECK(poll_until(exists, view_path, 30000));
    snprintf(want, sizeof(want), "%s,%s", X.info_b, X.photo.id);
    CHECK_EQ(timeline_ids(TOK_B, query, ids, sizeof(ids)), 200);
    if (strcmp(ids, want) != 0)
        fprintf(stderr, "view: %s, want %s\n", ids, want);
    CHECK_STREQ(ids, want);
    /* The same as plain query parameters; and each half of the filter on its own. */
    CHECK_EQ(timeline_ids(TOK_B, "&hidden=dispo&department=" VIEW_DEP, ids, sizeof(ids)), 200);
    CHECK_STREQ(ids, want);
    snprintf(want, sizeof(want), "%s,%s,%s", X.info_b, X.photo.id, X.text.id);
    CHECK_EQ(timeline_ids(TOK_B, "&department=" VIEW_DEP, ids, sizeof(ids)), 200);
    CHECK_STREQ(ids, want);
    snprintf(want, sizeof(want), "%s,%s,%s", X.info_b, X.info_a, X.photo.id);
    CHECK_EQ(timeline_ids(TOK_B, "&hidden=dispo", ids, sizeof(ids)), 200);
    CHECK_STREQ(ids, want);
    test_depot_view(query);
    /* A's view of the same view ID: not shared, so not visible. */
    CHECK_EQ(timeline_ids(TOK_A, query, ids, sizeof(ids)), 404);
}

/* ---- 5. replies ------------------------------------------------------------------------------ */

struct hist {
    const struct emp *who;
    size_t want;
    json_object *doc; /* the last history page (owned) */
};

static bool history_has(void *ud)
{
    struct hist *h = ud;
    char path[96];
    struct http_result r;
    snprintf(path, sizeof(path), "/api/employees/%s/history?limit=50", h->who->id);
    bool ok = get(&H, path, TOK_A, &r) == 200 && jlen(r.json, "items") == h->want;
    if (ok && strcmp(S(jstr(r.json, "items.0.kind")), "image") == 0)
        ok = jstr(r.json, "items.0.blob") != NULL; /* gateway-in stored the photo */
    json_object_put(h->doc);
    h->doc = json_object_get(r.json);
    http_result_cleanup(&r);
    return ok;
}

static void print_history(const char *what, json_object *d)
{
    fprintf(stderr, "%s: %s\n", what, d != NULL ? json_object_to_json_string(d) : "(none)");
}

/* The replier (data row 37, his Threema ID in the ERP export, a recipient of the text and of
 * the shift photo) answers with a text, then a photo. */
static void test_replies(void)
{
    REQUIRE(X.up);
    struct hist h = {X.rep, 3, NULL};
    const char *text = "Planen gesichert, Ankunft 14:30.";
    char extra[200];
    snprintf(extra, sizeof(extra), "\"text\":\"%s\"", text);
    REQUIRE(gwin_sim_reply(&X.E, X.rep->tid, "text", extra, X.reply_text));
    /* One after the other, so their order in the history is the order they were sent. */
    bool ok = poll_until(history_has, &h, 30000);
    if (!ok)
        print_history("history after the text reply", h.doc);
    REQUIRE(ok);
    snprintf(extra, sizeof(extra), "\"text\":\"Lieferschein Tour 17\"");
    REQUIRE(gwin_sim_reply(&X.E, X.rep->tid, "photo", extra, X.reply_photo));
    h.want = 4;
    ok = poll_until(history_has, &h, 30000);
    if (!ok)
        print_history("history after the photo reply", h.doc);
    REQUIRE(ok);
    json_object *d = h.doc;
    /* newest first: his photo, his text, the shift photo and the text, each outgoing one with
     * his own status */
    CHECK_STREQ(jstr(d, "items.0.direction"), "in");
    CHECK_STREQ(jstr(d, "items.0.kind"), "image");
    CHECK_STREQ(jstr(d, "items.0.caption"), "Lieferschein Tour 17");
    CHECK_STREQ(jstr(d, "items.0.from"), X.rep->tid);
    CHECK_STREQ(jstr(d, "items.0.employee_id"), X.rep->id);
    CHECK_STREQ(jstr(d, "items.0.employee_name"), X.rep->name); /* the directory's, now */
    CHECK_STREQ(jstr(d, "items.0.reply_to"), X.photo.id);
    CHECK_STREQ(jstr(d, "items.1.direction"), "in");
    CHECK_STREQ(jstr(d, "items.1.kind"), "text");
    CHECK_STREQ(jstr(d, "items.1.text"), text);
    CHECK_STREQ(jstr(d, "items.1.reply_to"), X.photo.id);
    CHECK_STREQ(jstr(d, "items.1.employee_name"), X.rep->name);
    CHECK_STREQ(jstr(d, "items.2.id"), X.photo.id);
    CHECK(jget(d, "items.2.employee_name") == NULL); /* to a whole shift: nobody in particular */
    CHECK_STREQ(jstr(d, "items.2.recipient_status.state"), !X.rep->file ? "failed"
                                                           : X.rep->rr  ? "read"
                                                                        : "delivered");
    CHECK_STREQ(jstr(d, "items.3.id"), X.text.id);
    CHECK_STREQ(jstr(d, "items.3.recipient_status.state"), X.rep->rr ? "read" : "delivered");
    for (int i = 0; i < 3; i++) {
        char k0[32], k1[32];
        snprintf(k0, sizeof(k0), "items.%d.at", i);
        snprintf(k1, sizeof(k1), "items.%d.at", i + 1);
        CHECK(jint(d, k0) >= jint(d, k1));
    }
    snprintf(X.reply_text_id, sizeof(X.reply_text_id), "%s", S(jstr(d, "items.1.id")));
    snprintf(X.reply_photo_id, sizeof(X.reply_photo_id), "%s", S(jstr(d, "items.0.id")));
    snprintf(X.photo_blob, sizeof(X.photo_blob), "%s", S(jstr(d, "items.0.blob")));
    CHECK_EQ(strlen(X.photo_blob), 64);
    struct lst_blobstore *bs = NULL;
    CHECK(lst_blobstore_create(X.E.blob_dir, &bs) == LST_OK &&
          lst_blobstore_exists(bs, X.photo_blob));
    lst_blobstore_destroy(bs);
    /* the dispatchers see his photo through the view API exactly as his phone sent it, and
     * the shift photo as dispatcher A uploaded it */
    check_blob(X.photo_blob, 200, sim_photo, sizeof(sim_photo), "image/png");
    unsigned char img[2048];
    shift_image(img);
    check_blob(X.shift_blob, 200, img, sizeof(img), "image/png");
    json_object_put(h.doc);
    /* The shift photo's detail links both replies. */
    char path[96];
    struct http_result r;
    snprintf(path, sizeof(path), "/api/messages/%s", X.photo.id);
    CHECK_EQ(get(&H, path, TOK_B, &r), 200);
    CHECK_EQ(jlen(r.json, "replies"), 2);
    const char *r0 = S(jstr(r.json, "replies.0")), *r1 = S(jstr(r.json, "replies.1"));
    CHECK((strcmp(r0, X.reply_text_id) == 0 && strcmp(r1, X.reply_photo_id) == 0) ||
          (strcmp(r1, X.reply_text_id) == 0 && strcmp(r0, X.reply_photo_id) == 0));
    http_result_cleanup(&r);
}

/* Driver 17 (data row 17) has no Threema ID in the ERP export: gateway-out found it by his
 * phone number and lst.sent names it. His answer must land in his history all the same. */
static void test_reply_phone_contact(void)
{
    REQUIRE(X.up);
    struct hist h = {X.d17, 2, NULL};
    char extra[200], msgid[LST_THREEMA_MSGID_HEX + 1];
    snprintf(extra, sizeof(extra), "\"text\":\"Fahrer 17: verstanden.\"");
    REQUIRE(gwin_sim_reply(&X.E, X.d17->tid, "text", extra, msgid));
    bool ok = poll_until(history_has, &h, 20000);
    if (!ok) {
        print_history("driver 17's history", h.doc);
        struct http_result r;
        get(&H, "/api/timeline?direction=in&limit=5", TOK_A, &r);
        fprintf(stderr, "incoming messages: %s\n", S(r.body.data));
        http_result_cleanup(&r);
    }
    CHECK(ok);
    CHECK_STREQ(jstr(h.doc, "items.0.employee_id"), X.d17->id);
    CHECK_STREQ(jstr(h.doc, "items.0.employee_name"), X.d17->name);
    CHECK_STREQ(jstr(h.doc, "items.0.reply_to"), X.text.id);
    json_object_put(h.doc);
    /* the dispatchers' timeline says who wrote, for every incoming item of the page */
    struct http_result r;
    CHECK_EQ(get(&H, "/api/timeline?direction=in&limit=50", TOK_B, &r), 200);
    size_t named = 0, known = 0, n = jlen(r.json, "items");
    for (size_t i = 0; i < n; i++) {
        char k[48];
        snprintf(k, sizeof(k), "items.%zu.employee_id", i);
        const char *eid = jstr(r.json, k);
        snprintf(k, sizeof(k), "items.%zu.employee_name", i);
        const char *name = jstr(r.json, k);
        const struct emp *e = NULL;
        for (size_t j = 0; eid != NULL && j < X.nemp && e == NULL; j++)
            e = strcmp(X.emp[j].id, eid) == 0 ? &X.emp[j] : NULL;
        known += e != NULL;
        named += e != NULL && name != NULL && strcmp(name, e->name) == 0;
    }
    CHECK(known >= 3); /* the replier's two and driver 17's */
    CHECK_EQ(named, known);
    http_result_cleanup(&r);
}

/* ---- 6. GDPR ----------------------------------------------------------------------------------
 */

struct audit_q {
    const char *query;
    const char *actor;
    const char *action;
};

static bool audit_has(void *ud)
{
    const struct audit_q *q = ud;
    char path[256];
    struct http_result r;
    snprintf(path, sizeof(path), "/api/admin/audit?employee=%s%s", X.rep->id, q->query);
    bool found = false;
    if (get(&H, path, TOK_ADMIN, &r) == 200) {
        for (size_t i = 0; i < jlen(r.json, "items") && !found; i++) {
            json_object *it = json_object_array_get_idx(jget(r.json, "items"), i);
            found = strcmp(S(jstr(it, "actor")), q->actor) == 0 &&
                    strcmp(S(jstr(it, "action")), q->action) == 0 &&
                    strcmp(S(jstr(it, "employee_id")), X.rep->id) == 0;
        }
    }
    http_result_cleanup(&r);
    return found;
}

static bool blob_listed(json_object *arr, const char *ref, bool want_stored)
{
    for (size_t i = 0; arr != NULL && i < json_object_array_length(arr); i++) {
        json_object *b = json_object_array_get_idx(arr, i);
        const char *s =
            json_object_is_type(b, json_type_string) ? json_object_get_string(b) : jstr(b, "ref");
        if (s != NULL && strcmp(s, ref) == 0)
            return !want_stored || json_object_get_boolean(jget(b, "stored"));
    }
    return false;
}

static void check_export(void)
{
    char path[128];
    struct http_result r;
    snprintf(path, sizeof(path), "/api/admin/employees/%s/export", X.rep->id);
    CHECK_EQ(get(&H, path, TOK_ADMIN, &r), 200);
    CHECK_STREQ(jstr(r.json, "employee_id"), X.rep->id);
    CHECK_STREQ(jstr(r.json, "employee.employee_id"), X.rep->id);
    CHECK(!json_object_get_boolean(jget(r.json, "erased")));
    CHECK_EQ(jlen(r.json, "messages"), 4); /* oldest first */
    CHECK_STREQ(jstr(r.json, "messages.0.id"), X.text.id);
    CHECK_STREQ(jstr(r.json, "messages.1.id"), X.photo.id);
    CHECK_STREQ(jstr(r.json, "messages.2.id"), X.reply_text_id);
    CHECK_STREQ(jstr(r.json, "messages.3.id"), X.reply_photo_id);
    CHECK(jget(r.json, "messages.0.recipient_status") != NULL);
    CHECK(jget(r.json, "messages.1.recipient_status") != NULL);
    CHECK(blob_listed(jget(r.json, "blobs"), X.photo_blob, true));
    CHECK(blob_listed(jget(r.json, "blobs"), X.shift_blob, true));
    bool viewed = false;
    for (size_t i = 0; i < jlen(r.json, "access_log"); i++) {
        json_object *a = json_object_array_get_idx(jget(r.json, "access_log"), i);
        viewed = viewed || (strcmp(S(jstr(a, "actor")), "anna") == 0 &&
                            strcmp(S(jstr(a, "action")), "view") == 0);
    }
    CHECK(viewed);
    CHECK_EQ(jlen(r.json, "skipped_by"), 0);
    http_result_cleanup(&r);
    /* a driver the text skipped: what is stored about her is that it did, and why */
    REQUIRE(X.skip_id[0] != '\0');
    snprintf(path, sizeof(path), "/api/admin/employees/%s/export", X.skip_id);
    CHECK_EQ(get(&H, path, TOK_ADMIN, &r), 200);
    CHECK_EQ(jlen(r.json, "skipped_by"), 1);
    CHECK_STREQ(jstr(r.json, "skipped_by.0.message_id"), X.text.id);
    CHECK_STREQ(jstr(r.json, "skipped_by.0.reason"), X.skip_reason);
    http_result_cleanup(&r);
}

/* After the erasure what is stored about him is that he was erased and who accessed his data
 * (the audit log is kept): the export says so instead of "nothing stored". */
static void check_export_after_erasure(void)
{
    char path[128];
    struct http_result r;
    snprintf(path, sizeof(path), "/api/admin/employees/%s/export", X.rep->id);
    CHECK_EQ(get(&H, path, TOK_ADMIN, &r), 200);
    CHECK(json_object_get_boolean(jget(r.json, "erased")));
    CHECK(jget(r.json, "employee") == NULL);
    CHECK_EQ(jlen(r.json, "messages"), 0);
    CHECK_EQ(jlen(r.json, "blobs"), 0);
    bool erasure = false;
    for (size_t i = 0; i < jlen(r.json, "access_log"); i++) {
        json_object *a = json_object_array_get_idx(jget(r.json, "access_log"), i);
        erasure = erasure || strcmp(S(jstr(a, "action")), "erase") == 0;
    }
    CHECK(erasure);
    http_result_cleanup(&r);
    /* a second erasure: nothing left to erase, and it says why */
    snprintf(path, sizeof(path), "/api/admin/employees/%s", X.rep->id);
    CHECK_EQ(http(&H, "DELETE", path, TOK_ADMIN, NULL, NULL, 0, NULL, &r), 404);
    CHECK(strstr(S(jstr(r.json, "detail")), "erased already") != NULL);
    http_result_cleanup(&r);
}

static bool erased(void *ud)
{
    (void)ud;
    char path[96];
    struct http_result r;
    snprintf(path, sizeof(path), "/api/employees/%s", X.rep->id);
    long st = get(&H, path, TOK_B, &r);
    http_result_cleanup(&r);
    return st == 404;
}

static void check_gone(void)
{
    char path[128], q[64];
    struct http_result r;
    snprintf(q, sizeof(q), "&q=%s", X.rep->id);
    CHECK_EQ(count_employees(q), 0);
    CHECK_EQ(count_employees(""), 249);
    snprintf(path, sizeof(path), "/api/employees/%s/history", X.rep->id);
    CHECK_EQ(get(&H, path, TOK_A, &r), 404); /* unknown now: employee-not-found */
    http_result_cleanup(&r);
    snprintf(path, sizeof(path), "/api/messages/%s", X.text.id);
    CHECK_EQ(get(&H, path, TOK_B, &r), 200);
    CHECK(recipient_status(r.json, X.rep->id) == NULL);
    CHECK_EQ(jint(r.json, "counts.recipients"), (long long)X.text.n - 1);
    CHECK_EQ(jint(r.json, "audience_count"), (long long)X.text.n - 1); /* both without him */
    http_result_cleanup(&r);
    snprintf(path, sizeof(path), "/api/messages/%s", X.photo.id);
    CHECK_EQ(get(&H, path, TOK_B, &r), 200);
    CHECK(recipient_status(r.json, X.rep->id) == NULL);
    CHECK_EQ(jint(r.json, "counts.recipients"), (long long)X.photo.n - 1);
    CHECK_EQ(jlen(r.json, "replies"), 0);
    http_result_cleanup(&r);
    snprintf(path, sizeof(path), "/api/messages/%s", X.reply_text_id);
    CHECK_EQ(get(&H, path, TOK_B, &r), 404);
    http_result_cleanup(&r);
    /* the timeline names nobody erased: his items are gone, and his name is nowhere (the
     * incoming ones and the whole first page) */
    static const char *const pages[] = {"/api/timeline?direction=in&limit=200",
                                        "/api/timeline?limit=200"};
    for (size_t i = 0; i < LST_ARRAY_LEN(pages); i++) {
        CHECK_EQ(get(&H, pages[i], TOK_B, &r), 200);
        CHECK(jlen(r.json, "items") > 0);
        CHECK(r.body.data != NULL && strstr(r.body.data, X.rep->name) == NULL);
        CHECK(strstr(S(r.body.data), X.rep->tid) == NULL);
        http_result_cleanup(&r);
    }
    struct lst_blobstore *bs = NULL;
    CHECK(lst_blobstore_create(X.E.blob_dir, &bs) == LST_OK &&
          !lst_blobstore_exists(bs, X.photo_blob));
    CHECK(bs != NULL && lst_blobstore_exists(bs, X.shift_blob)); /* the shift's photo stays */
    lst_blobstore_destroy(bs);
    check_blob(X.photo_blob, 404, NULL, 0, NULL); /* erased: the route has nothing left */
    unsigned char img[2048];
    shift_image(img);
    check_blob(X.shift_blob, 200, img, sizeof(img), "image/png");
}

/* The live stream from position `from` as dispatcher B (raw HTTP/1.0 like view_api_common.h's
 * sse_open, which holds the service tier's token), read until want or ms passed. */
static bool stream_since(const char *from, const char *want, int64_t ms, struct sse *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(H.port)};
    char req[512];
    lst_buf_init(&s->b);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return false;
    int n = snprintf(req, sizeof(req),
                     "GET /api/stream HTTP/1.0\r\nAuthorization: Bearer " TOK_B
                     "\r\nLast-Event-ID: %s\r\n\r\n",
                     from);
    return write(s->fd, req, (size_t)n) == n && sse_wait(s, want, ms);
}

/* The change stream's first entry (the first send's "message": about nobody in particular). */
static void first_stream_id(char out[64])
{
    redisReply *r = redisCommand(X.rc, "XRANGE lst:lg:ev - + COUNT 1");
    out[0] = '\0';
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1)
        snprintf(out, 64, "%s", r->element[0]->element[0]->str);
    if (r != NULL)
        freeReplyObject(r);
}

static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; p != NULL && (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* Issue: a replay of the live stream after the erasure still carried his states and replies.
 * Before: the replay from the first entry names him; after: only the erased event does, and
 * his Threema ID (in his replies' item IDs) is nowhere. */
static void check_stream_forgets(const char *from, bool after)
{
    struct sse s;
    char who[64], erased_ev[160];
    snprintf(who, sizeof(who), "\"employee_id\":\"%s\"", X.rep->id);
    snprintf(erased_ev, sizeof(erased_ev),
             "event: erased\ndata: {\"type\":\"erased\",\"employee_id\":\"%s\"}", X.rep->id);
    CHECK(stream_since(from, after ? erased_ev : who, 10000, &s));
    if (after) {
        CHECK_EQ(occurrences(S(s.b.data), who), 1); /* the erased event alone */
        CHECK(strstr(S(s.b.data), X.rep->tid) == NULL);
        CHECK(strstr(S(s.b.data), "event: message") != NULL); /* the rest is still replayed */
    } else {
        CHECK(strstr(S(s.b.data), "event: status") != NULL);
    }
    sse_close(&s);
}

/* The ERP still lists him: the next import leaves him out (reported as erased), produces
 * nothing, and the directory stays without him. */
static void check_reimport_keeps_erased(void)
{
    char path[96];
    struct http_result r;
    CHECK_EQ(import_demo(&r), 200);
    CHECK_EQ(jint(r.json, "erased.count"), 1);
    CHECK_STREQ(jstr(r.json, "erased.ids.0"), X.rep->id);
    CHECK_EQ(jint(r.json, "created.count"), 0);
    CHECK_EQ(jint(r.json, "produced"), 0);
    http_result_cleanup(&r);
    snprintf(path, sizeof(path), "/api/employees/%s", X.rep->id);
    CHECK_EQ(get(&H, path, TOK_ADMIN, &r), 404);
    http_result_cleanup(&r);
    CHECK_EQ(count_employees(""), 249);
}

static void test_gdpr(void)
{
    REQUIRE(X.up && X.photo_blob[0] != '\0');
    struct audit_q view = {"&action=view", "anna", "view"};
    struct audit_q exp = {"&action=export", "erp-admin", "export"};
    struct audit_q era = {"", "erp-admin", "erase"};
    CHECK(poll_until(audit_has, &view, 30000));
    check_export();
    char from[64];
    first_stream_id(from);
    CHECK(from[0] != '\0');
    check_stream_forgets(from, false);
    char path[128];
    struct http_result r;
    snprintf(path, sizeof(path), "/api/admin/employees/%s", X.rep->id);
    CHECK_EQ(http(&H, "DELETE", path, TOK_ADMIN, NULL, NULL, 0, NULL, &r), 202);
    CHECK(jget(r.json, "tombstone") != NULL && json_object_get_boolean(jget(r.json, "tombstone")));
    CHECK(blob_listed(jget(r.json, "blobs_deleted"), X.photo_blob, false));
    CHECK(!blob_listed(jget(r.json, "blobs_deleted"), X.shift_blob, false));
    /* not in blobs_shared either: that lists only candidates (his own messages' blobs) that
     * other items also reference; a photo to a whole shift is never a candidate */
    http_result_cleanup(&r);
    CHECK(poll_until(erased, NULL, 30000));
    check_gone();
    check_reimport_keeps_erased();
    check_stream_forgets(from, true);
    CHECK(poll_until(audit_has, &exp, 30000));
    CHECK(poll_until(audit_has, &era, 30000));
    check_export_after_erasure();
}

/* ---- 7. refusals ------------------------------------------------------------------------------
 */

static void expect_problem(long st, long want, struct http_result *r, const char *type)
{
    CHECK_EQ(st, want);
    if (type != NULL) {
        char full[96];
        snprintf(full, sizeof(full), "urn:leitstand:problem:%s", type);
        CHECK_STREQ(jstr(r->json, "type"), full);
    }
    CHECK(has_header(r, "Content-Type: application/problem+json"));
    http_result_cleanup(r);
}

static void test_refusals(void)
{
    REQUIRE(X.up);
    struct http_result r;
    char path[128];
    static const char *const anon[] = {"/api/timeline", "/api/employees", "/api/admin/audit"};
    for (size_t i = 0; i < LST_ARRAY_LEN(anon); i++) {
        expect_problem(get(&H, anon[i], NULL, &r), 401, &r, "unauthorized");
        expect_problem(get(&H, anon[i], TOK_WRONG, &r), 401, &r, "unauthorized");
    }
    snprintf(path, sizeof(path), "/api/messages/%s", X.text.id);
    expect_problem(get(&H, path, TOK_WRONG, &r), 401, &r, "unauthorized");
    expect_problem(post_json(&H, "/api/messages", NULL, "{}", NULL, &r), 401, &r, "unauthorized");
    /* a dispatcher on admin routes */
    expect_problem(http(&H, "POST", "/api/admin/erp-import", TOK_A, "text/csv", "a\n", 2, NULL, &r),
                   403, &r, "forbidden");
    expect_problem(get(&H, "/api/admin/audit", TOK_B, &r), 403, &r, "forbidden");
    snprintf(path, sizeof(path), "/api/admin/employees/%s/export", X.emp[0].id);
    expect_problem(get(&H, path, TOK_A, &r), 403, &r, "forbidden");
    snprintf(path, sizeof(path), "/api/admin/employees/%s", X.emp[0].id);
    expect_problem(http(&H, "DELETE", path, TOK_B, NULL, NULL, 0, NULL, &r), 403, &r, "forbidden");
    CHECK_EQ(count_employees(""), 249); /* nobody erased by the refused DELETE */
    /* malformed filter, body and CSV row */
    expect_problem(get(&H, "/api/timeline?direction=sideways", TOK_A, &r), 400, &r,
                   "invalid-query");
    expect_problem(post_json(&H, "/api/messages", TOK_A, "{\"category\":\"dispo\",", NULL, &r), 400,
                   &r, "invalid-json");
    const char *csv = "employee_no,first_name,last_name,department,active\n"
                      "20001,Erika,Muster,Fernverkehr,1\n"
                      "20002,Hans,Muster,Fernverkehr,vielleicht\n";
    long st = http(&H, "POST", "/api/admin/erp-import", TOK_ADMIN, "text/csv", csv, strlen(csv),
                   NULL, &r);
    CHECK_EQ(jint(r.json, "error_count"), 1);
    CHECK_EQ(jint(r.json, "errors.0.row"), 3);
    CHECK_STREQ(jstr(r.json, "errors.0.employee_id"), "20002");
    expect_problem(st, 422, &r, "invalid-import");
    CHECK_EQ(count_employees(""), 249); /* the bad import changed nothing */
}

/* ---- teardown ---------------------------------------------------------------------------------
 */

static void test_teardown(void)
{
    int view_rc = e2e_stop(&X.view_pid);
    int ledger_rc = e2e_stop(&X.ledger_pid);
    int out_rc = e2e_stop(&X.out_pid);
    int in_rc = gwin_stop(&X.E);
    int sim_rc = e2e_stop(&X.sim_pid);
    release_db();
    REQUIRE(X.up);
    CHECK_EQ(view_rc, 0);
    CHECK_EQ(ledger_rc, 0);
    CHECK_EQ(out_rc, 0);
    CHECK_EQ(in_rc, 0);
    CHECK_EQ(sim_rc, 0);
    const char *const files[] = {X.sim_log, X.out_log, X.ledger_log, X.view_log, X.tokens, NULL};
    e2e_remove_run(&X.E, files);
}

LST_TEST_MAIN(T(test_setup), T(test_import), T(test_sends), T(test_states), T(test_view),
              T(test_replies), T(test_reply_phone_contact), T(test_gdpr), T(test_refusals),
              T(test_teardown))
