/* bench_sim: the Gateway simulator's sustainable send_e2e rate.
 *
 * Starts threema-sim on a free loopback port (the port comes from its "sim.started" log line)
 * with the demo directory, a fresh Gateway key pair (so every simulated phone really decrypts
 * and decodes what it gets) and no callback URL (callbacks off), then N client threads, each
 * with its own lst_gateway client (one keep-alive connection), send pre-encrypted text
 * messages to the directory's users until the request count or the time cap is reached.
 * Prints requests per second of accepted sends and the p50/p99 latency of one call.
 * Messages are sealed before the clock starts so that the client's crypto is not measured.
 *
 *   bench_sim [--quick] [--threads N (8)] [--requests N (40000)] [--seconds S (20)]
 *             [--sim PATH] [--directory CSV]
 *
 * Exit 0 when every request was accepted, 1 otherwise. */
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
#include <time.h>
#include <unistd.h>

#include "lst/gateway.h"
#include "lst/log.h"
#include "lst/threema.h"
#include "lst/util.h"

#ifndef LST_BENCH_SIM
#define LST_BENCH_SIM "tools/threema-sim/threema-sim"
#endif
#ifndef LST_BENCH_DIRECTORY
#define LST_BENCH_DIRECTORY "demo/erp-export.csv"
#endif

#define GATEWAY_ID  "*BENCH01"
#define SECRET      "bench-secret-0123456789"
#define POOL        128 /* pre-sealed messages per thread, sent round robin */
#define MAX_THREADS 64
#define MAX_USERS   1024
#define START_MS    20000
#define STOP_MS     10000

struct opts {
    int threads;
    int64_t requests;
    double seconds;
    const char *sim;
    const char *directory;
};

struct sealed {
    char to[LST_THREEMA_ID_SIZE + 1];
    char nonce[LST_THREEMA_NONCE_HEX + 1];
    char *box; /* hex, owned */
};

struct user {
    char id[LST_THREEMA_ID_SIZE + 1];
    uint8_t pk[LST_THREEMA_KEY_SIZE];
};

struct bench {
    struct opts o;
    char base[64];
    char log_path[64];
    pid_t pid;
    uint8_t gw_sk[LST_THREEMA_KEY_SIZE], gw_pk[LST_THREEMA_KEY_SIZE];
    struct user *users;
    size_t nusers;
    atomic_llong issued; /* requests handed out */
    double deadline;
};

struct worker {
    struct bench *b;
    pthread_t thread;
    struct sealed pool[POOL];
    double *lat_us; /* latencies of accepted sends */
    size_t nlat, cap;
    long ok, failed;
    char first_error[160];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the simulator process ---- */

/* The decimal port at the start of s (digits up to the next non-digit), 0 when none. */
static unsigned parse_port(const char *s)
{
    char digits[8];
    size_t n = strspn(s, "0123456789");
    int64_t v = 0;
    if (n == 0 || n >= sizeof(digits))
        return 0;
    memcpy(digits, s, n);
    digits[n] = '\0';
    return lst_parse_i64(digits, 1, 65535, &v) == LST_OK ? (unsigned)v : 0;
}

static unsigned port_from_log(const char *path)
{
    char line[1024];
    unsigned port = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (port == 0 && fgets(line, sizeof(line), f) != NULL) {
        const char *p = strstr(line, "\"sim.started\"");
        p = p != NULL ? strstr(p, " port ") : NULL;
        if (p != NULL)
            port = parse_port(p + 6);
    }
    fclose(f);
    return port;
}

static int start_sim(struct bench *b)
{
    char pk[LST_THREEMA_KEY_STR_SIZE];
    lst_threema_key_format(LST_THREEMA_KEY_PUBLIC, b->gw_pk, pk);
    snprintf(b->log_path, sizeof(b->log_path), "/tmp/bench_sim.%d.log", (int)getpid());
    b->pid = fork();
    if (b->pid < 0)
        return -1;
    if (b->pid == 0) {
        FILE *log = freopen(b->log_path, "w", stderr);
        if (log == NULL || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
            _exit(127);
        setenv("LST_SIM_ADDR", "127.0.0.1", 1);
        setenv("LST_SIM_PORT", "0", 1);
        setenv("LST_SIM_DIRECTORY", b->o.directory, 1);
        setenv("LST_SIM_GATEWAY_ID", GATEWAY_ID, 1);
        setenv("LST_SIM_SECRET", SECRET, 1);
        setenv("LST_SIM_GATEWAY_PUBLIC_KEY", pk, 1);
        setenv("LST_SIM_CREDITS", "1000000000", 1);
        setenv("LST_SIM_MAX_CONNECTIONS", "256", 1);
        unsetenv("LST_SIM_CALLBACK_URL");
        setenv("LST_LOG_LEVEL", "info", 1);
        execl(b->o.sim, b->o.sim, (char *)NULL);
        _exit(127);
    }
    for (int64_t end = lst_mono_ms() + START_MS; lst_mono_ms() < end; lst_sleep_ms(20, NULL)) {
        unsigned port = port_from_log(b->log_path);
        if (port != 0) {
            snprintf(b->base, sizeof(b->base), "http://127.0.0.1:%u", port);
            return 0;
        }
        if (waitpid(b->pid, NULL, WNOHANG) == b->pid) {
            b->pid = -1;
            break;
        }
    }
    fprintf(stderr, "bench_sim: the simulator did not start (log %s)\n", b->log_path);
    return -1;
}

static void stop_sim(struct bench *b)
{
    if (b->pid <= 0)
        return;
    kill(b->pid, SIGTERM);
    for (int64_t end = lst_mono_ms() + STOP_MS; lst_mono_ms() < end; lst_sleep_ms(20, NULL))
        if (waitpid(b->pid, NULL, WNOHANG) == b->pid) {
            b->pid = -1;
            unlink(b->log_path);
            return;
        }
    kill(b->pid, SIGKILL);
    waitpid(b->pid, NULL, 0);
    b->pid = -1;
}

/* ---- the directory (GET /_sim/users) ---- */

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    return lst_buf_append(ud, p, size * n) == LST_OK ? size * n : 0;
}

static int add_user(struct bench *b, json_object *u)
{
    json_object *id, *pk;
    if (!json_object_object_get_ex(u, "identity", &id) ||
        !json_object_object_get_ex(u, "publicKey", &pk) || b->nusers >= MAX_USERS)
        return 0;
    struct user *dst = &b->users[b->nusers];
    snprintf(dst->id, sizeof(dst->id), "%s", json_object_get_string(id));
    if (lst_threema_key_parse(json_object_get_string(pk), LST_THREEMA_KEY_PUBLIC, dst->pk, NULL) ==
        LST_OK)
        b->nusers++;
    return 0;
}

static int load_users(struct bench *b)
{
    char url[128];
    struct lst_buf body;
    long status = 0;
    int rc = -1;
    lst_buf_init(&body);
    snprintf(url, sizeof(url), "%s/_sim/users", b->base);
    CURL *c = curl_easy_init();
    if (c == NULL)
        goto out;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    json_object *doc = status == 200 ? json_tokener_parse(body.data) : NULL;
    b->users = calloc(MAX_USERS, sizeof(*b->users));
    if (doc != NULL && b->users != NULL && json_object_is_type(doc, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(doc); i++)
            add_user(b, json_object_array_get_idx(doc, i));
        rc = b->nusers > 0 ? 0 : -1;
    }
    json_object_put(doc);
out:
    lst_buf_cleanup(&body);
    if (rc != 0)
        fprintf(stderr, "bench_sim: cannot read the simulated users\n");
    return rc;
}

/* ---- the workers ---- */

static int seal_pool(struct worker *w, size_t first_user)
{
    struct lst_threema_msg m;
    struct lst_buf box;
    static const char text[] = "Tour 4711: bitte Rampe 3 anfahren, Lieferschein liegt vor. "
                               "Danach weiter nach Lübeck-Genin, Ankunft bis 14:30 Uhr.";
    memset(&m, 0, sizeof(m));
    lst_buf_init(&box);
    int rc = lst_threema_msg_set_text(&m, text, strlen(text)) == LST_OK ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < POOL; i++) {
        const struct user *u = &w->b->users[(first_user + i) % w->b->nusers];
        struct lst_threema_shared sh;
        uint8_t nonce[LST_THREEMA_NONCE_SIZE];
        rc = lst_threema_shared_init(&sh, w->b->gw_sk, u->pk) == LST_OK &&
                     lst_threema_msg_seal(&m, &sh, nonce, &box, NULL) == LST_OK
                 ? 0
                 : -1;
        lst_threema_shared_cleanup(&sh);
        w->pool[i].box = rc == 0 ? malloc(2 * box.len + 1) : NULL;
        if (w->pool[i].box == NULL) {
            rc = -1;
            break;
        }
        memcpy(w->pool[i].to, u->id, sizeof(w->pool[i].to));
        lst_threema_hex_encode(nonce, sizeof(nonce), w->pool[i].nonce, sizeof(w->pool[i].nonce));
        lst_threema_hex_encode((const uint8_t *)box.data, box.len, w->pool[i].box, 2 * box.len + 1);
    }
    lst_threema_msg_cleanup(&m);
    lst_buf_cleanup(&box);
    return rc;
}

static void record(struct worker *w, double us)
{
    if (w->nlat == w->cap) {
        size_t cap = w->cap == 0 ? 4096 : 2 * w->cap;
        double *p = realloc(w->lat_us, cap * sizeof(*p));
        if (p == NULL)
            return;
        w->lat_us = p;
        w->cap = cap;
    }
    w->lat_us[w->nlat++] = us;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    struct lst_gateway *gw = NULL;
    struct lst_gateway_config cfg = {
        .base_url = b->base, .gateway_id = GATEWAY_ID, .secret = SECRET, .timeout_ms = 10000};
    if (lst_gateway_create(&cfg, &gw) != LST_OK) {
        snprintf(w->first_error, sizeof(w->first_error), "cannot create a client");
        return NULL;
    }
    for (size_t i = 0; atomic_fetch_add(&b->issued, 1) < b->o.requests && now_s() < b->deadline;
         i++) {
        const struct sealed *s = &w->pool[i % POOL];
        struct lst_gateway_e2e msg = {.to = s->to, .nonce_hex = s->nonce, .box_hex = s->box};
        struct lst_gateway_result res;
        char msgid[LST_GATEWAY_MSGID_HEX + 1];
        double t0 = now_s();
        if (lst_gateway_send_e2e(gw, &msg, msgid, &res) == LST_GATEWAY_OK) {
            w->ok++;
            record(w, (now_s() - t0) * 1e6);
        } else if (w->failed++ == 0) {
            snprintf(w->first_error, sizeof(w->first_error), "%s", res.reason);
        }
    }
    lst_gateway_destroy(gw);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Merges the latencies, prints the figures; returns 0 when every send was accepted. */
static int report(struct worker *w, int n, double elapsed)
{
    size_t total = 0;
    long ok = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        total += w[i].nlat;
        ok += w[i].ok;
        failed += w[i].failed;
    }
    double *all = calloc(total > 0 ? total : 1, sizeof(*all));
    if (all == NULL)
        return 1;
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        memcpy(all + k, w[i].lat_us, w[i].nlat * sizeof(*all));
        k += w[i].nlat;
    }
    qsort(all, total, sizeof(*all), cmp_double);
    double p50 = total > 0 ? all[total / 2] : 0;
    double p99 = total > 0 ? all[(size_t)((double)(total - 1) * 0.99)] : 0;
    printf("bench_sim: %d client threads, %ld sends accepted, %ld failed in %.2f s\n", n, ok,
           failed, elapsed);
    printf("  send_e2e  %10.0f req/s   p50 %8.0f us   p99 %8.0f us\n", (double)ok / elapsed, p50,
           p99);
    for (int i = 0; i < n; i++)
        if (w[i].failed > 0) {
            printf("  first failure: %s\n", w[i].first_error);
            break;
        }
    free(all);
    return failed == 0 && ok > 0 ? 0 : 1;
}

static int run(struct bench *b)
{
    struct worker *w = calloc((size_t)b->o.threads, sizeof(*w));
    int started = 0, rc = 1;
    if (w == NULL)
        return 1;
    for (int i = 0; i < b->o.threads; i++) {
        w[i].b = b;
        if (seal_pool(&w[i], (size_t)i * POOL) != 0) {
            fprintf(stderr, "bench_sim: cannot seal the messages\n");
            goto out;
        }
    }
    double start = now_s();
    b->deadline = start + b->o.seconds;
    for (; started < b->o.threads; started++)
        if (pthread_create(&w[started].thread, NULL, worker_main, &w[started]) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(w[i].thread, NULL);
    rc = report(w, started, now_s() - start);
out:
    for (int i = 0; i < b->o.threads; i++) {
        for (size_t j = 0; j < POOL; j++)
            free(w[i].pool[j].box);
        free(w[i].lat_us);
    }
    free(w);
    return rc;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    int64_t v;
    *o = (struct opts){8, 40000, 20.0, LST_BENCH_SIM, LST_BENCH_DIRECTORY};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            o->requests = 2000;
            o->seconds = 5;
            continue;
        }
        if (next == NULL)
            return -1;
        i++;
        if (strcmp(a, "--threads") == 0 && lst_parse_i64(next, 1, MAX_THREADS, &v) == LST_OK)
            o->threads = (int)v;
        else if (strcmp(a, "--requests") == 0 && lst_parse_i64(next, 1, 100000000, &v) == LST_OK)
            o->requests = v;
        else if (strcmp(a, "--seconds") == 0 &&
                 lst_parse_double(next, 0.1, 600, &o->seconds) == LST_OK)
            continue;
        else if (strcmp(a, "--sim") == 0)
            o->sim = next;
        else if (strcmp(a, "--directory") == 0)
            o->directory = next;
        else
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct bench b;
    int rc = 1;
    memset(&b, 0, sizeof(b));
    b.pid = -1;
    if (parse_args(argc, argv, &b.o) != 0) {
        fprintf(stderr, "usage: bench_sim [--quick] [--threads N (8)] [--requests N (40000)] "
                        "[--seconds S (20)] [--sim PATH] [--directory CSV]\n");
        return 2;
    }
    lst_log_init("bench_sim", LST_LOG_WARN);
    /* curl_global_init before any thread exists (lst_gateway_global_init says why). */
    if (lst_threema_init() != LST_OK || lst_gateway_global_init() != LST_OK ||
        lst_threema_key_generate(b.gw_sk, b.gw_pk) != LST_OK)
        return 1;
    if (start_sim(&b) == 0 && load_users(&b) == 0)
        rc = run(&b);
    stop_sim(&b);
    free(b.users);
    lst_threema_wipe(b.gw_sk, sizeof(b.gw_sk));
    return rc;
}
