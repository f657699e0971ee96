/* The request journal: every Gateway API request with its endpoint, status, the client's
 * X-Request-Id and, for sends, the recipient and message ID. A future chaos checker
 * reconciles what the services believe they sent against it. A ring: the oldest entries are
 * overwritten once capacity is reached (GET /_sim/log says which sequence numbers remain).
 * No phone numbers, e-mail addresses or texts are kept. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

lst_err sim_journal_init(struct sim_journal *j, size_t cap)
{
    memset(j, 0, sizeof(*j));
    j->next_seq = 1;
    j->cap = cap;
    j->ring = calloc(cap, sizeof(*j->ring));
    if (j->ring == NULL)
        return LST_ERR_NOMEM;
    if (pthread_mutex_init(&j->lock, NULL) != 0) {
        free(j->ring);
        j->ring = NULL;
        return LST_ERR_NOMEM;
    }
    return LST_OK;
}

void sim_journal_cleanup(struct sim_journal *j)
{
    if (j->ring == NULL)
        return;
    pthread_mutex_destroy(&j->lock);
    free(j->ring);
    j->ring = NULL;
}

void sim_journal_reset(struct sim_journal *j)
{
    pthread_mutex_lock(&j->lock);
    memset(j->ring, 0, j->cap * sizeof(*j->ring));
    j->next_seq = 1;
    pthread_mutex_unlock(&j->lock);
}

void sim_journal_add(struct sim_journal *j, struct sim_journal_entry *e)
{
    pthread_mutex_lock(&j->lock);
    e->seq = j->next_seq++;
    j->ring[(e->seq - 1) % j->cap] = *e;
    pthread_mutex_unlock(&j->lock);
}

static void entry_json(const struct sim_journal_entry *e, struct lst_buf *out)
{
    lst_buf_printf(out, "{\"seq\":%llu,\"timeMs\":%lld,\"method\":", (unsigned long long)e->seq,
                   (long long)e->time_ms);
    lst_buf_json_str(out, e->method, strlen(e->method));
    lst_buf_puts(out, ",\"endpoint\":");
    lst_buf_json_str(out, e->endpoint, strlen(e->endpoint));
    lst_buf_printf(out, ",\"status\":%d,\"fault\":\"%s\",\"requestId\":", e->status, e->fault);
    if (e->request_id[0] != '\0')
        lst_buf_json_str(out, e->request_id, strlen(e->request_id));
    else
        lst_buf_puts(out, "null");
    if (e->to[0] != '\0')
        lst_buf_printf(out, ",\"to\":\"%s\"", e->to);
    if (e->message_id[0] != '\0')
        lst_buf_printf(out, ",\"messageId\":\"%s\"", e->message_id);
    lst_buf_puts(out, "}");
}

void sim_journal_json(struct sim_journal *j, uint64_t since, size_t limit, struct lst_buf *out)
{
    pthread_mutex_lock(&j->lock);
    uint64_t last = j->next_seq - 1;
    uint64_t first = last > j->cap ? last - j->cap + 1 : 1;
    if (since + 1 > first)
        first = since + 1;
    lst_buf_printf(out, "{\"first\":%llu,\"last\":%llu,\"entries\":[", (unsigned long long)first,
                   (unsigned long long)last);
    size_t n = 0;
    for (uint64_t s = first; s <= last && n < limit; s++, n++) {
        if (n > 0)
            lst_buf_puts(out, ",");
        entry_json(&j->ring[(s - 1) % j->cap], out);
    }
    pthread_mutex_unlock(&j->lock);
    lst_buf_puts(out, "]}");
}
