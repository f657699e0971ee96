/* The chaos suite's supervisor: runs a fixed set of services, restarts any that exits and
 * counts every restart exactly, so the checker can tell an injected kill from a crash loop.
 *
 *   supervise STATE_DIR SPEC_FILE
 *
 * SPEC_FILE: one service per line, "name<TAB>shell command" (run as `/bin/sh -c "exec env CMD"`,
 * so the command may start with VAR=value assignments). Lines starting with '#' are ignored.
 * For each service the supervisor keeps, in STATE_DIR:
 *   <name>.pid       the current pid (rewritten on each start; the harness kills through it)
 *   <name>.log       stdout and stderr of every incarnation, appended
 *   status           "name pid starts exits last_exit_status" per service, rewritten atomically
 *                    after every change
 * A service that exits is started again after 200 ms. One that exited more than 20 times in
 * 30 s is left down and marked "crashloop" in status (the checker fails on it).
 * SIGTERM/SIGINT: every child gets SIGTERM, then SIGKILL after 20 s; the supervisor exits 0.
 * Only the supervisor's own children are ever signalled. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SVC        16
#define RESTART_DELAY  200
#define LOOP_WINDOW_MS 30000
#define LOOP_EXITS     20
#define STOP_GRACE_MS  20000

struct svc {
    char name[64];
    char *cmd; /* owned */
    pid_t pid; /* 0: not running */
    long starts, exits;
    int last_status;
    long long restart_at;   /* when to start again (0: not scheduled) */
    long long window_start; /* crash-loop window */
    long window_exits;
    int crashloop;
};

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int load_spec(const char *path, struct svc *s, int *n)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    *n = 0;
    if (f == NULL)
        return -1;
    while (*n < MAX_SVC && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (line[0] == '#' || tab == NULL)
            continue;
        *tab = '\0';
        memset(&s[*n], 0, sizeof(s[*n]));
        snprintf(s[*n].name, sizeof(s[*n].name), "%.63s", line);
        s[*n].cmd = strdup(tab + 1);
        if (s[*n].cmd == NULL)
            break;
        (*n)++;
    }
    fclose(f);
    return *n > 0 ? 0 : -1;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char tmp[1024], path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return;
    fputs(text, f);
    if (fclose(f) == 0)
        rename(tmp, path);
}

static void write_status(const char *dir, const struct svc *s, int n)
{
    char buf[4096];
    size_t off = 0;
    for (int i = 0; i < n && off < sizeof(buf); i++) {
        int w =
            snprintf(buf + off, sizeof(buf) - off, "%s %d %ld %ld %d%s\n", s[i].name, (int)s[i].pid,
                     s[i].starts, s[i].exits, s[i].last_status, s[i].crashloop ? " crashloop" : "");
        if (w < 0)
            break;
        off += (size_t)w;
    }
    if (off >= sizeof(buf))
        off = sizeof(buf) - 1;
    buf[off] = '\0';
    write_file(dir, "status", buf);
}

static void start(const char *dir, struct svc *s)
{
    char log[1024], pidname[128], pidtext[32];
    snprintf(log, sizeof(log), "%s/%s.log", dir, s->name);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0)
            dup2(nul, 0);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        /* a process group of its own: a Ctrl-C at the terminal reaches only the supervisor,
         * which stops the services in order. */
        setpgid(0, 0);
        size_t len = strlen(s->cmd) + 16;
        char *cmd = malloc(len);
        if (cmd == NULL)
            _exit(127);
        snprintf(cmd, len, "exec env %s", s->cmd);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) {
        s->restart_at = now_ms() + 1000;
        return;
    }
    s->pid = pid;
    s->starts++;
    s->restart_at = 0;
    snprintf(pidname, sizeof(pidname), "%s.pid", s->name);
    snprintf(pidtext, sizeof(pidtext), "%d\n", (int)pid);
    write_file(dir, pidname, pidtext);
}

static void reaped(struct svc *s, int status)
{
    long long t = now_ms();
    s->pid = 0;
    s->exits++;
    s->last_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (t - s->window_start > LOOP_WINDOW_MS) {
        s->window_start = t;
        s->window_exits = 0;
    }
    if (++s->window_exits > LOOP_EXITS)
        s->crashloop = 1;
    else
        s->restart_at = t + RESTART_DELAY;
}

static void stop_all(const char *dir, struct svc *s, int n)
{
    long long end = now_ms() + STOP_GRACE_MS;
    for (int i = 0; i < n; i++)
        if (s[i].pid > 0)
            kill(s[i].pid, SIGTERM);
    for (;;) {
        int alive = 0, st = 0;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0)
            for (int i = 0; i < n; i++)
                if (s[i].pid == p)
                    s[i].pid = 0;
        for (int i = 0; i < n; i++)
            alive += s[i].pid > 0;
        if (alive == 0 || now_ms() > end)
            break;
        sleep_ms(50);
    }
    for (int i = 0; i < n; i++)
        if (s[i].pid > 0) {
            kill(s[i].pid, SIGKILL);
            waitpid(s[i].pid, NULL, 0);
            s[i].pid = 0;
        }
    write_status(dir, s, n);
}

int main(int argc, char **argv)
{
    struct svc s[MAX_SVC];
    int n = 0;
    if (argc != 3 || load_spec(argv[2], s, &n) != 0) {
        fprintf(stderr, "usage: supervise STATE_DIR SPEC_FILE (name<TAB>command lines)\n");
        return 2;
    }
    const char *dir = argv[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    for (int i = 0; i < n; i++)
        start(dir, &s[i]);
    write_status(dir, s, n);
    while (!stop_flag) {
        int st = 0, changed = 0;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0)
            for (int i = 0; i < n; i++)
                if (s[i].pid == p) {
                    reaped(&s[i], st);
                    changed = 1;
                }
        long long t = now_ms();
        for (int i = 0; i < n; i++)
            if (s[i].pid == 0 && !s[i].crashloop && s[i].restart_at > 0 && t >= s[i].restart_at) {
                start(dir, &s[i]);
                changed = 1;
            }
        if (changed)
            write_status(dir, s, n);
        sleep_ms(20);
    }
    stop_all(dir, s, n);
    for (int i = 0; i < n; i++)
        free(s[i].cmd);
    return 0;
}
