/* The chaos suite's callback storm: acts as the Threema Gateway posting delivery receipts to
 * gateway-in, with the two awkward cases every workload must carry: each receipt is posted
 * twice (a duplicated callback, the same signed form) and the "read" receipt of a message is
 * posted before its "received" one (read before delivered). Follows the Gateway's retry rule
 * (non-200 or a broken connection: retried N times, INTERVAL apart) and records every post.
 *
 *   chaos_cb SRC_DIR SIM_URL CALLBACK_URL PAIRS_TSV OUT_TSV RATE RETRIES INTERVAL_MS
 *
 * PAIRS_TSV: "threema_id<TAB>threema_message_id" lines (the recipient of a send acts as the
 * phone sending receipts for it; its private key comes from the simulator). RATE: pairs per
 * second. OUT_TSV, one line per HTTP post:
 *   callback_msgid from ref_msgid status copy(orig|dup) attempt http_code latency_ms wall_ms
 * (http_code 0: no answer, e.g. connection refused while gateway-in was down).
 * Prints "callbacks N posts N ok N dropped N" on stdout; exit 0 unless a usage/setup error.
 * Bounded: at most (RETRIES+1) rounds per callback, every post has curl's 30 s timeout. */
#include "gateway_in_common.h"

#define MAX_PAIRS 20000
#define MAX_KEYS  512

struct pending {
    char msgid[LST_THREEMA_MSGID_HEX + 1];
    char from[LST_THREEMA_ID_SIZE + 1];
    char ref[LST_THREEMA_MSGID_HEX + 1];
    int status;
    int attempt;     /* rounds done */
    bool done;       /* answered 200 */
    int64_t next_at; /* mono ms of the next round */
    struct lst_buf body;
};

struct keys {
    char id[MAX_KEYS][LST_THREEMA_ID_SIZE + 1];
    uint8_t sk[MAX_KEYS][LST_THREEMA_KEY_SIZE];
    size_t n;
};

static bool user_key(const struct gwin_env *e, struct keys *k, const char *id, uint8_t **sk)
{
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->id[i], id) == 0) {
            *sk = k->sk[i];
            return true;
        }
    if (k->n == MAX_KEYS)
        return false;
    char url[160];
    struct lst_buf b;
    lst_buf_init(&b);
    snprintf(url, sizeof(url), "%s/_sim/users/%s", e->sim, id);
    bool ok = gwin_http("GET", url, NULL, 0, &b) == 200;
    char *key = ok ? gwin_json_str(&b, "privateKey") : NULL;
    ok = key != NULL &&
         lst_threema_key_parse(key, LST_THREEMA_KEY_PRIVATE, k->sk[k->n], NULL) == LST_OK;
    if (ok) {
        snprintf(k->id[k->n], sizeof(k->id[0]), "%.8s", id);
        *sk = k->sk[k->n++];
    }
    free(key);
    lst_buf_cleanup(&b);
    return ok;
}

static bool build_receipt(const struct gwin_env *e, const char *from, const uint8_t *sk,
                          const char *ref, int status, struct pending *p)
{
    struct lst_threema_msg m;
    struct lst_buf padded;
    uint8_t id[LST_THREEMA_MSGID_SIZE];
    memset(&m, 0, sizeof(m));
    lst_buf_init(&padded);
    bool ok = lst_threema_hex_decode(ref, LST_THREEMA_MSGID_HEX, id, sizeof(id)) == LST_OK &&
              lst_threema_msg_set_receipt(&m, (uint8_t)status, id, 1) == LST_OK &&
              lst_threema_msg_encode(&m, 0, &padded, NULL) == LST_OK;
    p->msgid[0] = '\0';
    lst_buf_init(&p->body);
    ok = ok && gwin_build(e, from, sk, (const uint8_t *)padded.data, padded.len, p->msgid,
                          &p->body) == LST_OK;
    snprintf(p->from, sizeof(p->from), "%s", from);
    snprintf(p->ref, sizeof(p->ref), "%s", ref);
    p->status = status;
    lst_threema_msg_cleanup(&m);
    lst_buf_cleanup(&padded);
    return ok;
}

/* One round of a callback: the form posted twice (the duplicate); done once either got 200. */
static int round_(const struct gwin_env *e, struct pending *p, FILE *out, int64_t interval)
{
    int ok = 0;
    for (int copy = 0; copy < 2; copy++) {
        int64_t t0 = lst_mono_ms();
        long code = gwin_post_callback(e, p->body.data, p->body.len);
        fprintf(out, "%s\t%s\t%s\t%d\t%s\t%d\t%ld\t%lld\t%lld\n", p->msgid, p->from, p->ref,
                p->status, copy == 0 ? "orig" : "dup", p->attempt, code,
                (long long)(lst_mono_ms() - t0), (long long)lst_wall_ms());
        ok += code == 200;
    }
    fflush(out);
    p->attempt++;
    p->done = ok > 0;
    p->next_at = lst_mono_ms() + interval;
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: chaos_cb SRC SIM_URL CALLBACK_URL PAIRS OUT RATE RETRIES "
                        "INTERVAL_MS\n");
        return 2;
    }
    struct gwin_env e;
    memset(&e, 0, sizeof(e));
    snprintf(e.sim, sizeof(e.sim), "%s", argv[2]);
    snprintf(e.url, sizeof(e.url), "%s", argv[3]);
    int64_t rate = 0, retries = 0, interval = 0;
    char key[512];
    snprintf(key, sizeof(key), "%s/demo/DEMO-ONLY-gateway.public.key", argv[1]);
    if (lst_parse_i64(argv[6], 1, 10000, &rate) != LST_OK ||
        lst_parse_i64(argv[7], 0, 100, &retries) != LST_OK ||
        lst_parse_i64(argv[8], 0, 600000, &interval) != LST_OK ||
        lst_threema_key_read_file(key, LST_THREEMA_KEY_PUBLIC, e.gw_pk, NULL) != LST_OK) {
        fprintf(stderr, "chaos_cb: bad arguments or gateway key\n");
        return 2;
    }
    FILE *in = fopen(argv[4], "r"), *out = fopen(argv[5], "w");
    static struct keys k;
    static struct pending p[2 * MAX_PAIRS];
    size_t n = 0;
    long posts = 0;
    char line[256];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (in == NULL || out == NULL) {
        fprintf(stderr, "chaos_cb: cannot open %s or %s\n", argv[4], argv[5]);
        return 2;
    }
    int64_t next = lst_mono_ms();
    while (n + 2 <= 2 * MAX_PAIRS && fgets(line, sizeof(line), in) != NULL) {
        char id[16] = "", ref[32] = "";
        uint8_t *sk = NULL;
        if (sscanf(line, "%8s %16s", id, ref) != 2 || !user_key(&e, &k, id, &sk))
            continue;
        /* read (2) before received (1) */
        if (!build_receipt(&e, id, sk, ref, 2, &p[n]) ||
            !build_receipt(&e, id, sk, ref, 1, &p[n + 1]))
            continue;
        for (size_t j = n; j < n + 2; j++)
            posts += round_(&e, &p[j], out, interval);
        n += 2;
        /* retries due meanwhile */
        for (size_t j = 0; j < n; j++)
            if (!p[j].done && p[j].attempt <= retries && lst_mono_ms() >= p[j].next_at)
                posts += round_(&e, &p[j], out, interval);
        next += 1000 / rate;
        if (next > lst_mono_ms())
            lst_sleep_ms(next - lst_mono_ms(), NULL);
    }
    /* the remaining retries, bounded by RETRIES rounds each */
    for (;;) {
        bool left = false;
        for (size_t j = 0; j < n; j++) {
            if (p[j].done || p[j].attempt > retries)
                continue;
            left = true;
            if (lst_mono_ms() >= p[j].next_at)
                posts += round_(&e, &p[j], out, interval);
        }
        if (!left)
            break;
        lst_sleep_ms(50, NULL);
    }
    long ok = 0;
    for (size_t j = 0; j < n; j++) {
        ok += p[j].done;
        lst_buf_cleanup(&p[j].body);
    }
    printf("callbacks %zu posts %ld ok %ld dropped %ld\n", n, posts, ok, (long)n - ok);
    fclose(in);
    fclose(out);
    curl_global_cleanup();
    return 0;
}
