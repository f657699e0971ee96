/* Helpers shared by the end-to-end system tests (e2e_gateways.c, mission_e2e.c): child
 * processes, readiness polling, the Threema Gateway simulator and gateway-out started on free
 * ports, the demo ERP export, removal of a run's scratch files. Test code: static functions in
 * a header on purpose. Every string a helper is given stays owned by the caller; every process
 * it starts is owned by the caller (stop it with e2e_stop). */
#ifndef LST_TEST_E2E_COMMON_H
#define LST_TEST_E2E_COMMON_H

#include "gateway_in_common.h"
#include "lst_test.h"

#define E2E_MAX_ENV 48 /* settings of one child, common and the caller's together */

/* Starts bin with our environment plus env ("NAME=value"; "NAME=" unsets; NULL-ended), output
 * appended to log. The child is killed when the driver dies, however it dies. */
static inline pid_t e2e_spawn(const char *bin, const char *log, const char *const *env)
{
    pid_t parent = getpid(), pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the driver died before prctl took effect */
        _exit(127);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    for (size_t i = 0; env[i] != NULL; i++) {
        char name[128];
        const char *eq = strchr(env[i], '=');
        if (eq == NULL || (size_t)(eq - env[i]) >= sizeof(name))
            continue;
        memcpy(name, env[i], (size_t)(eq - env[i]));
        name[eq - env[i]] = '\0';
        if (eq[1] == '\0')
            unsetenv(name);
        else
            setenv(name, eq + 1, 1);
    }
    execl(bin, bin, (char *)NULL);
    _exit(127);
}

/* Polls url until it answers 200 (true), the process exits or the deadline passes. */
static inline bool e2e_wait_ok(const char *url, pid_t pid, int64_t timeout_ms)
{
    for (int64_t end = lst_mono_ms() + timeout_ms; lst_mono_ms() < end;) {
        if (gwin_http("GET", url, NULL, 0, NULL) == 200)
            return true;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return false;
        lst_sleep_ms(100, NULL);
    }
    return false;
}

/* e2e_wait_ok for http://127.0.0.1:<port><path>. */
static inline bool e2e_wait_port(int port, const char *path, pid_t pid, int64_t timeout_ms)
{
    char url[160];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    return e2e_wait_ok(url, pid, timeout_ms);
}

/* SIGTERM, then waits (bounded) and SIGKILLs; the exit status, -1 when killed or not running.
 * *pid is -1 afterwards. */
static inline int e2e_stop(pid_t *pid)
{
    int st = 0;
    if (*pid <= 0)
        return -1;
    kill(*pid, SIGTERM);
    for (int64_t end = lst_mono_ms() + 30000; lst_mono_ms() < end;) {
        if (waitpid(*pid, &st, WNOHANG) == *pid) {
            *pid = -1;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        lst_sleep_ms(50, NULL);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = -1;
    return -1;
}

/* Appends the NULL-ended extra to env (n entries used, room for E2E_MAX_ENV with the NULL);
 * false when it does not fit. */
static inline bool e2e_env_append(const char **env, size_t n, const char *const *extra)
{
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++, n++) {
        if (n + 1 >= E2E_MAX_ENV)
            return false;
        env[n] = extra[i];
    }
    env[n] = NULL;
    return true;
}

/* Starts the simulator (E2E_SIM_BIN) on a free port with the demo account and directory,
 * fast phones, no faults and no spontaneous replies, plus the caller's tuning (NULL-ended:
 * at least LST_SIM_DELAY_JITTER_MS, LST_SIM_ACK_PROBABILITY, LST_SIM_DECLINE_PROBABILITY);
 * sets e->sim_port and e->sim, writes the log path (<e->log>.sim) to log and the child to
 * *pid. True when it answers /healthz. */
static inline bool e2e_start_sim(struct gwin_env *e, const char *const *tuning, pid_t *pid,
                                 char *log, size_t logsz)
{
    const char *bin = gwin_getenv("E2E_SIM_BIN", NULL);
    int port = gwin_free_port();
    char v_port[32], v_dir[600], v_key[600], v_secret[600], url[128];
    if (bin == NULL || port <= 0)
        return false;
    snprintf(v_port, sizeof(v_port), "LST_SIM_PORT=%d", port);
    snprintf(v_dir, sizeof(v_dir), "LST_SIM_DIRECTORY=%s/demo/erp-export.csv", e->src);
    snprintf(v_key, sizeof(v_key),
             "LST_SIM_GATEWAY_PUBLIC_KEY_FILE=%s/demo/DEMO-ONLY-gateway.public.key", e->src);
    snprintf(v_secret, sizeof(v_secret), "LST_SIM_SECRET_FILE=%s/demo/DEMO-ONLY-gateway.secret",
             e->src);
    /* A failed callback would be retried after 1 s; the tests expect none. */
    const char *env[E2E_MAX_ENV] = {v_port,
                                    v_dir,
                                    v_key,
                                    v_secret,
                                    "LST_SIM_SECRET=",
                                    "LST_SIM_GATEWAY_PUBLIC_KEY=",
                                    "LST_SIM_CALLBACK_URL=",
                                    "LST_SIM_CREDITS=",
                                    "LST_SIM_RATE_LIMIT=0",
                                    "LST_SIM_FAULT_500_RATE=0",
                                    "LST_SIM_FAULT_TIMEOUT_RATE=0",
                                    "LST_SIM_FAULT_TIMEOUT_AFTER_RATE=0",
                                    "LST_SIM_RECEIVED_DELAY_MS=100",
                                    "LST_SIM_READ_DELAY_MS=300",
                                    "LST_SIM_NO_READ_RECEIPTS_SHARE=0.2",
                                    "LST_SIM_TEXT_ONLY_SHARE=0.05",
                                    "LST_SIM_REPLY_PROBABILITY=0",
                                    "LST_SIM_CALLBACK_RETRY_INTERVAL_MS=1000",
                                    "LST_LOG_LEVEL=warn"};
    if (!e2e_env_append(env, 19, tuning))
        return false;
    snprintf(log, logsz, "%s.sim", e->log);
    *pid = e2e_spawn(bin, log, env);
    e->sim_port = port;
    snprintf(e->sim, sizeof(e->sim), "http://127.0.0.1:%d", port);
    snprintf(url, sizeof(url), "%s/healthz", e->sim);
    return *pid > 0 && e2e_wait_ok(url, *pid, 20000);
}

/* Starts gateway-out (E2E_GWOUT_BIN) on a free port (*port) against the run's simulator with
 * the demo account, the run's topic prefix, group, Redis key prefix and blob directory, plus
 * the caller's extra settings (NULL-ended, may be NULL); log path <e->log>.gateway-out to log,
 * the child to *pid. True when it answers /readyz. */
static inline bool e2e_start_gateway_out(const struct gwin_env *e, const char *const *extra,
                                         pid_t *pid, int *port, char *log, size_t logsz)
{
    const char *bin = gwin_getenv("E2E_GWOUT_BIN", NULL);
    char v_port[48], v_url[96], v_secret[600], v_key[600], v_prefix[128], v_group[128], v_keys[128],
        v_blobs[600];
    *port = gwin_free_port();
    if (bin == NULL || *port <= 0)
        return false;
    snprintf(v_port, sizeof(v_port), "LST_HTTP_PORT=%d", *port);
    snprintf(v_url, sizeof(v_url), "LST_GATEWAY_URL=%s", e->sim);
    snprintf(v_secret, sizeof(v_secret), "LST_GATEWAY_SECRET_FILE=%s/demo/DEMO-ONLY-gateway.secret",
             e->src);
    snprintf(v_key, sizeof(v_key), "LST_PRIVATE_KEY_FILE=%s/demo/DEMO-ONLY-gateway.private.key",
             e->src);
    snprintf(v_prefix, sizeof(v_prefix), "LST_TOPIC_PREFIX=%s", e->prefix);
    snprintf(v_group, sizeof(v_group), "LST_GATEWAY_OUT_GROUP=%sgateway-out", e->prefix);
    snprintf(v_keys, sizeof(v_keys), "LST_GATEWAY_OUT_KEY_PREFIX=%sout:", e->key_prefix);
    snprintf(v_blobs, sizeof(v_blobs), "LST_BLOB_DIR=%s", e->blob_dir);
    const char *env[E2E_MAX_ENV] = {v_port,
                                    v_url,
                                    v_secret,
                                    v_key,
                                    v_prefix,
                                    v_group,
                                    v_keys,
                                    v_blobs,
                                    "LST_GATEWAY_ID=*LSTDEMO",
                                    "LST_GATEWAY_SECRET=",
                                    "LST_PRIVATE_KEY=",
                                    "LST_LOG_LEVEL=info",
                                    "LST_KAFKA_SESSION_TIMEOUT_MS=6000",
                                    "LST_GATEWAY_OUT_CONCURRENCY=8",
                                    "LST_GATEWAY_OUT_RATE_LIMIT=0",
                                    "LST_GATEWAY_OUT_BACKOFF_MIN_MS=50",
                                    "LST_GATEWAY_OUT_BACKOFF_MAX_MS=1000"};
    if (!e2e_env_append(env, 17, extra))
        return false;
    snprintf(log, logsz, "%s.gateway-out", e->log);
    *pid = e2e_spawn(bin, log, env);
    return *pid > 0 && e2e_wait_port(*port, "/readyz", *pid, 30000);
}

/* The simulator's users (GET <e->sim>/_sim/users) as a JSON array, NULL on failure; the
 * caller owns it (json_object_put). */
static inline json_object *e2e_sim_users(const struct gwin_env *e)
{
    char url[128];
    struct lst_buf b;
    lst_buf_init(&b);
    snprintf(url, sizeof(url), "%s/_sim/users", e->sim);
    json_object *users =
        gwin_http("GET", url, NULL, 0, &b) == 200 ? json_tokener_parse(b.data) : NULL;
    lst_buf_cleanup(&b);
    return users;
}

/* The demo ERP export (<e->src>/demo/erp-export.csv) open for reading, NULL on failure; the
 * caller closes it. */
static inline FILE *e2e_open_export(const struct gwin_env *e)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/demo/erp-export.csv", e->src);
    return fopen(path, "r");
}

/* Splits line at commas in place (the demo export quotes nothing); returns the field count. */
static inline size_t e2e_csv_split(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (c == NULL)
            break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

/* At the end of a run: unless a check failed or E2E_KEEP=1, removes the run's directory (the
 * parent of e->blob_dir, <work>/<name>-<tag>), e->log and the files (NULL-ended); else says
 * what was kept. */
static inline void e2e_remove_run(const struct gwin_env *e, const char *const *files)
{
    if (lst_test_failed_checks == 0 && strcmp(gwin_getenv("E2E_KEEP", "0"), "1") != 0) {
        char dir[600];
        snprintf(dir, sizeof(dir), "%s", e->blob_dir);
        char *slash = strrchr(dir, '/'); /* <work>/<name>-<tag>/blobs: remove <name>-<tag> */
        if (slash != NULL)
            *slash = '\0';
        const char *rm[E2E_MAX_ENV] = {"/bin/rm", "-rf", dir, e->log};
        if (e2e_env_append(rm, 4, files))
            gwin_run(rm);
    } else {
        printf("     kept: %s.*, %s\n", e->log, e->blob_dir);
    }
}

#endif
