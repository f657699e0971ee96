/* A real redis-server for tests: started by the test on 127.0.0.1, a free high port and a
 * temporary directory, without persistence (--save '' --appendonly no), and stopped by it.
 *
 *   struct redis_fixture f;
 *   REQUIRE(redis_fixture_start(&f, NULL));   // or a password for --requirepass
 *   ... f.port ...
 *   redis_fixture_restart(&f);                // SIGKILL, then start again on the same port
 *   redis_fixture_stop(&f);
 *
 * The server gets PR_SET_PDEATHSIG(SIGKILL), so it dies with the test even when the test
 * crashes or is killed by ctest's timeout (also while SIGSTOPped). The test process must be
 * single-threaded when it calls start/restart or at least not hold locks the child needs: the
 * child only calls async-signal-safe functions before exec. All waits are bounded. */
#ifndef LST_REDIS_FIXTURE_H
#define LST_REDIS_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "lst/util.h"

#define REDIS_FIXTURE_BIN "/usr/bin/redis-server"

struct redis_fixture {
    pid_t pid;
    int port;
    char dir[64];
    char password[64];
};

/* Child side: only async-signal-safe calls between fork and exec. */
static void redis_fixture_exec(const char **argv)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
    }
    execv(REDIS_FIXTURE_BIN, (char *const *)(void *)argv);
    _exit(127);
}

/* True once the server answers anything (PONG, or NOAUTH with a password). */
static bool redis_fixture_answers(int port)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    bool ok = false;
    if (c != NULL && c->err == 0) {
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "PING");
        ok = r != NULL;
        if (r != NULL)
            freeReplyObject(r);
    }
    if (c != NULL)
        redisFree(c);
    return ok;
}

/* True when the server on f->port is f's own child: its INFO names f->pid. A server that
 * someone else started on the port between the free-port check and our spawn (ours then
 * fails to bind) must not be taken for ours: the tests FLUSHALL their server. */
static bool redis_fixture_is_ours(const struct redis_fixture *f)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", f->port, tv);
    bool ours = false;
    if (c != NULL && c->err == 0) {
        redisSetTimeout(c, tv);
        if (f->password[0] != '\0')
            freeReplyObject(redisCommand(c, "AUTH %s", f->password));
        redisReply *r = redisCommand(c, "INFO server");
        if (r != NULL && r->type == REDIS_REPLY_STRING) {
            const char *at = strstr(r->str, "process_id:");
            ours = at != NULL && strtol(at + strlen("process_id:"), NULL, 10) == (long)f->pid;
        }
        if (r != NULL)
            freeReplyObject(r);
    }
    if (c != NULL)
        redisFree(c);
    return ours;
}

/* Waits up to ms for the child to exit; true when it did. */
static bool redis_fixture_reap(struct redis_fixture *f, int64_t ms)
{
    int64_t deadline = lst_mono_ms() + ms;
    while (f->pid > 0) {
        int status;
        pid_t got = waitpid(f->pid, &status, WNOHANG);
        if (got == f->pid || (got < 0 && errno == ECHILD)) {
            f->pid = 0;
            return true;
        }
        if (lst_mono_ms() > deadline)
            return false;
        lst_sleep_ms(10, NULL);
    }
    return true;
}

/* Starts the server on f->port; false when it exits (port taken) or is not up within 5 s. */
static bool redis_fixture_spawn(struct redis_fixture *f)
{
    char port[16], logfile[96];
    snprintf(port, sizeof(port), "%d", f->port);
    snprintf(logfile, sizeof(logfile), "%s/redis.log", f->dir);
    const char *argv[] = {
        "redis-server", "--port",      port,   "--bind",
        "127.0.0.1",    "--save",      "",     "--appendonly",
        "no",           "--dir",       f->dir, "--logfile",
        logfile,        "--daemonize", "no",   f->password[0] ? "--requirepass" : NULL,
        f->password,    NULL};
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0)
        redis_fixture_exec(argv);
    f->pid = pid;
    int64_t deadline = lst_mono_ms() + 5000;
    while (lst_mono_ms() < deadline) {
        if (redis_fixture_reap(f, 0))
            return false;
        if (redis_fixture_is_ours(f))
            return true;
        lst_sleep_ms(20, NULL);
    }
    kill(f->pid, SIGKILL);
    redis_fixture_reap(f, 5000);
    return false;
}

static bool redis_fixture_start(struct redis_fixture *f, const char *password)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->password, sizeof(f->password), "%s", password != NULL ? password : "");
    snprintf(f->dir, sizeof(f->dir), "/tmp/lst-redis-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return false;
    unsigned seed = (unsigned)getpid() ^ (unsigned)lst_wall_ms();
    for (int attempt = 0; attempt < 10; attempt++) {
        seed = seed * 1103515245u + 12345u;
        f->port = 20000 + (int)((seed >> 8) % 30000);
        if (redis_fixture_answers(f->port))
            continue; /* someone else's server */
        if (redis_fixture_spawn(f))
            return true;
    }
    return false;
}

/* Simulates a crash: SIGKILL (after SIGCONT, in case the test stopped it), then starts a new,
 * empty server on the same port. */
static bool redis_fixture_restart(struct redis_fixture *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        kill(f->pid, SIGCONT);
        if (!redis_fixture_reap(f, 5000))
            return false;
    }
    for (int attempt = 0; attempt < 20; attempt++) {
        if (redis_fixture_spawn(f))
            return true;
        lst_sleep_ms(100, NULL);
    }
    return false;
}

static void redis_fixture_stop(struct redis_fixture *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGCONT);
        kill(f->pid, SIGTERM);
        if (!redis_fixture_reap(f, 5000)) {
            kill(f->pid, SIGKILL);
            redis_fixture_reap(f, 5000);
        }
    }
    if (f->dir[0] != '\0') {
        char path[96];
        snprintf(path, sizeof(path), "%s/redis.log", f->dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/dump.rdb", f->dir);
        unlink(path);
        rmdir(f->dir);
        f->dir[0] = '\0';
    }
}

#endif
