/* Callbacks from the simulated phones to the configured URL (gateway-in), as the Gateway
 * sends them: a form body with from, to, messageId, date, nonce, box, mac, nickname; the box
 * is the padded container encrypted from the user's private key to the Gateway's public key;
 * the MAC is keyed with the API secret.
 *
 * A time-ordered queue (binary heap on due time, then sequence) feeds a bounded pool of
 * worker threads, each with its own curl handle (connection reuse). The Gateway's retry rule:
 * any answer but 200, or a broken connection, is retried `retries` more times `interval` apart,
 * then the callback is dropped for good and counted. Paused callbacks stay queued. */
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lst/log.h"
#include "lst/threema.h"
#include "sim.h"

/* Workers wake at least this often to notice a stop. */
#define IDLE_WAIT_MS 200

struct job {
    int64_t due_ms; /* monotonic */
    uint64_t seq;
    uint64_t gen; /* reset generation it belongs to */
    int64_t attempts;
    char from[SIM_ID_LEN + 1];
    char msgid[2 * SIM_MSGID_LEN + 1];
    char *body;
};

struct sim_callbacks {
    struct sim *sim;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job **heap;
    size_t n, cap;
    uint64_t seq, gen;
    char *url;
    bool paused;
    int64_t retries, interval_ms;
    bool stop;
    size_t in_flight;
    uint64_t sent, failed, dropped;
    pthread_t *threads;
    size_t nthreads;
};

/* ---- the heap ---- */

static bool earlier(const struct job *a, const struct job *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void swap(struct job **h, size_t i, size_t j)
{
    struct job *t = h[i];
    h[i] = h[j];
    h[j] = t;
}

static void heap_push(struct sim_callbacks *cb, struct job *j)
{
    size_t i = cb->n++;
    cb->heap[i] = j;
    while (i > 0 && earlier(cb->heap[i], cb->heap[(i - 1) / 2])) {
        swap(cb->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static struct job *heap_pop(struct sim_callbacks *cb)
{
    struct job *top = cb->heap[0];
    cb->heap[0] = cb->heap[--cb->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < cb->n && earlier(cb->heap[l], cb->heap[m]))
            m = l;
        if (r < cb->n && earlier(cb->heap[r], cb->heap[m]))
            m = r;
        if (m == i)
            break;
        swap(cb->heap, i, m);
        i = m;
    }
    return top;
}

static void job_free(struct job *j)
{
    if (j == NULL)
        return;
    free(j->body);
    free(j);
}

/* ---- sending ---- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

/* One POST; true only for a 200. */
static bool post(CURL *curl, const char *url, const char *body, int64_t timeout_ms, long *code)
{
    *code = 0;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK)
        return false;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, code);
    return *code == 200;
}

/* After an attempt: done, rescheduled, or dropped. Called with the lock held. */
static void settle(struct sim_callbacks *cb, struct job *j, bool ok, long code)
{
    struct sim *sim = cb->sim;
    if (ok) {
        cb->sent++;
        lst_counter_inc(sim->m.callbacks_sent);
        job_free(j);
        return;
    }
    cb->failed++;
    lst_counter_inc(sim->m.callbacks_failed);
    if (j->gen == cb->gen && j->attempts <= cb->retries) {
        j->due_ms = lst_mono_ms() + cb->interval_ms;
        j->seq = cb->seq++;
        heap_push(cb, j);
        LST_DEBUG("sim.callback.retry", "callback %s from %s failed (HTTP %ld), attempt %lld",
                  j->msgid, j->from, code, (long long)j->attempts);
        return;
    }
    cb->dropped++;
    lst_counter_inc(sim->m.callbacks_dropped);
    LST_WARN("sim.callback.dropped", "callback %s from %s dropped after %lld attempt(s)", j->msgid,
             j->from, (long long)j->attempts);
    job_free(j);
}

/* Waits for a due job; returns it (and its URL copy) or NULL on stop. Lock held. */
static struct job *next_due(struct sim_callbacks *cb, char **url)
{
    while (!cb->stop) {
        int64_t wait = IDLE_WAIT_MS;
        if (!cb->paused && cb->n > 0 && cb->url != NULL) {
            int64_t until = cb->heap[0]->due_ms - lst_mono_ms();
            if (until <= 0) {
                *url = lst_strdup(cb->url);
                return heap_pop(cb);
            }
            wait = until < wait ? until : wait;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(wait / 1000);
        ts.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cb->cond, &cb->lock, &ts);
    }
    return NULL;
}

static void *worker(void *arg)
{
    struct sim_callbacks *cb = arg;
    CURL *curl = curl_easy_init();
    pthread_mutex_lock(&cb->lock);
    for (;;) {
        char *url = NULL;
        struct job *j = next_due(cb, &url);
        if (j == NULL)
            break;
        cb->in_flight++;
        j->attempts++;
        pthread_mutex_unlock(&cb->lock);
        long code = 0;
        bool ok = curl != NULL && url != NULL &&
                  post(curl, url, j->body, cb->sim->cfg.callback_timeout_ms, &code);
        free(url);
        pthread_mutex_lock(&cb->lock);
        cb->in_flight--;
        settle(cb, j, ok, code);
    }
    pthread_mutex_unlock(&cb->lock);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    return NULL;
}

/* ---- building ---- */

/* Encrypts and signs container from u into a callback form body. */
static lst_err build_body(struct sim *sim, const struct sim_user *u, const unsigned char *container,
                          size_t len, int64_t delay_ms, const uint8_t msgid[SIM_MSGID_LEN],
                          char **body_out)
{
    struct lst_threema_shared shared;
    struct lst_threema_callback c;
    struct lst_buf padded, box, body;
    char nick[sizeof(u->nickname)];
    memset(&c, 0, sizeof(c));
    lst_buf_init(&padded);
    lst_buf_init(&box);
    lst_buf_init(&body);
    lst_err err = lst_threema_shared_init(&shared, u->sk, sim->gateway_pk);
    if (err == LST_OK)
        err = lst_threema_pad(container[0], container + 1, len - 1, 0, &padded);
    if (err == LST_OK)
        err = lst_threema_encrypt(&shared, (const uint8_t *)padded.data, padded.len, c.nonce, &box);
    if (err == LST_OK) {
        memcpy(c.from, u->id, sizeof(c.from));
        snprintf(c.to, sizeof(c.to), "%s", sim->cfg.gateway_id);
        lst_threema_hex_encode(msgid, SIM_MSGID_LEN, c.message_id, sizeof(c.message_id));
        memcpy(c.message_id_bytes, msgid, SIM_MSGID_LEN);
        c.date = (lst_wall_ms() + delay_ms) / 1000;
        c.box = (uint8_t *)box.data;
        c.box_len = box.len;
        memcpy(nick, u->nickname, sizeof(nick));
        c.nickname = nick[0] != '\0' ? nick : NULL;
        err = lst_threema_callback_build(&c, sim->cfg.secret, &body, NULL);
    }
    if (err == LST_OK)
        *body_out = lst_buf_steal(&body);
    lst_threema_shared_cleanup(&shared);
    lst_buf_cleanup(&padded);
    lst_buf_cleanup(&box);
    lst_buf_cleanup(&body);
    return err;
}

lst_err sim_callbacks_schedule(struct sim_callbacks *cb, const struct sim_user *u,
                               const unsigned char *container, size_t len, int64_t delay_ms,
                               char msgid_out[2 * SIM_MSGID_LEN + 1])
{
    uint8_t msgid[SIM_MSGID_LEN];
    randombytes_buf(msgid, sizeof(msgid));
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return LST_ERR_NOMEM;
    lst_err err = build_body(cb->sim, u, container, len, delay_ms, msgid, &j->body);
    if (err != LST_OK) {
        job_free(j);
        return err;
    }
    memcpy(j->from, u->id, sizeof(j->from));
    lst_threema_hex_encode(msgid, sizeof(msgid), j->msgid, sizeof(j->msgid));
    if (msgid_out != NULL)
        memcpy(msgid_out, j->msgid, sizeof(j->msgid));
    pthread_mutex_lock(&cb->lock);
    if (cb->n >= cb->cap) {
        cb->dropped++;
        lst_counter_inc(cb->sim->m.callbacks_dropped);
        pthread_mutex_unlock(&cb->lock);
        job_free(j);
        return LST_ERR_RANGE;
    }
    j->due_ms = lst_mono_ms() + delay_ms;
    j->seq = cb->seq++;
    j->gen = cb->gen;
    heap_push(cb, j);
    pthread_cond_signal(&cb->cond);
    pthread_mutex_unlock(&cb->lock);
    return LST_OK;
}

/* ---- lifecycle and settings ---- */

static void load_settings(struct sim_callbacks *cb)
{
    const struct sim_config *cfg = &cb->sim->cfg;
    free(cb->url);
    cb->url = cfg->callback_url != NULL ? lst_strdup(cfg->callback_url) : NULL;
    cb->paused = false;
    cb->retries = cfg->callback_retries;
    cb->interval_ms = cfg->callback_retry_interval_ms;
}

lst_err sim_callbacks_create(struct sim *sim, struct sim_callbacks **out)
{
    lst_err err = LST_ERR_NOMEM;
    struct sim_callbacks *cb = calloc(1, sizeof(*cb));
    *out = NULL;
    if (cb == NULL)
        return LST_ERR_NOMEM;
    cb->sim = sim;
    cb->cap = (size_t)sim->cfg.callback_queue_max;
    pthread_mutex_init(&cb->lock, NULL);
    pthread_cond_init(&cb->cond, NULL);
    cb->heap = calloc(cb->cap, sizeof(*cb->heap));
    cb->threads = calloc((size_t)sim->cfg.callback_workers, sizeof(*cb->threads));
    if (cb->heap == NULL || cb->threads == NULL)
        goto out;
    load_settings(cb);
    for (int64_t i = 0; i < sim->cfg.callback_workers; i++) {
        if (pthread_create(&cb->threads[cb->nthreads], NULL, worker, cb) != 0)
            goto out;
        cb->nthreads++;
    }
    err = LST_OK;
    *out = cb;
    cb = NULL;
out:
    sim_callbacks_destroy(cb);
    return err;
}

void sim_callbacks_destroy(struct sim_callbacks *cb)
{
    if (cb == NULL)
        return;
    pthread_mutex_lock(&cb->lock);
    cb->stop = true;
    pthread_cond_broadcast(&cb->cond);
    pthread_mutex_unlock(&cb->lock);
    for (size_t i = 0; i < cb->nthreads; i++)
        pthread_join(cb->threads[i], NULL);
    while (cb->n > 0)
        job_free(heap_pop(cb));
    free(cb->heap);
    free(cb->threads);
    free(cb->url);
    pthread_cond_destroy(&cb->cond);
    pthread_mutex_destroy(&cb->lock);
    free(cb);
}

void sim_callbacks_set_url(struct sim_callbacks *cb, const char *url)
{
    char *copy = url != NULL && url[0] != '\0' ? lst_strdup(url) : NULL;
    pthread_mutex_lock(&cb->lock);
    free(cb->url);
    cb->url = copy;
    pthread_cond_broadcast(&cb->cond);
    pthread_mutex_unlock(&cb->lock);
}

char *sim_callbacks_url(struct sim_callbacks *cb)
{
    pthread_mutex_lock(&cb->lock);
    char *copy = cb->url != NULL ? lst_strdup(cb->url) : NULL;
    pthread_mutex_unlock(&cb->lock);
    return copy;
}

void sim_callbacks_set_paused(struct sim_callbacks *cb, bool paused)
{
    pthread_mutex_lock(&cb->lock);
    cb->paused = paused;
    pthread_cond_broadcast(&cb->cond);
    pthread_mutex_unlock(&cb->lock);
}

void sim_callbacks_set_retry(struct sim_callbacks *cb, int64_t retries, int64_t interval_ms)
{
    pthread_mutex_lock(&cb->lock);
    if (retries >= 0)
        cb->retries = retries;
    if (interval_ms >= 0)
        cb->interval_ms = interval_ms;
    pthread_mutex_unlock(&cb->lock);
}

void sim_callbacks_reset(struct sim_callbacks *cb)
{
    pthread_mutex_lock(&cb->lock);
    while (cb->n > 0)
        job_free(heap_pop(cb));
    cb->gen++; /* jobs in flight now are not retried */
    cb->sent = cb->failed = cb->dropped = 0;
    load_settings(cb);
    pthread_cond_broadcast(&cb->cond);
    pthread_mutex_unlock(&cb->lock);
}

void sim_callbacks_json(struct sim_callbacks *cb, struct lst_buf *out)
{
    pthread_mutex_lock(&cb->lock);
    lst_buf_puts(out, "{\"url\":");
    if (cb->url != NULL)
        lst_buf_json_str(out, cb->url, strlen(cb->url));
    else
        lst_buf_puts(out, "null");
    lst_buf_printf(out,
                   ",\"paused\":%s,\"retries\":%lld,\"retryIntervalMs\":%lld,\"queued\":%zu,"
                   "\"inFlight\":%zu,\"sent\":%llu,\"failedAttempts\":%llu,\"dropped\":%llu}",
                   cb->paused ? "true" : "false", (long long)cb->retries,
                   (long long)cb->interval_ms, cb->n, cb->in_flight, (unsigned long long)cb->sent,
                   (unsigned long long)cb->failed, (unsigned long long)cb->dropped);
    pthread_mutex_unlock(&cb->lock);
}
