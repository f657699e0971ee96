/* The Threema Gateway simulator, end to end on loopback: the test starts the threema-sim
 * binary (path in LST_THREEMA_SIM) on an ephemeral port with a small directory CSV and a fresh
 * Gateway key pair, runs a callback sink (an lst_http server) and talks to both with libcurl.
 * It needs no Kafka or Redis. Every wait polls until a deadline. */
#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lst/http.h"
#include "lst/log.h"
#include "lst/threema.h"
#include "lst/util.h"
#include "lst_test.h"

#define SECRET     "test-secret-1234"
#define GATEWAY_ID "*TESTGW1"
#define AUTH       "from=*TESTGW1&secret=" SECRET
#define KNOWN_ID   "ECHOECHO"
#define MAX_CB     256

/* ---- the callback sink ---- */

struct cb_entry {
    char from[LST_THREEMA_ID_SIZE + 1];
    char message_id[LST_THREEMA_MSGID_HEX + 1];
    enum lst_threema_msg_kind kind;
    int status;                          /* receipts */
    char ref[LST_THREEMA_MSGID_HEX + 1]; /* receipts: the first message ID */
    char text[256];                      /* texts */
    struct lst_threema_file file;        /* files: blob, key, thumbnail (strings freed) */
    bool has_nickname;
};

struct fixture {
    pid_t pid;
    char dir[64];
    char base[64];
    uint8_t gw_sk[LST_THREEMA_KEY_SIZE], gw_pk[LST_THREEMA_KEY_SIZE];
    struct lst_http_server *sink;
    pthread_mutex_t lock;
    struct cb_entry cb[MAX_CB];
    size_t ncb;
    atomic_int sink_fail;     /* answer 500 */
    atomic_int sink_attempts; /* requests seen, also the failed ones */
    atomic_int bad_mac;
};

static struct fixture fx = {.pid = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

/* test_sim_events runs this file against LST_SIM_EVENT_THREADS=2 (inherited by the child). */
static bool event_mode(void)
{
    const char *v = getenv("LST_SIM_EVENT_THREADS");
    return v != NULL && strcmp(v, "0") != 0 && v[0] != '\0';
}

/* Looks up the sender's public key through the simulator's own control API. */
static bool user_pk(const char *id, uint8_t pk[LST_THREEMA_KEY_SIZE]);

static void sink_store(const struct lst_threema_callback *c, const struct lst_threema_msg *m)
{
    pthread_mutex_lock(&fx.lock);
    if (fx.ncb < MAX_CB) {
        struct cb_entry *e = &fx.cb[fx.ncb++];
        memset(e, 0, sizeof(*e));
        memcpy(e->from, c->from, sizeof(e->from));
        memcpy(e->message_id, c->message_id, sizeof(e->message_id));
        e->kind = m->kind;
        e->has_nickname = c->nickname != NULL;
        if (m->kind == LST_THREEMA_MSG_RECEIPT) {
            e->status = m->receipt.status;
            lst_threema_hex_encode(m->receipt.ids[0], 8, e->ref, sizeof(e->ref));
        } else if (m->kind == LST_THREEMA_MSG_TEXT) {
            snprintf(e->text, sizeof(e->text), "%s", m->text);
        } else if (m->kind == LST_THREEMA_MSG_FILE) {
            e->file = m->file;
            e->file.mime = e->file.name = e->file.thumbnail_mime = e->file.caption = NULL;
        }
    }
    pthread_mutex_unlock(&fx.lock);
}

static void sink_handler(void *ud, const struct lst_http_request *req,
                         struct lst_http_response *resp)
{
    struct lst_threema_callback c;
    struct lst_threema_msg m;
    struct lst_threema_shared sh;
    uint8_t pk[LST_THREEMA_KEY_SIZE];
    (void)ud;
    atomic_fetch_add(&fx.sink_attempts, 1);
    memset(&m, 0, sizeof(m));
    if (atomic_load(&fx.sink_fail)) {
        lst_http_reply(resp, 500, "text/plain", "down", 4);
        return;
    }
    if (lst_threema_callback_parse(req->body, req->body_len, SECRET, &c, NULL) != LST_OK) {
        atomic_fetch_add(&fx.bad_mac, 1);
        lst_http_reply(resp, 400, "text/plain", "bad", 3);
        return;
    }
    bool ok = strcmp(c.to, GATEWAY_ID) == 0 && user_pk(c.from, pk) &&
              lst_threema_shared_init(&sh, fx.gw_sk, pk) == LST_OK &&
              lst_threema_msg_open(&sh, c.nonce, c.box, c.box_len, &m, NULL) == LST_OK;
    if (ok)
        sink_store(&c, &m);
    else
        atomic_fetch_add(&fx.bad_mac, 1);
    lst_http_reply(resp, 200, "text/plain", "", 0);
    lst_threema_msg_cleanup(&m);
    lst_threema_callback_cleanup(&c);
}

/* ---- HTTP client ---- */

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    lst_buf_append(ud, p, size * n);
    return size * n;
}

/* One request; returns the status (0 on a transport error, -1 on a timeout). */
static curl_off_t last_retry_after; /* Retry-After of the last answer, seconds (0: none) */

static long http(const char *method, const char *path, const char *ctype, const char *body,
                 size_t len, struct lst_buf *out, long timeout_ms)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", fx.base, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    long code = 0;
    if (ctype != NULL) {
        char line[128];
        snprintf(line, sizeof(line), "Content-Type: %s", ctype);
        h = curl_slist_append(h, line);
    }
    h = curl_slist_append(h, "X-Request-Id: req-test-1");
    lst_buf_reset(out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    CURLcode rc = curl_easy_perform(c);
    last_retry_after = 0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &last_retry_after);
    } else if (rc == CURLE_OPERATION_TIMEDOUT)
        code = -1;
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

static long get(const char *path, struct lst_buf *out)
{
    return http("GET", path, NULL, NULL, 0, out, 10000);
}

static long post_form(const char *path, const char *form, struct lst_buf *out)
{
    return http("POST", path, "application/x-www-form-urlencoded", form, strlen(form), out, 10000);
}

static long post_json(const char *path, const char *json, struct lst_buf *out)
{
    return http("POST", path, "application/json", json, strlen(json), out, 10000);
}

static json_object *get_json(const char *path)
{
    struct lst_buf b;
    lst_buf_init(&b);
    json_object *o = get(path, &b) == 200 ? json_tokener_parse(b.data) : NULL;
    lst_buf_cleanup(&b);
    return o;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static int64_t jint(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -1;
}

static bool user_pk(const char *id, uint8_t pk[LST_THREEMA_KEY_SIZE])
{
    char path[64];
    snprintf(path, sizeof(path), "/_sim/users/%s", id);
    json_object *u = get_json(path);
    bool ok =
        u != NULL && jstr(u, "publicKey") != NULL &&
        lst_threema_key_parse(jstr(u, "publicKey"), LST_THREEMA_KEY_PUBLIC, pk, NULL) == LST_OK;
    json_object_put(u);
    return ok;
}

/* The ID of the employee with that number, from /_sim/users. */
static bool id_of(const char *employee_no, char out[LST_THREEMA_ID_SIZE + 1])
{
    json_object *all = get_json("/_sim/users");
    bool found = false;
    for (size_t i = 0; all != NULL && i < json_object_array_length(all) && !found; i++) {
        json_object *u = json_object_array_get_idx(all, i);
        if (strcmp(jstr(u, "employeeNo"), employee_no) == 0) {
            snprintf(out, LST_THREEMA_ID_SIZE + 1, "%s", jstr(u, "identity"));
            found = true;
        }
    }
    json_object_put(all);
    return found;
}

/* ---- simulator process ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static const char csv[] =
    "employee_no,first_name,last_name,depot,phone,email,active,tags,threema_id\n"
    "1001,Anna,Meyer,Kiel,+49 151 00000001,anna.meyer@spedition-example.de,1,adr,\n"
    "1002,Bernd,Koch,Kiel,+4915100000002,,1,,\n"
    "1003,\"Carl, jr.\",Lang,Kiel,,carl@spedition-example.de,1,,ECHOECHO\n"
    "1004,Dora,Roth,Kiel,+4915100000004,dora@spedition-example.de,1,,none\n";

static void spawn(const char *bin, const char *csv_path, const char *pk, const char *log_path,
                  const char *sink_url)
{
    fx.pid = fork();
    if (fx.pid != 0)
        return;
    setenv("LST_SIM_PORT", "0", 1);
    setenv("LST_SIM_DIRECTORY", csv_path, 1);
    setenv("LST_SIM_GATEWAY_ID", GATEWAY_ID, 1);
    setenv("LST_SIM_SECRET", SECRET, 1);
    setenv("LST_SIM_GATEWAY_PUBLIC_KEY", pk, 1);
    setenv("LST_SIM_CALLBACK_URL", sink_url, 1);
    setenv("LST_SIM_NO_READ_RECEIPTS_SHARE", "0", 1);
    setenv("LST_SIM_TEXT_ONLY_SHARE", "0", 1);
    setenv("LST_SIM_ACK_PROBABILITY", "0", 1);
    setenv("LST_SIM_DECLINE_PROBABILITY", "0", 1);
    setenv("LST_SIM_RECEIVED_DELAY_MS", "50", 1);
    setenv("LST_SIM_READ_DELAY_MS", "100", 1);
    setenv("LST_SIM_DELAY_JITTER_MS", "20", 1);
    setenv("LST_SIM_CALLBACK_RETRY_INTERVAL_MS", "200", 1);
    setenv("LST_SIM_BLOB_MAX_BYTES", "4096", 1);
    setenv("LST_SIM_CREDITS", "1000", 1);
    setenv("LST_LOG_LEVEL", "info", 1);
    if (freopen(log_path, "w", stderr) == NULL)
        _exit(126);
    execl(bin, bin, (char *)NULL);
    _exit(127);
}

/* The port from the "sim.started" log line, polled until a deadline. */
static unsigned wait_port(const char *log_path)
{
    int64_t deadline = lst_mono_ms() + 10000;
    while (lst_mono_ms() < deadline) {
        FILE *f = fopen(log_path, "r");
        char line[1024];
        unsigned port = 0;
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            const char *p = strstr(line, "\"sim.started\"");
            p = p != NULL ? strstr(p, " port ") : NULL;
            if (p != NULL)
                port = (unsigned)strtoul(p + 6, NULL, 10);
        }
        if (f != NULL)
            fclose(f);
        if (port != 0)
            return port;
        if (waitpid(fx.pid, NULL, WNOHANG) == fx.pid) {
            fx.pid = -1;
            return 0;
        }
        lst_sleep_ms(20, NULL);
    }
    return 0;
}

static void test_start(void)
{
    static const struct lst_http_route routes[] = {{"POST", "/cb", false, sink_handler}};
    const char *bin = getenv("LST_THREEMA_SIM");
    REQUIRE(bin != NULL);
    REQUIRE(lst_threema_init() == LST_OK);
    lst_log_init("test_sim", LST_LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/lst-test-sim-XXXXXX");
    REQUIRE(mkdtemp(fx.dir) != NULL);
    struct lst_http_config hc = {.routes = routes, .nroutes = 1};
    REQUIRE(lst_http_server_create(&hc, &fx.sink) == LST_OK);
    REQUIRE(lst_threema_key_generate(fx.gw_sk, fx.gw_pk) == LST_OK);
    char csv_path[128], log_path[128], pk[LST_THREEMA_KEY_STR_SIZE], sink_url[128];
    snprintf(csv_path, sizeof(csv_path), "%s/drivers.csv", fx.dir);
    snprintf(log_path, sizeof(log_path), "%s/sim.log", fx.dir);
    snprintf(sink_url, sizeof(sink_url), "http://127.0.0.1:%u/cb",
             (unsigned)lst_http_server_port(fx.sink));
    write_file(csv_path, csv);
    lst_threema_key_format(LST_THREEMA_KEY_PUBLIC, fx.gw_pk, pk);
    spawn(bin, csv_path, pk, log_path, sink_url);
    REQUIRE(fx.pid > 0);
    unsigned port = wait_port(log_path);
    REQUIRE(port != 0);
    snprintf(fx.base, sizeof(fx.base), "http://127.0.0.1:%u", port);
    json_object *users = get_json("/_sim/users");
    REQUIRE(users != NULL);
    CHECK_EQ(json_object_array_length(users), 3); /* 1004 does not use Threema */
    json_object_put(users);
}

static void test_auth(void)
{
    struct lst_buf b;
    lst_buf_init(&b);
    CHECK_EQ(get("/credits?" AUTH, &b), 200);
    CHECK_STREQ(b.data, "1000");
    CHECK_EQ(get("/credits?from=%2ATESTGW1&secret=" SECRET, &b), 200);
    CHECK_EQ(get("/credits?from=%2ATESTGW1&secret=wrong-secret", &b), 401);
    CHECK_EQ(get("/credits?from=%2AOTHERGW&secret=" SECRET, &b), 401);
    CHECK_EQ(get("/credits", &b), 401);
    /* send_e2e takes from/secret in the body: in the query string they do not count. */
    CHECK_EQ(post_form("/send_e2e?" AUTH, "to=ECHOECHO&nonce=00&box=00", &b), 401);
    CHECK_EQ(post_form("/send_e2e", "from=%2ATESTGW1&secret=nope&to=ECHOECHO", &b), 401);
    CHECK_EQ(get("/send_e2e", &b), 405);
    lst_buf_cleanup(&b);
}

static void test_lookups(void)
{
    struct lst_buf b;
    char id1[9], id2[9], hash[LST_THREEMA_HASH_HEX + 1], path[256];
    lst_buf_init(&b);
    REQUIRE(id_of("1001", id1) && id_of("1002", id2));
    CHECK_EQ(get("/lookup/phone/4915100000001?" AUTH, &b), 200);
    CHECK_STREQ(b.data, id1);
    CHECK_EQ(get("/lookup/email/Anna.Meyer@spedition-example.de?" AUTH, &b), 200);
    CHECK_STREQ(b.data, id1);
    lst_threema_hash_phone("+4915100000002", hash);
    snprintf(path, sizeof(path), "/lookup/phone_hash/%s?" AUTH, hash);
    CHECK_EQ(get(path, &b), 200);
    CHECK_STREQ(b.data, id2);
    lst_threema_hash_email("carl@spedition-example.de", hash);
    snprintf(path, sizeof(path), "/lookup/email_hash/%s?" AUTH, hash);
    CHECK_EQ(get(path, &b), 200);
    CHECK_STREQ(b.data, KNOWN_ID);
    /* Dora (threema_id none) is unknown to Threema; a malformed hash is a 400. */
    CHECK_EQ(get("/lookup/phone/4915100000004?" AUTH, &b), 404);
    CHECK_EQ(get("/lookup/email/dora@spedition-example.de?" AUTH, &b), 404);
    CHECK_EQ(get("/lookup/phone_hash/abcd?" AUTH, &b), 400);
    CHECK_EQ(get("/pubkeys/ZZZZZZZZ?" AUTH, &b), 404);
    CHECK_EQ(get("/capabilities/ZZZZZZZZ?" AUTH, &b), 404);
    uint8_t pk[32], served[32];
    REQUIRE(user_pk(KNOWN_ID, pk));
    CHECK_EQ(get("/pubkeys/" KNOWN_ID "?" AUTH, &b), 200);
    CHECK(lst_threema_hex_decode(b.data, b.len, served, 32) == LST_OK);
    CHECK(memcmp(pk, served, 32) == 0);
    CHECK_EQ(get("/capabilities/" KNOWN_ID "?" AUTH, &b), 200);
    CHECK_STREQ(b.data, "text,image,video,audio,file");
    lst_threema_hash_phone("4915100000001", hash);
    char body[256];
    snprintf(body, sizeof(body), "{\"phoneHashes\":[\"%s\"],\"emailHashes\":[]}", hash);
    CHECK_EQ(post_json("/lookup/bulk?" AUTH, body, &b), 200);
    CHECK(strstr(b.data, id1) != NULL && strstr(b.data, hash) != NULL);
    CHECK_EQ(post_json("/lookup/bulk?" AUTH, "{\"phoneHashes\":[\"xyz\"]}", &b), 400);
    CHECK_EQ(post_json("/pubkeys/bulk?" AUTH, "{\"identities\":[\"ECHOECHO\",\"ZZZZZZZZ\"]}", &b),
             200);
    CHECK(strstr(b.data, "ECHOECHO") != NULL && strstr(b.data, "ZZZZZZZZ") == NULL);
    lst_buf_cleanup(&b);
}

/* Encrypts text to the user and sends it; returns the status, message ID into msgid. */
static long send_text(const char *to, const char *text, bool no_receipts, char msgid[17])
{
    uint8_t pk[32], nonce[24];
    struct lst_threema_shared sh;
    struct lst_threema_msg m;
    struct lst_buf box, form, out;
    memset(&m, 0, sizeof(m));
    lst_buf_init(&box);
    lst_buf_init(&form);
    lst_buf_init(&out);
    long code = 0;
    if (user_pk(to, pk) && lst_threema_shared_init(&sh, fx.gw_sk, pk) == LST_OK &&
        lst_threema_msg_set_text(&m, text, strlen(text)) == LST_OK &&
        lst_threema_msg_seal(&m, &sh, nonce, &box, NULL) == LST_OK) {
        char nonce_hex[49];
        lst_threema_hex_encode(nonce, 24, nonce_hex, sizeof(nonce_hex));
        lst_buf_printf(&form, AUTH "&to=%s&nonce=%s&box=", to, nonce_hex);
        for (size_t i = 0; i < box.len; i++)
            lst_buf_printf(&form, "%02x", (unsigned)(uint8_t)box.data[i]);
        if (no_receipts)
            lst_buf_puts(&form, "&noDeliveryReceipts=1");
        code = post_form("/send_e2e", form.data, &out);
        if (code == 200 && msgid != NULL)
            snprintf(msgid, 17, "%s", out.data);
    }
    lst_threema_msg_cleanup(&m);
    lst_buf_cleanup(&box);
    lst_buf_cleanup(&form);
    lst_buf_cleanup(&out);
    return code;
}

/* Index of the first callback matching, or -1. */
static int find_cb(const char *from, enum lst_threema_msg_kind kind, int status, const char *ref)
{
    int found = -1;
    pthread_mutex_lock(&fx.lock);
    for (size_t i = 0; i < fx.ncb && found < 0; i++) {
        const struct cb_entry *e = &fx.cb[i];
        if (strcmp(e->from, from) == 0 && e->kind == kind && (status < 0 || e->status == status) &&
            (ref == NULL || strcmp(e->ref, ref) == 0))
            found = (int)i;
    }
    pthread_mutex_unlock(&fx.lock);
    return found;
}

static int wait_cb(const char *from, enum lst_threema_msg_kind kind, int status, const char *ref)
{
    int64_t deadline = lst_mono_ms() + 10000;
    int i = find_cb(from, kind, status, ref);
    while (i < 0 && lst_mono_ms() < deadline) {
        lst_sleep_ms(20, NULL);
        i = find_cb(from, kind, status, ref);
    }
    return i;
}

static void test_send_and_receipts(void)
{
    char quiet[17] = "", msgid[17] = "";
    CHECK_EQ(send_text(KNOWN_ID, "ohne Quittung", true, quiet), 200);
    REQUIRE(send_text(KNOWN_ID, "Bitte Rampe 4 anfahren", false, msgid) == 200);
    CHECK_EQ(strlen(msgid), 16);
    json_object *inbox = get_json("/_sim/inbox/" KNOWN_ID);
    REQUIRE(inbox != NULL);
    json_object *msgs = NULL;
    json_object_object_get_ex(inbox, "messages", &msgs);
    REQUIRE(msgs != NULL && json_object_array_length(msgs) == 2);
    json_object *m0 = json_object_array_get_idx(msgs, 0), *m1 = json_object_array_get_idx(msgs, 1);
    CHECK_STREQ(jstr(m0, "messageId"), quiet);
    CHECK_STREQ(jstr(m0, "noDeliveryReceipts"), "true");
    CHECK_STREQ(jstr(m1, "messageId"), msgid);
    CHECK_STREQ(jstr(m1, "type"), "text");
    CHECK_STREQ(jstr(m1, "text"), "Bitte Rampe 4 anfahren");
    json_object_put(inbox);
    int received = wait_cb(KNOWN_ID, LST_THREEMA_MSG_RECEIPT, 1, msgid);
    int read = wait_cb(KNOWN_ID, LST_THREEMA_MSG_RECEIPT, 2, msgid);
    CHECK(received >= 0 && read > received);
    CHECK(received >= 0 && fx.cb[received].has_nickname);
    CHECK_EQ(find_cb(KNOWN_ID, LST_THREEMA_MSG_RECEIPT, -1, quiet), -1);
    CHECK_EQ(atomic_load(&fx.bad_mac), 0);
}

static void test_invalid_box_recorded(void)
{
    struct lst_buf b;
    lst_buf_init(&b);
    /* A box that does not decrypt is accepted by the Gateway; the phone records it. */
    char form[512];
    snprintf(form, sizeof(form),
             AUTH "&to=" KNOWN_ID "&nonce=%048d&box=00112233445566778899aabbccddeeff0011", 0);
    CHECK_EQ(post_form("/send_e2e", form, &b), 200);
    json_object *st = get_json("/_sim/stats");
    json_object *phones = NULL;
    REQUIRE(st != NULL && json_object_object_get_ex(st, "phones", &phones));
    CHECK(jint(phones, "undecryptable") >= 1);
    json_object_put(st);
    snprintf(form, sizeof(form), AUTH "&to=ZZZZZZZZ&nonce=%048d&box=0011", 0);
    CHECK_EQ(post_form("/send_e2e", form, &b), 400);
    snprintf(form, sizeof(form), AUTH "&to=" KNOWN_ID "&nonce=12&box=0011");
    CHECK_EQ(post_form("/send_e2e", form, &b), 400);
    lst_buf_cleanup(&b);
}

/* Form bodies: '+' is a space and %XX a byte, between runs of plain bytes; a broken escape is
 * a 400. */
static void test_form_decoding(void)
{
    struct lst_buf b;
    lst_buf_init(&b);
    CHECK_EQ(post_form("/send_simple",
                       AUTH "&to=" KNOWN_ID "&text=Tour+17%3A+Rampe+4+%2B+5%25%20ab%C3%BC", &b),
             200);
    char msgid[17];
    snprintf(msgid, sizeof(msgid), "%s", b.data != NULL ? b.data : "");
    json_object *inbox = get_json("/_sim/inbox/" KNOWN_ID), *msgs = NULL;
    REQUIRE(inbox != NULL && json_object_object_get_ex(inbox, "messages", &msgs));
    const char *text = NULL;
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        if (strcmp(jstr(m, "messageId"), msgid) == 0)
            text = jstr(m, "text");
    }
    CHECK_STREQ(text, "Tour 17: Rampe 4 + 5% ab\xc3\xbc");
    json_object_put(inbox);
    CHECK_EQ(post_form("/send_simple", AUTH "&to=" KNOWN_ID "&text=50%", &b), 400);
    CHECK_EQ(post_form("/send_simple", AUTH "&to=" KNOWN_ID "&text=5%4", &b), 400);
    CHECK_EQ(post_form("/send_simple", AUTH "&to=" KNOWN_ID "&text=%zz+Rampe", &b), 400);
    lst_buf_cleanup(&b);
}

/* A timeout fault configured at start in event mode: the simulator refuses to start. */
static void test_hang_faults_refused_at_start(void)
{
    if (!event_mode())
        return;
    char log_path[128];
    snprintf(log_path, sizeof(log_path), "%s/refused.log", fx.dir);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("LST_SIM_PORT", "0", 1);
        setenv("LST_SIM_FAULT_TIMEOUT_AFTER_RATE", "0.1", 1);
        setenv("LST_LOG_LEVEL", "info", 1);
        if (freopen(log_path, "w", stderr) == NULL)
            _exit(126);
        execl(getenv("LST_THREEMA_SIM"), "threema-sim", (char *)NULL);
        _exit(127);
    }
    REQUIRE(pid > 0);
    int status = 0;
    pid_t r = 0;
    for (int64_t end = lst_mono_ms() + 10000; r == 0 && lst_mono_ms() < end;) {
        r = waitpid(pid, &status, WNOHANG);
        if (r == 0)
            lst_sleep_ms(20, NULL);
    }
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    CHECK(r == pid && WIFEXITED(status) && WEXITSTATUS(status) != 0);
    struct lst_buf log;
    lst_buf_init(&log);
    FILE *f = fopen(log_path, "r");
    char line[1024];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        lst_buf_puts(&log, line);
    if (f != NULL)
        fclose(f);
    CHECK(log.data != NULL && strstr(log.data, "sim.config.hang_faults") != NULL);
    lst_buf_cleanup(&log);
    unlink(log_path);
}

static void test_limits(void)
{
    struct lst_buf form, b;
    lst_buf_init(&form);
    lst_buf_init(&b);
    lst_buf_printf(&form, AUTH "&to=" KNOWN_ID "&nonce=%048d&box=", 0);
    for (int i = 0; i < 4001; i++)
        lst_buf_puts(&form, "ab");
    CHECK_EQ(post_form("/send_e2e", form.data, &b), 413);
    lst_buf_reset(&form);
    lst_buf_puts(&form, AUTH "&to=" KNOWN_ID "&text=");
    for (int i = 0; i < 3501; i++)
        lst_buf_puts(&form, "x");
    CHECK_EQ(post_form("/send_simple", form.data, &b), 413);
    CHECK_EQ(post_form("/send_simple", AUTH "&to=" KNOWN_ID "&text=Hallo", &b), 200);
    CHECK_EQ(post_form("/send_simple", AUTH "&phone=4915100000004&text=Hallo", &b), 404);
    CHECK_EQ(post_form("/send_simple", AUTH "&to=" KNOWN_ID "&phone=4915100000001&text=x", &b),
             400);
    lst_buf_cleanup(&form);
    lst_buf_cleanup(&b);
}

static void test_credits(void)
{
    struct lst_buf b;
    lst_buf_init(&b);
    CHECK_EQ(post_json("/_sim/faults", "{\"credits\":2}", &b), 200);
    CHECK_EQ(send_text(KNOWN_ID, "eins", true, NULL), 200);
    CHECK_EQ(send_text(KNOWN_ID, "zwei", true, NULL), 200);
    CHECK_EQ(send_text(KNOWN_ID, "drei", true, NULL), 402);
    CHECK_EQ(get("/credits?" AUTH, &b), 200);
    CHECK_STREQ(b.data, "0");
    json_object *c = get_json("/_sim/credits");
    CHECK(c != NULL && jint(c, "credits") == 0);
    json_object_put(c);
    CHECK_EQ(post_json("/_sim/faults", "{\"credits\":1000}", &b), 200);
    lst_buf_cleanup(&b);
}

static void test_rate_limit_and_500(void)
{
    struct lst_buf b;
    lst_buf_init(&b);
    CHECK_EQ(post_json("/_sim/faults", "{\"rateLimit\":1,\"rateBurst\":3}", &b), 200);
    int ok = 0, limited = 0;
    for (int i = 0; i < 10; i++) {
        long code = get("/credits?" AUTH, &b);
        ok += code == 200;
        limited += code == 429;
    }
    CHECK(ok >= 3 && ok <= 5);
    CHECK(limited >= 5);
    /* a 429 names its Retry-After only when configured (the Gateway documents none) */
    CHECK_EQ(post_json("/_sim/faults", "{\"rateLimit\":1,\"rateBurst\":1,\"retryAfterS\":2}", &b),
             200);
    get("/credits?" AUTH, &b);
    CHECK_EQ(get("/credits?" AUTH, &b), 429);
    CHECK_EQ((long)last_retry_after, 2L);
    json_object *f = get_json("/_sim/faults"), *g = NULL;
    CHECK(f != NULL && json_object_object_get_ex(f, "gateway", &g) && jint(g, "retryAfterS") == 2);
    json_object_put(f);
    CHECK_EQ(post_json("/_sim/faults", "{\"retryAfterS\":3601}", &b), 400);
    CHECK_EQ(post_json("/_sim/faults", "{\"retryAfterS\":0}", &b), 200);
    CHECK_EQ(get("/credits?" AUTH, &b), 429);
    CHECK_EQ((long)last_retry_after, 0L);
    CHECK_EQ(post_json("/_sim/faults", "{\"rateLimit\":0,\"error500Rate\":1}", &b), 200);
    CHECK_EQ(get("/credits?" AUTH, &b), 500);
    json_object *log = get_json("/_sim/log?limit=100000");
    json_object *entries = NULL;
    REQUIRE(log != NULL && json_object_object_get_ex(log, "entries", &entries));
    json_object *last = json_object_array_get_idx(entries, json_object_array_length(entries) - 1);
    CHECK_STREQ(jstr(last, "fault"), "500");
    CHECK_STREQ(jstr(last, "requestId"), "req-test-1");
    CHECK_STREQ(jstr(last, "endpoint"), "/credits");
    json_object_put(log);
    if (event_mode()) {
        /* a hang would stall the event thread's other connections: refused, nothing changed */
        CHECK_EQ(post_json("/_sim/faults", "{\"error500Rate\":0,\"timeoutRate\":1}", &b), 400);
        CHECK(b.data != NULL && strstr(b.data, "LST_SIM_EVENT_THREADS=0") != NULL);
        CHECK_EQ(post_json("/_sim/faults", "{\"timeoutAfterRate\":0.5}", &b), 400);
        CHECK_EQ(get("/credits?" AUTH, &b), 500);
        CHECK_EQ(post_json("/_sim/faults", "{\"error500Rate\":0,\"timeoutRate\":0}", &b), 200);
        CHECK_EQ(get("/credits?" AUTH, &b), 200);
        lst_buf_cleanup(&b);
        return;
    }
    CHECK_EQ(
        post_json("/_sim/faults", "{\"error500Rate\":0,\"timeoutRate\":1,\"timeoutMs\":1500}", &b),
        200);
    int64_t t0 = lst_mono_ms();
    CHECK_EQ(http("GET", "/credits?" AUTH, NULL, NULL, 0, &b, 300), -1);
    CHECK(lst_mono_ms() - t0 < 1400);
    CHECK_EQ(post_json("/_sim/faults", "{\"timeoutRate\":0}", &b), 200);
    CHECK_EQ(get("/credits?" AUTH, &b), 200);
    lst_buf_cleanup(&b);
}

static void test_callback_retry_then_drop(void)
{
    struct lst_buf b;
    lst_buf_init(&b);
    json_object *before = get_json("/_sim/faults");
    json_object *cbs = NULL;
    REQUIRE(before != NULL && json_object_object_get_ex(before, "callbacks", &cbs));
    int64_t dropped0 = jint(cbs, "dropped");
    json_object_put(before);
    atomic_store(&fx.sink_fail, 1);
    int attempts0 = atomic_load(&fx.sink_attempts);
    CHECK_EQ(
        post_json("/_sim/faults", "{\"callbackRetries\":2,\"callbackRetryIntervalMs\":100}", &b),
        200);
    CHECK_EQ(post_json("/_sim/reply", "{\"from\":\"" KNOWN_ID "\",\"kind\":\"text\"}", &b), 200);
    int64_t deadline = lst_mono_ms() + 10000, dropped = dropped0;
    while (dropped == dropped0 && lst_mono_ms() < deadline) {
        json_object *f = get_json("/_sim/faults");
        if (f != NULL && json_object_object_get_ex(f, "callbacks", &cbs))
            dropped = jint(cbs, "dropped");
        json_object_put(f);
        lst_sleep_ms(20, NULL);
    }
    CHECK_EQ(dropped, dropped0 + 1);
    CHECK_EQ(atomic_load(&fx.sink_attempts) - attempts0, 3); /* 1 + 2 retries */
    atomic_store(&fx.sink_fail, 0);
    /* Retried callbacks arrive once the sink answers 200 again. */
    CHECK_EQ(post_json("/_sim/reply",
                       "{\"from\":\"" KNOWN_ID "\",\"kind\":\"text\","
                       "\"text\":\"wieder da\"}",
                       &b),
             200);
    CHECK(wait_cb(KNOWN_ID, LST_THREEMA_MSG_TEXT, -1, NULL) >= 0);
    lst_buf_cleanup(&b);
}

static void test_photo_reply(void)
{
    struct lst_buf b, plain;
    lst_buf_init(&b);
    lst_buf_init(&plain);
    CHECK_EQ(post_json("/_sim/reply", "{\"from\":\"" KNOWN_ID "\",\"kind\":\"photo\"}", &b), 200);
    int i = wait_cb(KNOWN_ID, LST_THREEMA_MSG_FILE, -1, NULL);
    REQUIRE(i >= 0);
    struct lst_threema_file f = fx.cb[i].file;
    CHECK(f.has_rendering && f.rendering == 1);
    char path[128];
    snprintf(path, sizeof(path), "/blobs/%s?" AUTH, f.blob_id);
    CHECK_EQ(get(path, &b), 200);
    CHECK(lst_threema_blob_decrypt(f.key, LST_THREEMA_BLOB_FILE, (const uint8_t *)b.data, b.len,
                                   &plain) == LST_OK);
    CHECK_EQ((int64_t)plain.len, f.size);
    CHECK(plain.len > 8 && memcmp(plain.data, "\x89PNG", 4) == 0);
    snprintf(path, sizeof(path), "/blobs/%s?" AUTH, f.thumbnail_blob_id);
    CHECK_EQ(get(path, &b), 200);
    CHECK(lst_threema_blob_decrypt(f.key, LST_THREEMA_BLOB_THUMBNAIL, (const uint8_t *)b.data,
                                   b.len, &plain) == LST_OK);
    CHECK_EQ(get("/blobs/00000000000000000000000000000000?" AUTH, &b), 404);
    CHECK_EQ(post_json("/_sim/reply",
                       "{\"from\":\"" KNOWN_ID "\",\"kind\":\"location\","
                       "\"lat\":53.5,\"lon\":10.0}",
                       &b),
             200);
    CHECK(wait_cb(KNOWN_ID, LST_THREEMA_MSG_LOCATION, -1, NULL) >= 0);
    lst_buf_cleanup(&b);
    lst_buf_cleanup(&plain);
}

static long upload(const char *data, size_t len, struct lst_buf *out)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/upload_blob?" AUTH "&persist=1", fx.base);
    CURL *c = curl_easy_init();
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "blob");
    curl_mime_filename(part, "blob");
    curl_mime_data(part, data, len);
    lst_buf_reset(out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_mime_free(mime);
    curl_easy_cleanup(c);
    return code;
}

static void test_blobs(void)
{
    struct lst_buf b, down;
    lst_buf_init(&b);
    lst_buf_init(&down);
    char data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7);
    REQUIRE(upload(data, sizeof(data), &b) == 200);
    CHECK_EQ(b.len, 32);
    char path[128];
    snprintf(path, sizeof(path), "/blobs/%s?" AUTH, b.data);
    CHECK_EQ(get(path, &down), 200);
    CHECK(down.len == sizeof(data) && memcmp(down.data, data, sizeof(data)) == 0);
    CHECK_EQ(upload("", 0, &b), 400);
    char big[5000];
    memset(big, 'x', sizeof(big));
    CHECK_EQ(upload(big, sizeof(big), &b), 413);
    lst_buf_cleanup(&b);
    lst_buf_cleanup(&down);
}

static void test_stop(void)
{
    if (fx.pid > 0) {
        kill(fx.pid, SIGTERM);
        int64_t deadline = lst_mono_ms() + 10000;
        int status = 0;
        pid_t r = waitpid(fx.pid, &status, WNOHANG);
        while (r == 0 && lst_mono_ms() < deadline) {
            lst_sleep_ms(20, NULL);
            r = waitpid(fx.pid, &status, WNOHANG);
        }
        if (r == 0) {
            kill(fx.pid, SIGKILL);
            waitpid(fx.pid, &status, 0);
        }
        CHECK(r == fx.pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        fx.pid = -1;
    }
    lst_http_server_destroy(fx.sink);
    char path[128];
    snprintf(path, sizeof(path), "%s/drivers.csv", fx.dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/sim.log", fx.dir);
    unlink(path);
    rmdir(fx.dir);
    curl_global_cleanup();
}

LST_TEST_MAIN(T(test_start), T(test_auth), T(test_lookups), T(test_send_and_receipts),
              T(test_invalid_box_recorded), T(test_form_decoding),
              T(test_hang_faults_refused_at_start), T(test_limits), T(test_credits),
              T(test_rate_limit_and_500), T(test_callback_retry_then_drop), T(test_photo_reply),
              T(test_blobs), T(test_stop))
