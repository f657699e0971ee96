/* Benchmark of gateway-in (figures, not pass/fail): accepted callbacks per second (MAC,
 * dedupe, decryption, decoding, Kafka acknowledged) under concurrent load, p50/p99 latency and
 * gateway-in's peak RSS, side by side with the official SDK's callback application
 * (bench/gateway_in/sdk_callback_app.py) decrypting the very same callbacks.
 *
 * The load: `callbacks` text messages pre-built and signed as the Gateway does, from `senders`
 * simulated users, posted by `conns` client threads, each on one keep-alive connection. Before
 * the measured run every sender is seen once (warm caches on both sides, as in steady state).
 *
 * usage: bench_gateway_in [--callbacks N] [--senders N] [--conns N] [--sdk PYTHON]
 * Environment as the gateway-in system tests (gateway_in_common.h) plus GWIN_SDK_APP, the path
 * of sdk_callback_app.py. */
#include <pthread.h>
#include <stdatomic.h>

#include "gateway_in_common.h"

struct load {
    const char *url;
    struct lst_buf *bodies;
    size_t n;
    atomic_size_t next;
    atomic_size_t ok, failed;
    double *lat_ms; /* per callback */
};

struct stats {
    double seconds, per_s, p50, p99;
    size_t ok, failed;
};

static void *client(void *arg)
{
    struct load *l = arg;
    CURL *c = curl_easy_init();
    if (c == NULL)
        return NULL;
    curl_easy_setopt(c, CURLOPT_URL, l->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gwin_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
    /* No "Expect: 100-continue" round trip for the larger bodies. */
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    for (;;) {
        size_t i = atomic_fetch_add(&l->next, 1);
        if (i >= l->n)
            break;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, l->bodies[i].data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)l->bodies[i].len);
        long code = 0;
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        l->lat_ms[i] =
            (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (code == 200)
            atomic_fetch_add(&l->ok, 1);
        else
            atomic_fetch_add(&l->failed, 1);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct stats run_load(const char *url, struct lst_buf *bodies, size_t n, size_t conns)
{
    struct load l = {.url = url, .bodies = bodies, .n = n};
    struct stats s = {0};
    l.lat_ms = calloc(n, sizeof(double));
    pthread_t *th = calloc(conns, sizeof(*th));
    if (l.lat_ms == NULL || th == NULL)
        goto out;
    int64_t t0 = lst_mono_ms();
    for (size_t i = 0; i < conns; i++)
        pthread_create(&th[i], NULL, client, &l);
    for (size_t i = 0; i < conns; i++)
        pthread_join(th[i], NULL);
    s.seconds = (double)(lst_mono_ms() - t0) / 1000.0;
    s.ok = atomic_load(&l.ok);
    s.failed = atomic_load(&l.failed);
    s.per_s = s.seconds > 0 ? (double)s.ok / s.seconds : 0;
    qsort(l.lat_ms, n, sizeof(double), cmp_double);
    s.p50 = l.lat_ms[n / 2];
    s.p99 = l.lat_ms[(n * 99) / 100];
out:
    free(l.lat_ms);
    free(th);
    return s;
}

/* VmHWM (peak resident set) of pid in KiB, -1 when unknown. */
static long peak_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f != NULL)
        fclose(f);
    return kib;
}

/* CPU seconds (user + system) pid has used so far, -1 when unknown. */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command (which may hold spaces) start after the last ')'. */
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static bool build_all(const struct gwin_env *e, size_t n, size_t senders, struct lst_buf *bodies,
                      struct lst_buf *warm)
{
    char(*ids)[LST_THREEMA_ID_SIZE + 1] = calloc(senders, sizeof(*ids));
    uint8_t(*sks)[LST_THREEMA_KEY_SIZE] = calloc(senders, sizeof(*sks));
    bool ok = ids != NULL && sks != NULL;
    for (size_t i = 0; ok && i < senders; i++)
        ok = gwin_sim_user(e, i, ids[i], sks[i]);
    struct lst_buf padded;
    lst_buf_init(&padded);
    const char *text = "Ladung ist aufgenommen, fahre los. Ankunft in etwa 40 Minuten.";
    for (size_t i = 0; ok && i < n + senders; i++) {
        size_t u = i % senders;
        char msgid[LST_THREEMA_MSGID_HEX + 1] = "";
        struct lst_buf *out = i < senders ? &warm[i] : &bodies[i - senders];
        lst_buf_init(out);
        ok = lst_threema_pad(LST_THREEMA_TYPE_TEXT, (const uint8_t *)text, strlen(text), 0,
                             &padded) == LST_OK &&
             gwin_build(e, ids[u], sks[u], (const uint8_t *)padded.data, padded.len, msgid, out) ==
                 LST_OK;
    }
    lst_buf_cleanup(&padded);
    if (sks != NULL)
        lst_threema_wipe(sks, senders * sizeof(*sks));
    free(ids);
    free(sks);
    return ok;
}

static void print_stats(const char *who, const struct stats *s, long rss_kib, double cpu_us)
{
    printf("%-28s %9.0f callbacks/s  p50 %7.2f ms  p99 %7.2f ms  (%zu ok, %zu failed, %.2f s)", who,
           s->per_s, s->p50, s->p99, s->ok, s->failed, s->seconds);
    if (cpu_us > 0)
        printf("  server CPU %.0f us/callback", cpu_us);
    if (rss_kib > 0)
        printf("  peak RSS %.1f MiB", (double)rss_kib / 1024.0);
    printf("\n");
    fflush(stdout);
}

static pid_t start_sdk(const char *python, const char *app, int port, const struct gwin_env *e)
{
    char p[16], key[512];
    snprintf(p, sizeof(p), "%d", port);
    snprintf(key, sizeof(key), "%s/demo/DEMO-ONLY-gateway.private.key", e->src);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(python, python, app, p, e->sim, GWIN_SECRET, key, (char *)NULL);
        _exit(127);
    }
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    for (int64_t end = lst_mono_ms() + 30000; lst_mono_ms() < end; lst_sleep_ms(100, NULL)) {
        if (gwin_http("GET", url, NULL, 0, NULL) != 0)
            return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
    }
    return pid;
}

static size_t arg_size(int argc, char **argv, const char *name, size_t def)
{
    for (int i = 1; i + 1 < argc; i++) {
        int64_t v = 0;
        if (strcmp(argv[i], name) == 0 && lst_parse_i64(argv[i + 1], 1, 10000000, &v) == LST_OK)
            return (size_t)v;
    }
    return def;
}

static const char *arg_str(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

int main(int argc, char **argv)
{
    size_t n = arg_size(argc, argv, "--callbacks", 20000);
    size_t senders = arg_size(argc, argv, "--senders", 50);
    size_t conns = arg_size(argc, argv, "--conns", 64);
    const char *python = arg_str(argc, argv, "--sdk");
    const char *app = getenv("GWIN_SDK_APP");
    struct gwin_env e;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    lst_threema_init();
    lst_log_init("bench-gateway-in", LST_LOG_WARN);
    if (!gwin_env_init(&e, "bench"))
        return 1;
    struct lst_buf *bodies = calloc(n, sizeof(*bodies)), *warm = calloc(senders, sizeof(*warm));
    if (bodies == NULL || warm == NULL || !build_all(&e, n, senders, bodies, warm)) {
        fprintf(stderr, "bench: building the callbacks failed\n");
        return 1;
    }
    printf("gateway-in benchmark: %zu text callbacks from %zu senders, %zu connections "
           "(keep-alive), %ld CPUs\n",
           n, senders, conns, sysconf(_SC_NPROCESSORS_ONLN));

    const char *extra[] = {"LST_LOG_LEVEL=warn", NULL};
    if (!gwin_start(&e, extra)) {
        fprintf(stderr, "bench: gateway-in did not start, see %s\n", e.log);
        return 1;
    }
    struct stats warm_s = run_load(e.url, warm, senders, conns < senders ? conns : senders);
    if (warm_s.ok != senders)
        fprintf(stderr, "bench: warm-up: %zu of %zu accepted\n", warm_s.ok, senders);
    double c0 = cpu_seconds(e.pid);
    struct stats ours = run_load(e.url, bodies, n, conns);
    double ours_cpu = ours.ok > 0 ? (cpu_seconds(e.pid) - c0) * 1e6 / (double)ours.ok : -1;
    long rss = peak_rss_kib(e.pid);
    print_stats("gateway-in (Kafka acked)", &ours, rss, ours_cpu);
    gwin_stop(&e);

    if (python != NULL && app != NULL) {
        int port = gwin_free_port();
        pid_t sdk = start_sdk(python, app, port, &e);
        if (sdk <= 0) {
            fprintf(stderr, "bench: the SDK callback app did not start\n");
            return 1;
        }
        char url[96];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/callback", port);
        run_load(url, warm, senders, conns < senders ? conns : senders);
        c0 = cpu_seconds(sdk);
        struct stats sdk_s = run_load(url, bodies, n, conns);
        double sdk_cpu = sdk_s.ok > 0 ? (cpu_seconds(sdk) - c0) * 1e6 / (double)sdk_s.ok : -1;
        long sdk_rss = peak_rss_kib(sdk);
        print_stats("SDK callback app (decrypt)", &sdk_s, sdk_rss, sdk_cpu);
        kill(sdk, SIGTERM);
        waitpid(sdk, NULL, 0);
        if (sdk_s.per_s > 0)
            printf("ratio gateway-in / SDK: %.1fx in callbacks/s (target >= 8x), %.1fx in server "
                   "CPU per callback\n",
                   ours.per_s / sdk_s.per_s, ours_cpu > 0 ? sdk_cpu / ours_cpu : 0.0);
    }
    for (size_t i = 0; i < n; i++)
        lst_buf_cleanup(&bodies[i]);
    for (size_t i = 0; i < senders; i++)
        lst_buf_cleanup(&warm[i]);
    free(bodies);
    free(warm);
    return 0;
}
