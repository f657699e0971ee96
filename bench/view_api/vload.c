/* The benchmark's loader (vload.h). Sorted-set entries of CHUNK messages are collected and
 * written with one ZADD per key, so a chunk costs a few thousand commands instead of ~100
 * per message; hashes and strings are written per message. Replies are read per chunk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vload.h"

#define P        "lst:lg:"
#define CHUNK    1000
#define MAX_ARGS 512

struct zent {
    size_t key, member; /* offsets into the arena */
    int64_t score;
    const char *k, *m; /* resolved before sorting */
};

struct rr_ent {
    char mid[27];
    int64_t mt;
    int64_t readers; /* of the whole message */
    bool mine;       /* this employee read it */
};

struct rr_ring {
    struct rr_ent *dl, *rd;
    size_t ndl, nrd; /* entries held (at most rrn, oldest first) */
};

struct credit {
    int64_t day;
    char field[96];
    int64_t n;
};

struct vb_loader {
    redisContext *rc;
    const struct vb_dir *d;
    int rrn;
    bool tags;
    struct lst_buf arena;
    struct zent *z;
    size_t nz, capz;
    size_t msgs, pending;
    struct credit *cr;
    size_t ncr, capcr;
    struct rr_ring *rr;
    struct lst_strv cats;
    char ver[24]; /* m:<id>.v of every hash it writes: one value of the ledger's counter */
    lst_err err;
};

/* ---- output ---- */

static void append(struct vb_loader *l, int argc, const char **argv, const size_t *len)
{
    if (l->err == LST_OK && redisAppendCommandArgv(l->rc, argc, argv, len) != REDIS_OK)
        l->err = LST_ERR_REDIS;
    l->pending++;
}

static lst_err drain(struct vb_loader *l)
{
    for (; l->pending > 0; l->pending--) {
        void *r = NULL;
        if (l->err == LST_OK && redisGetReply(l->rc, &r) != REDIS_OK)
            l->err = LST_ERR_REDIS;
        redisReply *rep = r;
        if (rep != NULL && rep->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "vload: %s\n", rep->str);
            l->err = LST_ERR_REDIS;
        }
        freeReplyObject(rep);
    }
    return l->err;
}

/* argv of strings (lengths by strlen). */
static void cmdv(struct vb_loader *l, int argc, const char **argv)
{
    size_t len[MAX_ARGS];
    for (int i = 0; i < argc; i++)
        len[i] = strlen(argv[i]);
    append(l, argc, argv, len);
}

/* ---- sorted-set entries ---- */

static size_t stash(struct vb_loader *l, const char *s)
{
    size_t at = l->arena.len;
    lst_buf_append(&l->arena, s, strlen(s) + 1);
    return at;
}

static void zent(struct vb_loader *l, const char *key, int64_t score, const char *member)
{
    if (l->nz == l->capz) {
        size_t cap = l->capz ? 2 * l->capz : 65536;
        struct zent *z = realloc(l->z, cap * sizeof(*z));
        if (z == NULL) {
            l->err = LST_ERR_NOMEM;
            return;
        }
        l->z = z;
        l->capz = cap;
    }
    l->z[l->nz].key = stash(l, key);
    l->z[l->nz].member = stash(l, member);
    l->z[l->nz].score = score;
    l->nz++;
}

static int zcmp(const void *a, const void *b)
{
    const struct zent *x = a, *y = b;
    return strcmp(x->k, y->k);
}

/* One ZADD per key with every entry of the chunk. */
static void write_zsets(struct vb_loader *l)
{
    if (lst_buf_failed(&l->arena))
        l->err = LST_ERR_NOMEM;
    for (size_t i = 0; i < l->nz && l->err == LST_OK; i++) {
        l->z[i].k = l->arena.data + l->z[i].key;
        l->z[i].m = l->arena.data + l->z[i].member;
    }
    if (l->err == LST_OK)
        qsort(l->z, l->nz, sizeof(*l->z), zcmp);
    const char *argv[MAX_ARGS];
    size_t len[MAX_ARGS];
    char scores[MAX_ARGS][24];
    for (size_t i = 0; i < l->nz && l->err == LST_OK;) {
        int argc = 2;
        argv[0] = "ZADD";
        argv[1] = l->z[i].k;
        size_t j = i;
        for (; j < l->nz && argc + 2 <= MAX_ARGS && strcmp(l->z[j].k, l->z[i].k) == 0; j++) {
            snprintf(scores[argc], sizeof(scores[argc]), "%lld", (long long)l->z[j].score);
            argv[argc] = scores[argc];
            argc++;
            argv[argc++] = l->z[j].m;
        }
        for (int k = 0; k < argc; k++)
            len[k] = strlen(argv[k]);
        append(l, argc, argv, len);
        i = j;
    }
    l->nz = 0;
    lst_buf_reset(&l->arena);
}

/* ---- credits ---- */

static void credit(struct vb_loader *l, int64_t day, const char *field)
{
    for (size_t i = 0; i < l->ncr; i++) {
        if (l->cr[i].day == day && strcmp(l->cr[i].field, field) == 0) {
            l->cr[i].n++;
            return;
        }
    }
    if (l->ncr == l->capcr) {
        size_t cap = l->capcr ? 2 * l->capcr : 64;
        struct credit *c = realloc(l->cr, cap * sizeof(*c));
        if (c == NULL) {
            l->err = LST_ERR_NOMEM;
            return;
        }
        l->cr = c;
        l->capcr = cap;
    }
    struct credit *c = &l->cr[l->ncr++];
    c->day = day;
    snprintf(c->field, sizeof(c->field), "%s", field);
    c->n = 1;
}

static void write_credits(struct vb_loader *l)
{
    for (size_t i = 0; i < l->ncr; i++) {
        char key[64], n[24];
        snprintf(key, sizeof(key), P "cr:%lld", (long long)l->cr[i].day);
        snprintf(n, sizeof(n), "%lld", (long long)l->cr[i].n);
        const char *argv[] = {"HINCRBY", key, l->cr[i].field, n};
        cmdv(l, 4, argv);
    }
    l->ncr = 0;
}

static lst_err flush_chunk(struct vb_loader *l)
{
    write_zsets(l);
    write_credits(l);
    l->msgs = 0;
    return drain(l);
}

/* ---- one message ---- */

static const char *const STATES[] = {"queued",    "retrying", "failed",       "sent",
                                     "delivered", "read",     "acknowledged", "declined"};

struct counts {
    int64_t n[8];
    int64_t readers, live;
};

static size_t state_index(const char *st)
{
    for (size_t i = 0; i < LST_ARRAY_LEN(STATES); i++) {
        if (strcmp(STATES[i], st) == 0)
            return i;
    }
    return 0;
}

static void count(const struct vb_msg *m, struct counts *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t k = 0; k < m->n; k++)
        c->n[state_index(vb_rcpt_state(&m->r[k]))]++;
    c->readers = c->n[5] + c->n[6] + c->n[7];
    c->live = (int64_t)m->n - c->n[2];
}

static void json_list(struct lst_buf *b, const char *const *v, size_t n)
{
    lst_buf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            lst_buf_puts(b, ",");
        lst_buf_json_str(b, v[i], strlen(v[i]));
    }
    lst_buf_puts(b, "]");
}

/* The message hash as message.lua and the aggregates leave it. */
static void write_message_hash(struct vb_loader *l, const struct vb_msg *m, const struct counts *c)
{
    const char *argv[64];
    char key[64], at[24], n[24], idem[40], cnt[8][24];
    struct lst_buf sel, emps;
    const char *ids[VB_MAX_RCPT];
    int argc = 0;
    lst_buf_init(&sel);
    lst_buf_init(&emps);
    for (size_t k = 0; k < m->n; k++)
        ids[k] = l->d->e[m->r[k].emp].id;
    lst_buf_puts(&sel, "{\"departments\":");
    json_list(&sel, &m->sel_dep, m->sel_dep ? 1 : 0);
    lst_buf_puts(&sel, ",\"vehicles\":[],\"tags\":");
    json_list(&sel, &m->sel_tag, m->sel_tag ? 1 : 0);
    lst_buf_puts(&sel, "}");
    json_list(&emps, ids, m->sel_dep ? 0 : m->n);
    snprintf(key, sizeof(key), P "m:%s", m->mid);
    snprintf(at, sizeof(at), "%lld", (long long)m->at);
    snprintf(n, sizeof(n), "%zu", m->n);
    snprintf(idem, sizeof(idem), "idem-%s", m->mid);
    const char *fixed[] = {
        "HSET", key,     "msg",  "1",      "dir",        "out",     "id",        m->mid,
        "at",   at,      "cat",  m->cat,   "disp",       m->disp,   "disp_name", m->disp_name,
        "dep",  m->dep,  "idem", idem,     "created_at", at,        "kind",      "text",
        "text", m->text, "sel",  sel.data, "sel_emps",   emps.data, "audience",  n,
        "n",    n,       "v",    l->ver};
    for (size_t i = 0; i < LST_ARRAY_LEN(fixed); i++)
        argv[argc++] = fixed[i];
    char fields[8][24];
    for (size_t s = 0; s < LST_ARRAY_LEN(STATES); s++) {
        if (c->n[s] == 0)
            continue;
        snprintf(fields[s], sizeof(fields[s]), "s:%s", STATES[s]);
        snprintf(cnt[s], sizeof(cnt[s]), "%lld", (long long)c->n[s]);
        argv[argc++] = fields[s];
        argv[argc++] = cnt[s];
    }
    cmdv(l, argc, argv);
    lst_buf_cleanup(&sel);
    lst_buf_cleanup(&emps);
}

static void put_int(struct lst_buf *b, const char *k, int64_t v)
{
    if (v != 0)
        lst_buf_printf(b, ",\"%s\":%lld", k, (long long)v);
}

/* The state JSON exactly as the ledger's senc() writes it: st, the integers in the order
 * q w f s d r a x fat fh att dup ff cr, then the strings tm tid fc fr. */
static void state_json(const struct vb_emp *e, const struct vb_rcpt *r, struct lst_buf *b)
{
    lst_buf_reset(b);
    lst_buf_printf(b, "{\"st\":\"%s\"", vb_rcpt_state(r));
    put_int(b, "q", r->q);
    put_int(b, "f", r->f);
    put_int(b, "s", r->s);
    put_int(b, "d", r->d);
    put_int(b, "r", r->r);
    put_int(b, "a", r->a);
    put_int(b, "x", r->x);
    if (r->failed) {
        put_int(b, "fat", r->f);
        put_int(b, "fh", 404);
    }
    put_int(b, "att", 1);
    if (r->failed)
        put_int(b, "ff", 1);
    else
        put_int(b, "cr", 1);
    if (!r->failed) {
        lst_buf_printf(b, ",\"tm\":\"%s\"", r->tmid);
        if (e->tid != NULL)
            lst_buf_printf(b, ",\"tid\":\"%s\"", e->tid);
    } else {
        lst_buf_puts(b, ",\"fc\":\"http_404\",\"fr\":\"the recipient is unknown\"");
    }
    lst_buf_puts(b, "}");
}

static void write_recipients(struct vb_loader *l, const struct vb_msg *m)
{
    const char *argv[2 + 2 * VB_MAX_RCPT];
    struct lst_buf st[VB_MAX_RCPT];
    char rkey[64], tkey[48], tval[48];
    int argc = 2;
    snprintf(rkey, sizeof(rkey), P "r:%s", m->mid);
    argv[0] = "HSET";
    argv[1] = rkey;
    for (size_t k = 0; k < m->n; k++) {
        const struct vb_emp *e = &l->d->e[m->r[k].emp];
        lst_buf_init(&st[k]);
        state_json(e, &m->r[k], &st[k]);
        argv[argc++] = e->id;
        argv[argc++] = st[k].data;
        if (m->r[k].failed)
            continue;
        /* t:<last five characters of the ID> (prelude.lua's tkey) */
        size_t tl = strlen(m->r[k].tmid);
        snprintf(tkey, sizeof(tkey), P "t:%s", m->r[k].tmid + (tl > 5 ? tl - 5 : 0));
        snprintf(tval, sizeof(tval), "%s %s", m->mid, e->id);
        const char *targv[] = {"HSET", tkey, m->r[k].tmid, tval};
        cmdv(l, 4, targv);
    }
    cmdv(l, argc, argv);
    for (size_t k = 0; k < m->n; k++)
        lst_buf_cleanup(&st[k]);
}

/* x:<dim> and xc:<cat>:<dim> for every distinct dim of the message. */
static void index_all(struct vb_loader *l, const struct vb_msg *m, const struct lst_strv *dims)
{
    char key[256];
    for (size_t i = 0; i < dims->len; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(dims->items[i], dims->items[j]) == 0;
        if (seen)
            continue;
        snprintf(key, sizeof(key), P "x:%s", dims->items[i]);
        zent(l, key, m->at, m->mid);
        /* no per-category copies of employee and vehicle histories (prelude.lua's NOCAT) */
        if (strncmp(dims->items[i], "emp:", 4) == 0 || strncmp(dims->items[i], "veh:", 4) == 0)
            continue;
        snprintf(key, sizeof(key), P "xc:%s:%s", m->cat, dims->items[i]);
        zent(l, key, m->at, m->mid);
    }
}

static void dim(struct lst_strv *dims, const char *name, const char *v)
{
    char d[256];
    if (v == NULL)
        return;
    snprintf(d, sizeof(d), "%s:%s", name, v);
    lst_strv_push(dims, d);
}

static void write_indexes(struct vb_loader *l, const struct vb_msg *m, const struct counts *c)
{
    struct lst_strv dims = {0};
    lst_strv_push(&dims, "all");
    dim(&dims, "dir", "out");
    dim(&dims, "kind", "text");
    dim(&dims, "disp", m->disp);
    dim(&dims, "dep", m->sel_dep);
    if (l->tags)
        dim(&dims, "tag", m->sel_tag);
    for (size_t k = 0; k < m->n; k++) {
        const struct vb_emp *e = &l->d->e[m->r[k].emp];
        dim(&dims, "emp", e->id);
        dim(&dims, "dep", e->dep);
        dim(&dims, "veh", e->veh);
        for (size_t t = 0; l->tags && t < e->tags.len; t++)
            dim(&dims, "tag", e->tags.items[t]);
    }
    if (c->n[2] > 0)
        dim(&dims, "st", "failed");
    if (c->readers < c->live)
        dim(&dims, "st", "unread");
    if (c->n[4] + c->readers < c->live)
        dim(&dims, "st", "undelivered");
    index_all(l, m, &dims);
    lst_strv_cleanup(&dims);
}

static void note_credits(struct vb_loader *l, const struct vb_msg *m)
{
    char f[96];
    for (size_t k = 0; k < m->n; k++) {
        if (m->r[k].failed)
            continue;
        int64_t day = m->r[k].s / 86400000;
        credit(l, day, "all");
        snprintf(f, sizeof(f), "disp:%s", m->disp);
        credit(l, day, f);
        snprintf(f, sizeof(f), "dep:%s", m->dep);
        credit(l, day, f);
    }
}

/* The newest rrn entries, oldest first. */
static void ring_push(struct rr_ent *ring, size_t *n, int rrn, const struct rr_ent *e)
{
    if (*n == (size_t)rrn) {
        memmove(ring, ring + 1, (size_t)(rrn - 1) * sizeof(*ring));
        (*n)--;
    }
    ring[(*n)++] = *e;
}

static void note_receipts(struct vb_loader *l, const struct vb_msg *m, const struct counts *c)
{
    for (size_t k = 0; l->rrn > 0 && k < m->n; k++) {
        const struct vb_rcpt *r = &m->r[k];
        struct rr_ring *ring = &l->rr[r->emp];
        struct rr_ent e = {.mt = m->at, .readers = c->readers};
        memcpy(e.mid, m->mid, sizeof(e.mid));
        e.mine = r->r || r->a || r->x;
        if (r->d || e.mine)
            ring_push(ring->dl, &ring->ndl, l->rrn, &e);
        if (e.mine)
            ring_push(ring->rd, &ring->nrd, l->rrn, &e);
    }
}

static void note_cat(struct vb_loader *l, const char *cat)
{
    for (size_t i = 0; i < l->cats.len; i++) {
        if (strcmp(l->cats.items[i], cat) == 0)
            return;
    }
    lst_strv_push(&l->cats, cat);
}

lst_err vb_loader_add(struct vb_loader *l, const struct vb_msg *m)
{
    struct counts c;
    count(m, &c);
    note_cat(l, m->cat);
    write_message_hash(l, m, &c);
    write_recipients(l, m);
    write_indexes(l, m, &c);
    note_credits(l, m);
    note_receipts(l, m, &c);
    if (++l->msgs >= CHUNK)
        return flush_chunk(l);
    return l->err;
}

/* ---- the end: read-receipt evidence, categories ---- */

static void write_ring(struct vb_loader *l, const char *key, const struct rr_ent *e, size_t n)
{
    const char *argv[2 + 2 * 64];
    char sc[64][24];
    int argc = 2;
    argv[0] = "ZADD";
    argv[1] = key;
    for (size_t i = 0; i < n && i < 64; i++) {
        snprintf(sc[i], sizeof(sc[i]), "%lld", (long long)e[i].mt);
        argv[argc++] = sc[i];
        argv[argc++] = e[i].mid;
    }
    if (n > 0)
        cmdv(l, argc, argv);
}

/* rroff: the rrn newest delivered hold none the employee read, someone else read one. */
static bool rr_off(const struct rr_ring *r, int rrn)
{
    bool others = false;
    if (r->ndl < (size_t)rrn)
        return false;
    for (size_t i = 0; i < r->ndl; i++) {
        if (r->dl[i].mine)
            return false;
        others = others || r->dl[i].readers > 0;
    }
    return others;
}

lst_err vb_loader_finish(struct vb_loader *l)
{
    char key[128];
    flush_chunk(l);
    for (size_t i = 0; l->rrn > 0 && i < l->d->n; i++) {
        const struct rr_ring *r = &l->rr[i];
        snprintf(key, sizeof(key), P "e:%s:dl", l->d->e[i].id);
        write_ring(l, key, r->dl, r->ndl);
        snprintf(key, sizeof(key), P "e:%s:rd", l->d->e[i].id);
        write_ring(l, key, r->rd, r->nrd);
        if (rr_off(r, l->rrn)) {
            const char *argv[] = {"SADD", P "rroff", l->d->e[i].id};
            cmdv(l, 3, argv);
        }
    }
    for (size_t i = 0; i < l->cats.len; i++) {
        const char *argv[] = {"SADD", P "cats", l->cats.items[i]};
        cmdv(l, 3, argv);
    }
    return drain(l);
}

/* The item version the loader writes, from the ledger's counter lst:mver as the ledger's
 * scripts take it (prelude.lua: a fresh counter starts at the time in microseconds), so a
 * loaded row never reuses a version a view API may have cached. */
static bool take_version(struct vb_loader *l)
{
    redisReply *r = redisCommand(l->rc, "INCR lst:mver");
    long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r != NULL)
        freeReplyObject(r);
    if (v == 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        r = redisCommand(l->rc, "SET lst:mver %lld", v);
        if (r != NULL)
            freeReplyObject(r);
    }
    snprintf(l->ver, sizeof(l->ver), "%lld", v);
    return v > 0;
}

lst_err vb_loader_create(redisContext *rc, const struct vb_dir *d, int rrn, bool tag_index,
                         struct vb_loader **out)
{
    struct vb_loader *l = calloc(1, sizeof(*l));
    lst_err err = LST_ERR_NOMEM;
    if (l == NULL || rrn < 0 || rrn > 64)
        goto out;
    l->rc = rc;
    l->d = d;
    l->rrn = rrn;
    l->tags = tag_index;
    lst_buf_init(&l->arena);
    if (!take_version(l))
        goto out;
    l->rr = calloc(d->n ? d->n : 1, sizeof(*l->rr));
    if (l->rr == NULL)
        goto out;
    for (size_t i = 0; i < d->n; i++) {
        l->rr[i].dl = calloc((size_t)rrn + 1, sizeof(struct rr_ent));
        l->rr[i].rd = calloc((size_t)rrn + 1, sizeof(struct rr_ent));
        if (l->rr[i].dl == NULL || l->rr[i].rd == NULL)
            goto out;
    }
    *out = l;
    l = NULL;
    err = LST_OK;
out:
    vb_loader_destroy(l);
    return err;
}

void vb_loader_destroy(struct vb_loader *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; l->rr != NULL && i < l->d->n; i++) {
        free(l->rr[i].dl);
        free(l->rr[i].rd);
    }
    free(l->rr);
    free(l->z);
    free(l->cr);
    lst_buf_cleanup(&l->arena);
    lst_strv_cleanup(&l->cats);
    free(l);
}
