/* Benchmark of gateway-in (figures, not pass/fail): accepted callbacks per second (MAC,
 * dedupe, decryption, decoding, Kafka acknowledged) under concurrent load, p50/p99 latency and
 * gateway-in's peak RSS, side by side with the official SDK's callback application
 * (bench/gateway_in/sdk_callback_app.py) decrypting the very same callbacks.
 *
 * The load: `callbacks` text messages pre-built and signed as the Gateway does, from `senders`
 * simulated users, posted over `conns` keep-alive connections with one request in flight each
 * (one epoll thread, below). Before the measured run `warm` other callbacks go through (every
 * sender seen, caches warm, and the broker's JIT past its first compilations, as in steady
 * state); the SDK app gets the same warm-up.
 *
 * usage: bench_gateway_in [--callbacks N] [--senders N] [--conns N] [--warm N] [--sdk PYTHON]
 * Environment as the gateway-in system tests (gateway_in_common.h) plus GWIN_SDK_APP, the path
 * of sdk_callback_app.py. */
#include <netinet/tcp.h>
#include <stdint.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/uio.h>

#include "gateway_in_common.h"

/* The load generator: one thread, an epoll loop over `conns` keep-alive connections, each with
 * one request in flight, writing pre-built bodies behind a fixed header and reading the status
 * line and Content-Length of the answer. A thread per connection with blocking libcurl cost
 * about 60 us of CPU per request on this 2-core machine, which the servers measured then had to
 * share; this loop costs a few us (two syscalls per request), the same for both servers. */
#define RESP_BUF 4096

struct conn {
    int fd;
    size_t idx;     /* callback in flight; SIZE_MAX: idle */
    size_t sent;    /* bytes of header + body written */
    char head[256]; /* request line and headers of the request in flight */
    size_t head_len;
    char in[RESP_BUF];
    size_t in_len;
    struct timespec t0;
};

struct load {
    struct sockaddr_in addr;
    char path[128];
    struct lst_buf *bodies;
    size_t n, next, done, ok, failed;
    double *lat_ms; /* per callback */
    int ep;
};

struct stats {
    double seconds, per_s, p50, p99, client_cpu_us;
    size_t ok, failed;
};

static bool parse_url(const char *url, struct load *l)
{
    unsigned a, b, c, d, port;
    int off = 0;
    if (sscanf(url, "http://%u.%u.%u.%u:%u%n", &a, &b, &c, &d, &port, &off) != 5 || port > 65535)
        return false;
    memset(&l->addr, 0, sizeof(l->addr));
    l->addr.sin_family = AF_INET;
    l->addr.sin_port = htons((uint16_t)port);
    l->addr.sin_addr.s_addr = htonl(a << 24 | b << 16 | c << 8 | d);
    snprintf(l->path, sizeof(l->path), "%s", url[off] == '/' ? url + off : "/");
    return true;
}

static bool conn_open(struct load *l, struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (c->fd < 0)
        return false;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)&l->addr, sizeof(l->addr)) != 0) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->in_len = 0;
    return true;
}

static void conn_close(struct load *l, struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
}

static void want_out(struct load *l, struct conn *c, bool on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0u), .data.ptr = c};
    epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what is left of the request in flight; false when the connection failed. */
static bool conn_write(struct load *l, struct conn *c)
{
    const struct lst_buf *b = &l->bodies[c->idx];
    while (c->sent < c->head_len + b->len) {
        struct iovec iov[2];
        int n = 0;
        if (c->sent < c->head_len)
            iov[n++] = (struct iovec){c->head + c->sent, c->head_len - c->sent};
        size_t boff = c->sent > c->head_len ? c->sent - c->head_len : 0;
        iov[n++] = (struct iovec){b->data + boff, b->len - boff};
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want_out(l, c, true);
            return true;
        }
        if (w <= 0)
            return false;
        c->sent += (size_t)w;
    }
    return true;
}

/* Starts the next callback on c; false when there is none left. */
static bool conn_next(struct load *l, struct conn *c)
{
    if (l->next >= l->n) {
        c->idx = SIZE_MAX;
        return false;
    }
    c->idx = l->next++;
    c->sent = 0;
    int h = snprintf(c->head, sizeof(c->head),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     l->path, l->bodies[c->idx].len);
    c->head_len = (size_t)h;
    clock_gettime(CLOCK_MONOTONIC, &c->t0);
    return true;
}

static void finish(struct load *l, struct conn *c, int status)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    l->lat_ms[c->idx] =
        (double)(t1.tv_sec - c->t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - c->t0.tv_nsec) / 1e6;
    if (status == 200)
        l->ok++;
    else
        l->failed++;
    l->done++;
    c->idx = SIZE_MAX;
}

/* The length of a complete response at the start of c->in (0: not complete yet, -1: not
 * understood) and its status. Only Content-Length framing: both servers answer that way. */
static long response_len(struct conn *c, int *status, bool *close_after)
{
    c->in[c->in_len < RESP_BUF ? c->in_len : RESP_BUF - 1] = '\0';
    const char *end = strstr(c->in, "\r\n\r\n");
    if (end == NULL)
        return c->in_len >= RESP_BUF - 1 ? -1 : 0;
    if (sscanf(c->in, "HTTP/1.%*d %d", status) != 1)
        return -1;
    long body = -1;
    *close_after = false;
    for (const char *p = strstr(c->in, "\r\n"); p != NULL && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
            body = strtol(p + 17, NULL, 10);
        else if (strncasecmp(p + 2, "Connection: close", 17) == 0)
            *close_after = true;
    }
    if (body < 0)
        return -1;
    long total = (long)(end + 4 - c->in) + body;
    return total <= (long)c->in_len ? total : (total >= RESP_BUF ? -1 : 0);
}

/* Reads and completes responses; false when the connection must be replaced. */
static bool conn_read(struct load *l, struct conn *c)
{
    ssize_t r = read(c->fd, c->in + c->in_len, RESP_BUF - 1 - c->in_len);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return true;
    if (r <= 0)
        return false;
    c->in_len += (size_t)r;
    int status = 0;
    bool close_after = false;
    long len = response_len(c, &status, &close_after);
    if (len < 0 || c->idx == SIZE_MAX)
        return false;
    if (len == 0)
        return true;
    finish(l, c, status);
    memmove(c->in, c->in + len, c->in_len - (size_t)len);
    c->in_len -= (size_t)len;
    if (close_after)
        return false;
    return !conn_next(l, c) || conn_write(l, c);
}

/* A broken connection: its request failed; a fresh connection carries on. */
static void conn_replace(struct load *l, struct conn *c)
{
    if (c->idx != SIZE_MAX)
        finish(l, c, 0);
    conn_close(l, c);
    if (conn_open(l, c) && conn_next(l, c) && !conn_write(l, c))
        conn_replace(l, c);
}

static bool any_open(const struct conn *cs, size_t conns)
{
    for (size_t i = 0; i < conns; i++)
        if (cs[i].fd >= 0)
            return true;
    return false;
}

static void drive(struct load *l, struct conn *cs, size_t conns)
{
    struct epoll_event evs[256];
    for (size_t i = 0; i < conns; i++) {
        cs[i].idx = SIZE_MAX;
        if (!conn_open(l, &cs[i]))
            continue;
        if (conn_next(l, &cs[i]) && !conn_write(l, &cs[i]))
            conn_replace(l, &cs[i]);
    }
    int64_t end = lst_mono_ms() + 300000;
    while (l->done < l->n && lst_mono_ms() < end) {
        int n = epoll_wait(l->ep, evs, 256, 1000);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            bool ok = true;
            if (evs[i].events & EPOLLOUT) {
                want_out(l, c, false);
                ok = conn_write(l, c);
            }
            if (ok && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                ok = conn_read(l, c);
            if (!ok)
                conn_replace(l, c);
        }
        if (n == 0 && !any_open(cs, conns))
            break; /* the server is gone: what is left counts as failed */
    }
    l->failed += l->n - l->done; /* never answered within the bound */
    for (size_t i = 0; i < conns; i++)
        conn_close(l, &cs[i]);
}

static double self_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct stats run_load(const char *url, struct lst_buf *bodies, size_t n, size_t conns)
{
    struct load l = {.bodies = bodies, .n = n, .ep = -1};
    struct stats s = {0};
    l.lat_ms = calloc(n, sizeof(double));
    struct conn *cs = calloc(conns, sizeof(*cs));
    if (l.lat_ms == NULL || cs == NULL || !parse_url(url, &l) ||
        (l.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        goto out;
    int64_t t0 = lst_mono_ms();
    double cpu0 = self_cpu_us();
    drive(&l, cs, conns);
    s.client_cpu_us = (self_cpu_us() - cpu0) / (double)n;
    s.seconds = (double)(lst_mono_ms() - t0) / 1000.0;
    s.ok = l.ok;
    s.failed = l.failed;
    s.per_s = s.seconds > 0 ? (double)s.ok / s.seconds : 0;
    qsort(l.lat_ms, n, sizeof(double), cmp_double);
    s.p50 = l.lat_ms[n / 2];
    s.p99 = l.lat_ms[(n * 99) / 100];
out:
    if (l.ep >= 0)
        close(l.ep);
    free(l.lat_ms);
    free(cs);
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

static bool build_all(const struct gwin_env *e, size_t n, size_t senders, size_t nwarm,
                      struct lst_buf *bodies, struct lst_buf *warm)
{
    char(*ids)[LST_THREEMA_ID_SIZE + 1] = calloc(senders, sizeof(*ids));
    uint8_t(*sks)[LST_THREEMA_KEY_SIZE] = calloc(senders, sizeof(*sks));
    bool ok = ids != NULL && sks != NULL;
    for (size_t i = 0; ok && i < senders; i++)
        ok = gwin_sim_user(e, i, ids[i], sks[i]);
    struct lst_buf padded;
    lst_buf_init(&padded);
    const char *text = "Ladung ist aufgenommen, fahre los. Ankunft in etwa 40 Minuten.";
    for (size_t i = 0; ok && i < n + nwarm; i++) {
        size_t u = i % senders;
        char msgid[LST_THREEMA_MSGID_HEX + 1] = "";
        struct lst_buf *out = i < nwarm ? &warm[i] : &bodies[i - nwarm];
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
    printf("  load generator CPU %.1f us/callback", s->client_cpu_us);
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
    size_t conns = arg_size(argc, argv, "--conns", 256);
    /* at least one callback per sender, so every sender's key is cached before measuring */
    /* 60,000: with 3,000 the broker's JIT compiler still took ~20 % of the samples of the
     * measured window (docs/gateway-in.md, session 9); a long-running broker is past that */
    size_t nwarm = arg_size(argc, argv, "--warm", 60000);
    if (nwarm < senders)
        nwarm = senders;
    const char *python = arg_str(argc, argv, "--sdk");
    const char *app = getenv("GWIN_SDK_APP");
    struct gwin_env e;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    lst_threema_init();
    lst_log_init("bench-gateway-in", LST_LOG_WARN);
    if (!gwin_env_init(&e, "bench"))
        return 1;
    struct lst_buf *bodies = calloc(n, sizeof(*bodies)), *warm = calloc(nwarm, sizeof(*warm));
    if (bodies == NULL || warm == NULL || !build_all(&e, n, senders, nwarm, bodies, warm)) {
        fprintf(stderr, "bench: building the callbacks failed\n");
        return 1;
    }
    printf("gateway-in benchmark: %zu text callbacks from %zu senders, %zu connections "
           "(keep-alive, one epoll client thread), %zu warm-up callbacks, %ld CPUs\n",
           n, senders, conns, nwarm, sysconf(_SC_NPROCESSORS_ONLN));
    fflush(stdout);

    const char *extra[] = {"LST_LOG_LEVEL=warn", NULL};
    if (!gwin_start(&e, extra)) {
        fprintf(stderr, "bench: gateway-in did not start, see %s\n", e.log);
        return 1;
    }
    /* one sender per connection first (each key fetched once), then the rest */
    struct stats warm_s = run_load(e.url, warm, senders, conns < senders ? conns : senders);
    warm_s.ok += run_load(e.url, warm + senders, nwarm - senders, conns).ok;
    if (warm_s.ok != nwarm)
        fprintf(stderr, "bench: warm-up: %zu of %zu accepted\n", warm_s.ok, nwarm);
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
        run_load(url, warm + senders, nwarm - senders, conns);
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
    for (size_t i = 0; i < nwarm; i++)
        lst_buf_cleanup(&warm[i]);
    free(bodies);
    free(warm);
    return 0;
}
