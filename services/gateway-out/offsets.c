/* Per-partition completion watermarks. Lanes finish records out of order (different
 * employees, retries), but an offset may only be stored when every record below it of the same
 * partition is finished, or a crash would skip the unfinished ones. Each partition keeps the
 * records dispatched, in offset order, in a ring; the finished prefix is dropped and one past
 * its last offset is what may be stored. Only the poll thread uses this. */
#include <stdlib.h>
#include <string.h>

#include "gateway_out.h"

struct entry {
    struct go_job *job; /* NULL once finished */
    int64_t offset;
    enum go_job_state state;
};

struct part {
    struct entry *ring;
    size_t cap, head, n;
    uint64_t gen;
    size_t pending; /* entries not finished */
};

struct go_offsets {
    struct part *parts;
    int32_t nparts;
};

lst_err go_offsets_create(struct go_offsets **out)
{
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? LST_OK : LST_ERR_NOMEM;
}

void go_offsets_destroy(struct go_offsets *o)
{
    if (o == NULL)
        return;
    for (int32_t i = 0; i < o->nparts; i++)
        free(o->parts[i].ring);
    free(o->parts);
    free(o);
}

static struct part *part_get(struct go_offsets *o, int32_t p, bool create)
{
    if (p < 0)
        return NULL;
    if (p >= o->nparts) {
        if (!create)
            return NULL;
        struct part *np = realloc(o->parts, (size_t)(p + 1) * sizeof(*np));
        if (np == NULL)
            return NULL;
        memset(np + o->nparts, 0, (size_t)(p + 1 - o->nparts) * sizeof(*np));
        o->parts = np;
        o->nparts = p + 1;
    }
    return &o->parts[p];
}

static struct entry *at(struct part *pt, size_t i)
{
    return &pt->ring[(pt->head + i) % pt->cap];
}

static lst_err grow(struct part *pt)
{
    size_t ncap = pt->cap ? pt->cap * 2 : 64;
    struct entry *nr = malloc(ncap * sizeof(*nr));
    if (nr == NULL)
        return LST_ERR_NOMEM;
    for (size_t i = 0; i < pt->n; i++)
        nr[i] = *at(pt, i);
    free(pt->ring);
    pt->ring = nr;
    pt->cap = ncap;
    pt->head = 0;
    return LST_OK;
}

lst_err go_offsets_add(struct go_offsets *o, struct go_job *j)
{
    struct part *pt = part_get(o, j->partition, true);
    if (pt == NULL)
        return LST_ERR_NOMEM;
    if (pt->n == pt->cap && grow(pt) != LST_OK)
        return LST_ERR_NOMEM;
    struct entry *e = &pt->ring[(pt->head + pt->n) % pt->cap];
    e->job = j;
    e->offset = j->offset;
    e->state = GO_JOB_QUEUED;
    pt->n++;
    pt->pending++;
    j->gen = pt->gen;
    return LST_OK;
}

/* Binary search: offsets in the ring ascend. */
static struct entry *find(struct part *pt, int64_t offset)
{
    size_t lo = 0, hi = pt->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct entry *e = at(pt, mid);
        if (e->offset == offset)
            return e;
        if (e->offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void go_offsets_finish(struct go_offsets *o, const struct go_job *j)
{
    struct part *pt = part_get(o, j->partition, false);
    if (pt == NULL || j->gen != pt->gen)
        return; /* revoked meanwhile: the partition's new life does not know this job */
    struct entry *e = find(pt, j->offset);
    if (e == NULL || e->job != j)
        return;
    e->job = NULL;
    e->state = j->state;
    pt->pending--;
}

int64_t go_offsets_advance(struct go_offsets *o, int32_t p)
{
    struct part *pt = part_get(o, p, false);
    int64_t next = -1;
    if (pt == NULL)
        return -1;
    while (pt->n > 0) {
        struct entry *e = at(pt, 0);
        if (e->state != GO_JOB_DONE)
            break;
        next = e->offset + 1;
        pt->head = (pt->head + 1) % pt->cap;
        pt->n--;
    }
    return next;
}

size_t go_offsets_pending(const struct go_offsets *o, int32_t p)
{
    if (p < 0 || p >= o->nparts)
        return 0;
    return o->parts[p].pending;
}

void go_offsets_each_pending(struct go_offsets *o, int32_t p, void (*fn)(struct go_job *, void *),
                             void *ud)
{
    struct part *pt = part_get(o, p, false);
    if (pt == NULL)
        return;
    for (size_t i = 0; i < pt->n; i++) {
        struct entry *e = at(pt, i);
        if (e->job != NULL)
            fn(e->job, ud);
    }
}

void go_offsets_reset(struct go_offsets *o, int32_t p)
{
    struct part *pt = part_get(o, p, false);
    if (pt == NULL)
        return;
    pt->n = 0;
    pt->head = 0;
    pt->pending = 0;
    pt->gen++;
}

uint64_t go_offsets_gen(const struct go_offsets *o, int32_t p)
{
    if (p < 0 || p >= o->nparts)
        return 0;
    return o->parts[p].gen;
}

int32_t go_offsets_npart(const struct go_offsets *o)
{
    return o->nparts;
}
