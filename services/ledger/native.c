/* Message records, receipts, outbound records and accepted sends merged in C (docs/ledger.md,
 * "Receipts and sends in C", "Message records in C").
 *
 * In the script these records cost Redis 7-42 µs each, of which the commands themselves were
 * about a third: the rest is Lua and its redis.call glue. Here the same merge runs in the
 * ledger, on the same keys, byte for byte the same values, as one optimistic transaction per
 * batch:
 *
 *   round 1  WATCH the watermarks, the refill markers and lst:lg-gen; read the watermarks, the
 *            markers and the t: entries of every Threema message ID;
 *   round 2  read the messages (m:), their recipients' states (r:), held receipts (h:), who is
 *            erased or in rroff, known Threema IDs, incoming messages a new recipient's send
 *            could be the reply link of, for message records the directory entries of their
 *            recipients, and take a block of item versions;
 *   compute  every event in order behind its watermark gate, over an in-memory overlay (several
 *            records of one message or driver in a batch see each other, as MCACHE does);
 *            what only the script can do is deferred, with the rest of its partition;
 *   round 3  MULTI, the writes, the watermarks, one call of the ledger's script (the deferred
 *            events, then the read-receipt rule as kind LEDGER_S_RR: it reads the final data),
 *            EXEC.
 *
 * Every other writer of what a batch reads advances a watermark or lst:lg-gen in the same
 * atomic step, so EXEC fails exactly when another writer (a second ledger) may have changed
 * it; the batch is then read and merged again, and its events are mostly behind the watermarks
 * by then. A broken connection drops the WATCH with it, so rounds 2 and 3 run only on the
 * connection of round 1 (lst_redis_pipe_exec_once), and a failure leaves the events to the
 * reassignment, as for the scripts. What the scripts and this file write must stay identical:
 * test_ledger_scripts runs its scenarios both ways and compares the canonical dumps. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "ledger.h"
#include "lst/log.h"

#define ATTEMPTS 8 /* transactions a batch tries before the records are left to a reassignment */

/* ---- a batch's strings: blocks that never move, rewound per attempt ----------------------- */

#define ARENA_BLOCK 65536

struct narena {
    char **blocks;
    size_t nblocks, cur, used; /* the block in use and its fill */
};

static void arena_rewind(struct narena *a)
{
    a->cur = 0;
    a->used = 0;
}

static void arena_free(struct narena *a)
{
    for (size_t i = 0; i < a->nblocks; i++)
        free(a->blocks[i]);
    free(a->blocks);
    memset(a, 0, sizeof(*a));
}

/* A NUL-terminated copy of s[0..len) that lives until the arena is rewound; NULL: no memory. */
static char *arena_dup(struct narena *a, const char *s, size_t len)
{
    if (len + 1 > ARENA_BLOCK)
        return NULL; /* no key or ID is near this long */
    if (a->nblocks == 0 || a->used + len + 1 > ARENA_BLOCK) {
        if (a->nblocks > 0 && a->used > 0)
            a->cur++;
        a->used = 0;
        if (a->cur == a->nblocks) {
            char **b = realloc(a->blocks, (a->nblocks + 1) * sizeof(*b));
            if (b == NULL)
                return NULL;
            a->blocks = b;
            if ((b[a->nblocks] = malloc(ARENA_BLOCK)) == NULL)
                return NULL;
            a->nblocks++;
        }
    }
    char *d = a->blocks[a->cur] + a->used;
    memcpy(d, s, len);
    d[len] = '\0';
    a->used += len + 1;
    return d;
}

/* ---- small string index: key -> dense number ------------------------------------------- */

static char *ndup(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

struct nindex {
    char **keys;
    size_t n, cap;
    uint32_t *slots; /* number + 1; 0: empty */
    size_t scap;
    struct narena *arena; /* where the keys live; NULL: malloc'ed each */
};

static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

static void nindex_reset(struct nindex *ix)
{
    for (size_t i = 0; i < ix->n && ix->arena == NULL; i++)
        free(ix->keys[i]);
    ix->n = 0;
    if (ix->slots != NULL)
        memset(ix->slots, 0, ix->scap * sizeof(*ix->slots));
}

static void nindex_free(struct nindex *ix)
{
    nindex_reset(ix);
    free(ix->keys);
    free(ix->slots);
    memset(ix, 0, sizeof(*ix));
}

static bool nindex_rehash(struct nindex *ix)
{
    size_t scap = ix->scap ? ix->scap * 2 : 256;
    uint32_t *slots = calloc(scap, sizeof(*slots));
    if (slots == NULL)
        return false;
    for (size_t i = 0; i < ix->n; i++) {
        size_t at = hash(ix->keys[i], strlen(ix->keys[i])) & (scap - 1);
        while (slots[at] != 0)
            at = (at + 1) & (scap - 1);
        slots[at] = (uint32_t)i + 1;
    }
    free(ix->slots);
    ix->slots = slots;
    ix->scap = scap;
    return true;
}

/* The number of key[0..len), added when absent (*added); SIZE_MAX without memory. */
static size_t nindex_get(struct nindex *ix, const char *key, size_t len, bool *added)
{
    *added = false;
    if ((ix->n + 1) * 2 > ix->scap && !nindex_rehash(ix))
        return SIZE_MAX;
    size_t at = hash(key, len) & (ix->scap - 1);
    while (ix->slots[at] != 0) {
        const char *k = ix->keys[ix->slots[at] - 1];
        if (strncmp(k, key, len) == 0 && k[len] == '\0')
            return ix->slots[at] - 1;
        at = (at + 1) & (ix->scap - 1);
    }
    if (ix->n == ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 128;
        char **keys = realloc(ix->keys, cap * sizeof(*keys));
        if (keys == NULL)
            return SIZE_MAX;
        ix->keys = keys;
        ix->cap = cap;
    }
    char *copy = ix->arena != NULL ? arena_dup(ix->arena, key, len) : ndup(key, len);
    if (copy == NULL)
        return SIZE_MAX;
    ix->keys[ix->n] = copy;
    ix->slots[at] = (uint32_t)ix->n + 1;
    *added = true;
    return ix->n++;
}

/* The number of key, or SIZE_MAX when absent. */
static size_t nindex_find(const struct nindex *ix, const char *key)
{
    if (ix->scap == 0)
        return SIZE_MAX;
    size_t len = strlen(key);
    size_t at = hash(key, len) & (ix->scap - 1);
    while (ix->slots[at] != 0) {
        if (strcmp(ix->keys[ix->slots[at] - 1], key) == 0)
            return ix->slots[at] - 1;
        at = (at + 1) & (ix->scap - 1);
    }
    return SIZE_MAX;
}

/* Grows a vector of elements of size sz to hold at least n. */
static bool vgrow(void **v, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap)
        return true;
    size_t c = *cap ? *cap : 64;
    while (c < n)
        c *= 2;
    void *p = realloc(*v, c * sz);
    if (p == NULL)
        return false;
    memset((char *)p + *cap * sz, 0, (c - *cap) * sz);
    *v = p;
    *cap = c;
    return true;
}

/* ---- the recipient state of prelude.lua (STEPS, INTS, STRS, senc, state_of) ------------- */

enum { K_Q, K_W, K_F, K_S, K_D, K_R, K_A, K_X, K_FAT, K_FH, K_ATT, K_DUP, K_FF, K_CR, NINT };
static const char *const int_key[NINT] = {"q", "w",   "f",  "s",   "d",   "r",  "a",
                                          "x", "fat", "fh", "att", "dup", "ff", "cr"};
/* The string fields, after every integer in senc's output (tm, tid, fc, fr). */
static const char *const str_key[] = {",\"tm\":", ",\"tid\":", ",\"fc\":", ",\"fr\":"};

/* States in the order of the counts in m:<mid> (index 0 is the count n of recipients). */
enum {
    ST_NONE = 0,
    ST_QUEUED,
    ST_RETRYING,
    ST_FAILED,
    ST_SENT,
    ST_DELIVERED,
    ST_READ,
    ST_ACK,
    ST_DECLINED,
    NCOUNT
};
static const char *const st_name[NCOUNT] = {
    "", "queued", "retrying", "failed", "sent", "delivered", "read", "acknowledged", "declined"};
static const char *const count_field[NCOUNT] = {"n",        "s:queued",       "s:retrying",
                                                "s:failed", "s:sent",         "s:delivered",
                                                "s:read",   "s:acknowledged", "s:declined"};

struct rstate {
    int64_t v[NINT];
    uint32_t has; /* bit per int_key */
    int st;
    const char *tail;     /* the raw from the first string field on (closing brace included) */
    const char *ftail;    /* the raw from the failure's fields (fc, fr) on; NULL: none */
    char *tm, *tid;       /* owned; NULL: absent */
    bool safe;            /* tm and tid need no escaping (plain_id) */
    bool strings_changed; /* tm or tid changed: encoded from tm and tid, not from tail */
};

#define HAS(s, k) (((s)->has >> (k)) & 1u)

/* Appends v in decimal: the encoder's hottest part, where printf cost more than the rest. */
static void put_i64(struct lst_buf *b, int64_t v)
{
    char d[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        d[sizeof(d) - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        d[sizeof(d) - 1 - n++] = '-';
    lst_buf_append(b, d + sizeof(d) - n, (size_t)n);
}

/* Appends the strings up to the first NULL. */
static void put_all(struct lst_buf *b, const char *const *parts)
{
    for (; *parts != NULL; parts++)
        lst_buf_puts(b, *parts);
}
#define PUT(b, ...) put_all((b), (const char *const[]){__VA_ARGS__, NULL})

static int state_of(const struct rstate *s)
{
    if (HAS(s, K_A) && HAS(s, K_X))
        return s->v[K_X] >= s->v[K_A] ? ST_DECLINED : ST_ACK;
    if (HAS(s, K_A))
        return ST_ACK;
    if (HAS(s, K_X))
        return ST_DECLINED;
    if (HAS(s, K_R))
        return ST_READ;
    if (HAS(s, K_D))
        return ST_DELIVERED;
    if (HAS(s, K_S))
        return ST_SENT;
    if (HAS(s, K_F))
        return ST_FAILED;
    if (HAS(s, K_W))
        return ST_RETRYING;
    return ST_QUEUED;
}

/* A value JSON writes as it is, in quotes: Threema IDs and message IDs. The scripts write
 * strings with cjson, which escapes '/' among others; values outside this set go to the
 * script instead. */
static bool plain_id(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              ch == '*'))
            return false;
    }
    return len > 0;
}

static int64_t ulid_ms(const char *id)
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    size_t len = strlen(id);
    int64_t t = 0;
    for (size_t i = 0; i < 10; i++) {
        /* a missing or foreign character counts as 0, as in prelude.lua */
        const char *p = i < len ? strchr(alphabet, id[i]) : NULL;
        t = t * 32 + (p != NULL ? p - alphabet : 0);
    }
    return t;
}

static bool is_reader(int st)
{
    return st == ST_READ || st == ST_ACK || st == ST_DECLINED;
}

static void state_locate(const char *raw, struct rstate *s);

/* The state's integers and name from raw (senc's output; the strings are kept as raw text,
 * so a merge that changes only times writes them back byte for byte as cjson wrote them). */
static bool state_parse(json_tokener *tok, struct narena *a, const char *raw, struct rstate *s)
{
    memset(s, 0, sizeof(*s));
    json_tokener_reset(tok);
    json_object *o = json_tokener_parse_ex(tok, raw, (int)strlen(raw));
    bool ok = o != NULL && json_object_is_type(o, json_type_object);
    if (ok) {
        json_object_object_foreach(o, key, val)
        {
            if (strcmp(key, "tm") == 0 || strcmp(key, "tid") == 0) {
                const char *v = json_object_get_string(val);
                char **to = key[1] == 'm' ? &s->tm : &s->tid;
                if (v != NULL && *to == NULL)
                    *to = arena_dup(a, v, strlen(v));
                continue;
            }
            if (strcmp(key, "st") == 0) {
                const char *name = json_object_get_string(val);
                for (int i = 1; i < NCOUNT && name != NULL; i++) {
                    if (strcmp(name, st_name[i]) == 0)
                        s->st = i;
                }
                continue;
            }
            for (int k = 0; k < NINT; k++) {
                if (strcmp(key, int_key[k]) == 0 && json_object_is_type(val, json_type_int)) {
                    s->v[k] = json_object_get_int64(val);
                    s->has |= 1u << k;
                }
            }
        }
    }
    ok = ok && s->st != ST_NONE;
    json_object_put(o);
    if (ok)
        state_locate(raw, s);
    return ok;
}

/* Where the string fields start in raw, and whether tm and tid are plain. */
static void state_locate(const char *raw, struct rstate *s)
{
    s->tail = s->ftail = NULL;
    for (size_t i = 0; i < LST_ARRAY_LEN(str_key); i++) {
        const char *at = strstr(raw, str_key[i]);
        if (at != NULL && (s->tail == NULL || at < s->tail))
            s->tail = at;
        if (at != NULL && i >= 2 && (s->ftail == NULL || at < s->ftail))
            s->ftail = at; /* fc and fr come after tm and tid, which are plain when safe */
    }
    s->safe = (s->tm == NULL || plain_id(s->tm, strlen(s->tm))) &&
              (s->tid == NULL || plain_id(s->tid, strlen(s->tid)));
}

/* ---- states the ledger wrote, parsed: most states a batch reads are ones it wrote before,
 * and json-c's parse was the largest part of the ledger's work between its round trips. The
 * same bytes parse the same, so a hit is exact; the cache only saves the parse. ---------------- */

#define CACHE_MAX 65536 /* states; emptied when full (the hot ones come back at once) */

struct centry {
    char *raw;
    struct rstate s; /* tm and tid owned; tail and ftail unused */
};

struct ncache {
    struct nindex keys; /* "<mid> <eid>" */
    struct centry *e;
    size_t cap;
};

static void cache_clear(struct ncache *c)
{
    for (size_t i = 0; i < c->keys.n; i++) {
        free(c->e[i].raw);
        free(c->e[i].s.tm);
        free(c->e[i].s.tid);
        memset(&c->e[i], 0, sizeof(c->e[i]));
    }
    nindex_reset(&c->keys);
}

/* The parsed state of raw under key when the ledger wrote exactly these bytes there last. */
static bool cache_get(const struct ncache *c, struct narena *a, const char *key, const char *raw,
                      struct rstate *s)
{
    size_t i = nindex_find(&c->keys, key);
    if (i == SIZE_MAX || strcmp(c->e[i].raw, raw) != 0)
        return false;
    *s = c->e[i].s;
    s->tm = s->tid = NULL;
    if ((c->e[i].s.tm != NULL &&
         (s->tm = arena_dup(a, c->e[i].s.tm, strlen(c->e[i].s.tm))) == NULL) ||
        (c->e[i].s.tid != NULL &&
         (s->tid = arena_dup(a, c->e[i].s.tid, strlen(c->e[i].s.tid))) == NULL)) {
        memset(s, 0, sizeof(*s));
        return false;
    }
    state_locate(raw, s);
    return true;
}

static void cache_put(struct ncache *c, const char *key, const char *raw, const struct rstate *s)
{
    bool added;
    if (c->keys.n >= CACHE_MAX && nindex_find(&c->keys, key) == SIZE_MAX)
        cache_clear(c);
    size_t i = nindex_get(&c->keys, key, strlen(key), &added);
    if (i == SIZE_MAX || !vgrow((void **)&c->e, &c->cap, c->keys.n, sizeof(*c->e)))
        return; /* no memory: the state is parsed next time */
    struct centry *e = &c->e[i];
    free(e->raw);
    free(e->s.tm);
    free(e->s.tid);
    e->s = *s;
    e->s.strings_changed = false;
    e->raw = lst_strdup(raw);
    e->s.tm = s->tm != NULL ? lst_strdup(s->tm) : NULL;
    e->s.tid = s->tid != NULL ? lst_strdup(s->tid) : NULL;
    if (e->raw == NULL || (s->tm != NULL && e->s.tm == NULL) ||
        (s->tid != NULL && e->s.tid == NULL)) {
        free(e->raw);
        e->raw = lst_strdup(""); /* never equal to a state: a miss */
    }
}

/* senc: {"st":"<name>","q":..,... in INTS's order, then the strings} */
static void state_encode(const struct rstate *s, struct lst_buf *out)
{
    lst_buf_reset(out);
    PUT(out, "{\"st\":\"", st_name[s->st], "\"");
    for (int k = 0; k < NINT; k++) {
        if (HAS(s, k)) {
            PUT(out, ",\"", int_key[k], "\":");
            put_i64(out, s->v[k]);
        }
    }
    if (!s->strings_changed) {
        lst_buf_puts(out, s->tail != NULL ? s->tail : "}");
        return;
    }
    if (s->tm != NULL)
        PUT(out, ",\"tm\":\"", s->tm, "\"");
    if (s->tid != NULL)
        PUT(out, ",\"tid\":\"", s->tid, "\"");
    lst_buf_puts(out, s->ftail != NULL ? s->ftail : "}");
}

/* ---- what one batch reads and changes ---------------------------------------------------- */

enum { R_DEFER = 2 }; /* an event's result: left to the script call in the transaction */

struct nev {     /* one record merged here */
    size_t done; /* its entry in the batch */
    enum ledger_script kind;
    size_t argfirst, argn; /* all its script arguments (header included) in in */
    size_t field_arg;      /* its watermark field: the argument in in */
    size_t field;          /* and its fields index (per attempt) */
    int64_t off, prev, at;
    int step;         /* receipt: K_D..K_X; -1: an unknown status (applied as a no-op) */
    size_t tm0, ntm;  /* its Threema message IDs: their arguments in evtm[tm0 ..] (sent: one) */
    size_t rcp_arg;   /* sent: "<mid> <eid>" in in */
    size_t tid_arg;   /* sent: its Threema ID in in; SIZE_MAX: none */
    size_t rcp;       /* sent: its recipient (per attempt) */
    int64_t dup, att; /* sent */
    bool replies;     /* sent: its recipient's incoming messages in the reply window after it */
    int result;       /* 1 applied, 0 applied before, -1 gap, -2 failed (why), R_DEFER */
    char *why;        /* the script's reason for a deferred event that failed (owned) */
    /* a message record (message.lua's arguments): its key/value pairs, the selector's
     * departments, vehicles and tags, the recipients; arguments in in */
    size_t kv0, nkv;                 /* the first key, the number of pairs */
    size_t cat, kind_arg, disp, dep; /* the values of those keys; SIZE_MAX: absent */
    size_t mid;                      /* its mids index (per attempt) */
    size_t sel0[3], nsel[3];         /* departments, vehicles, tags */
    size_t skip0, nskip;             /* the skipped employees: pairs (ID, reason) */
    size_t r0, nr;                   /* the recipients */
    size_t evr0;                     /* their recipients in evr (per attempt) */
};

struct nmsg { /* m:<mid> as load_msg reads it, and its counts as the batch moves them */
    bool msg;
    const char *cat, *disp, *dep, *at_s; /* in round 2's reply */
    int64_t c0[NCOUNT], c[NCOUNT];
    int64_t ver; /* 0: no count written */
    size_t *rcp; /* recipients of the batch (rcps index) */
    size_t nrcp, caprcp;
    /* a message record of the batch names it: round 2 reads every recipient state (credits
     * of sends before the record) and whether anything message.lua reads besides is there */
    bool record;
    bool annotated;   /* ann:, annh: or crx: exists: left to the script */
    size_t fresh;     /* 1 + the event that applied the record; 0: none */
    const char *only; /* the one recipient the item names (eid); NULL: none */
    const char *skp;  /* the skipped employees as skp's JSON; NULL: none */
};

struct nrcp { /* r:<mid> <eid> */
    size_t msg, emp;
    const char *raw0; /* as read (in round 2's reply); NULL: none */
    const char *raw;  /* current: raw0 or enc */
    char *enc;        /* the last encoding the batch made (owned) */
    struct rstate s;
    bool bad;    /* not a state the scripts wrote: the events naming it fail */
    bool unlist; /* a message record listed a recipient a send created: out of e:<eid>:out */
};

struct nemp {
    bool erased, rroff, dirty;
    struct lst_buf dl, rd; /* "score mid\n" lines to add to e:<eid>:dl / :rd */
    /* a recipient of a message record: her dimensions (emp_dims) and incoming messages */
    bool listed, odd;     /* odd: a directory entry emp_dims would read otherwise: script */
    int64_t lo, hi;       /* the reply windows of the batch's messages to her */
    const redisReply *in; /* e:<eid>:in over [lo, hi] WITHSCORES, the first IN_MAX */
    struct lst_buf dims;  /* "dep:<d>", "veh:<v>", "tag:<t>", each NUL-terminated */
};

struct nheld {       /* h:<tm> of an ID no send outcome mapped yet */
    int64_t h[4];    /* d r a x: earliest time, -1 none */
    uint8_t changed; /* bit per step */
};

struct ntm {           /* one Threema message ID's t: entry */
    const char *value; /* "<mid> <eid>", "-", or NULL (not mapped); in round 1's reply */
    size_t rcp;        /* SIZE_MAX: none */
    size_t held;       /* SIZE_MAX: none */
    bool map;          /* a send of the batch maps it now (HSET t:) */
    bool fold;         /* and folded its held receipts (DEL h:, ZREM hx) */
};

struct nixe { /* ZADD <ixkeys[key]> <score> <member> */
    size_t key;
    const char *score, *member;
};

struct ledger_native {
    struct ledger_args in; /* the events' strings: watermark fields and Threema IDs */
    struct nev *ev;
    size_t nev, capev;
    size_t *evtm; /* per event and ID: the ID's argument in in */
    size_t nevtm, capevtm;

    /* per batch application (reset for every attempt) */
    struct nindex fields, tms, mids, rcps, emps, tids;
    bool *tid_known; /* per tids: emp:tid:<tid> is set */
    size_t captid;
    bool *deferred;           /* per field: an event was left to the script, and so are the rest */
    int64_t *wm0, *wm, *mark; /* per field: read, running, refill marker (-1 none) */
    bool *wm_touched;
    size_t capf;
    struct ntm *tm;
    size_t captm;
    struct nmsg *msg;
    size_t capmsg;
    struct nrcp *rcp;
    size_t caprcp;
    struct nemp *emp;
    size_t capemp;
    struct nheld *held;
    size_t nheld, capheld;
    size_t *held_tm; /* tms index per held */
    size_t capheld_tm;
    size_t *evr; /* per message record and recipient: the rcps index (per attempt) */
    size_t nevr, capevr;
    size_t emps_read;           /* employees whose erased and rroff round 2 asked for */
    struct nindex ixkeys, cats; /* index keys the messages go into; their categories */
    struct nixe *ix;            /* the messages' index entries */
    size_t nix, capix;
    const char **ixlast; /* per ixkeys: the last member added (one ZADD pair per message) */
    size_t capixlast;
    struct lst_buf events; /* change stream entries "mid eid st\n", "mid\n" (a new message) */
    struct lst_buf firsts; /* "mid reader\n" */
    struct lst_buf credits;
    struct lst_buf outs; /* recipients new to e:<eid>:out, "<rcps index>\n" */
    struct lst_buf enc, key, why, num, sfx;
    struct ledger_args cmd;
    struct ncache *cache; /* shared by the pair of a core (ledger_native_create) */
    bool cache_owner;
    struct lst_redis_pipe *pipes[3]; /* one per round: rounds 1 and 2's replies stay readable */
    struct lst_redis_pipe *pipe;     /* the round's */
    struct narena arena;             /* the attempt's strings */
    bool nomem;                      /* the attempt ran out of memory */
    json_tokener *tok;
    bool any_erased, script_loaded;
    size_t script_at; /* the script call's reply in EXEC's; SIZE_MAX: none */
    int64_t window;   /* the reply window (LST_LEDGER_REPLY_WINDOW_MS) */
    int64_t ver_base, ver_seq;
    /* the batch's attempts: round 3 may be in flight between ledger_native_send and _recv */
    struct lst_redis *redis;
    unsigned long conn; /* the attempt's connection (its WATCH); 0: none yet */
    int tries;
    bool flying;
    lst_err err;
};

lst_err ledger_native_create(struct ledger_native **out, struct ledger_native *share)
{
    struct ledger_native *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return LST_ERR_NOMEM;
    n->cache = share != NULL ? share->cache : calloc(1, sizeof(*n->cache));
    n->cache_owner = share == NULL;
    if (n->cache == NULL) {
        free(n);
        return LST_ERR_NOMEM;
    }
    ledger_args_init(&n->in);
    ledger_args_init(&n->cmd);
    lst_buf_init(&n->events);
    lst_buf_init(&n->firsts);
    lst_buf_init(&n->credits);
    lst_buf_init(&n->outs);
    lst_buf_init(&n->enc);
    lst_buf_init(&n->key);
    lst_buf_init(&n->why);
    lst_buf_init(&n->num);
    lst_buf_init(&n->sfx);
    n->tok = json_tokener_new();
    lst_err err = n->tok != NULL ? LST_OK : LST_ERR_NOMEM;
    for (int i = 0; i < 3 && err == LST_OK; i++)
        err = lst_redis_pipe_create_once(&n->pipes[i]);
    n->pipe = n->pipes[0];
    struct nindex *ix[] = {&n->fields, &n->tms,  &n->mids,   &n->rcps,
                           &n->emps,   &n->tids, &n->ixkeys, &n->cats};
    for (size_t i = 0; i < LST_ARRAY_LEN(ix); i++)
        ix[i]->arena = &n->arena;
    if (err != LST_OK) {
        ledger_native_destroy(n);
        return err;
    }
    *out = n;
    return LST_OK;
}

static void clear_batch(struct ledger_native *n)
{
    for (size_t i = 0; i < n->mids.n; i++) {
        struct nmsg *m = &n->msg[i];
        free(m->rcp);
        memset(m, 0, sizeof(*m));
    }
    for (size_t i = 0; i < n->rcps.n; i++) {
        struct nrcp *r = &n->rcp[i];
        free(r->enc);
        memset(r, 0, sizeof(*r));
    }
    for (size_t i = 0; i < n->emps.n; i++) {
        lst_buf_cleanup(&n->emp[i].dl);
        lst_buf_cleanup(&n->emp[i].rd);
        lst_buf_cleanup(&n->emp[i].dims);
        memset(&n->emp[i], 0, sizeof(n->emp[i]));
    }
    for (size_t i = 0; i < n->tms.n; i++)
        memset(&n->tm[i], 0, sizeof(n->tm[i]));
    nindex_reset(&n->fields);
    nindex_reset(&n->tms);
    nindex_reset(&n->mids);
    nindex_reset(&n->rcps);
    nindex_reset(&n->emps);
    nindex_reset(&n->tids);
    nindex_reset(&n->ixkeys);
    nindex_reset(&n->cats);
    n->nix = 0;
    n->nevr = 0;
    n->nheld = 0;
    n->nomem = false;
    arena_rewind(&n->arena);
    lst_buf_reset(&n->events);
    lst_buf_reset(&n->firsts);
    lst_buf_reset(&n->credits);
    lst_buf_reset(&n->outs);
    n->ver_seq = 0;
}

void ledger_native_destroy(struct ledger_native *n)
{
    if (n == NULL)
        return;
    clear_batch(n);
    ledger_native_reset(n);
    if (n->cache_owner) {
        cache_clear(n->cache);
        nindex_free(&n->cache->keys);
        free(n->cache->e);
        free(n->cache);
    }
    nindex_free(&n->fields);
    nindex_free(&n->tms);
    nindex_free(&n->mids);
    nindex_free(&n->rcps);
    nindex_free(&n->emps);
    nindex_free(&n->tids);
    nindex_free(&n->ixkeys);
    nindex_free(&n->cats);
    free(n->evr);
    free(n->ix);
    free(n->ixlast);
    free(n->tid_known);
    free(n->deferred);
    free(n->wm0);
    free(n->wm);
    free(n->mark);
    free(n->wm_touched);
    free(n->tm);
    free(n->msg);
    free(n->rcp);
    free(n->emp);
    free(n->held);
    free(n->held_tm);
    free(n->ev);
    free(n->evtm);
    ledger_args_cleanup(&n->in);
    ledger_args_cleanup(&n->cmd);
    lst_buf_cleanup(&n->events);
    lst_buf_cleanup(&n->firsts);
    lst_buf_cleanup(&n->credits);
    lst_buf_cleanup(&n->outs);
    lst_buf_cleanup(&n->enc);
    lst_buf_cleanup(&n->key);
    lst_buf_cleanup(&n->why);
    lst_buf_cleanup(&n->num);
    lst_buf_cleanup(&n->sfx);
    for (int i = 0; i < 3; i++)
        lst_redis_pipe_destroy(n->pipes[i]);
    arena_free(&n->arena);
    if (n->tok != NULL)
        json_tokener_free(n->tok);
    free(n);
}

void ledger_native_reset(struct ledger_native *n)
{
    for (size_t i = 0; i < n->nev; i++) {
        free(n->ev[i].why);
        n->ev[i].why = NULL;
    }
    ledger_args_reset(&n->in);
    n->nev = 0;
    n->nevtm = 0;
}

size_t ledger_native_count(const struct ledger_native *n)
{
    return n->nev;
}

/* Argument i of a as a NUL-terminated copy in tmp (they are not terminated in the buffer). */
static const char *arg_str(const struct ledger_args *a, size_t i, struct lst_buf *tmp)
{
    lst_buf_reset(tmp);
    lst_buf_append(tmp, a->buf.data + a->off[i], a->len[i]);
    return tmp->data != NULL ? tmp->data : "";
}

static int64_t arg_i64(const struct ledger_args *a, size_t i, struct lst_buf *tmp)
{
    int64_t v = 0;
    if (lst_parse_i64(arg_str(a, i, tmp), INT64_MIN, INT64_MAX, &v) != LST_OK)
        return INT64_MIN;
    return v;
}

/* Whether argument i of a is the string s. */
static bool arg_is(const struct ledger_args *a, size_t i, const char *s)
{
    return a->len[i] == strlen(s) && memcmp(a->buf.data + a->off[i], s, a->len[i]) == 0;
}

/* sent.lua's arguments after the header: mid, eid, outcome, at, tm, tid, code, reason, final,
 * HTTP status, possible duplicate, attempts */
#define SENT_ARGS 12

/* Whether the event of kind at arguments [first, first + count) of a (epilogue.lua's header,
 * then the kind's arguments) is one C merges: every receipt and outbound record, an accepted
 * send with plain IDs, a message record parse_message takes. */
static bool takes(enum ledger_script kind, const struct ledger_args *a, size_t first, size_t count)
{
    if (kind == LEDGER_S_MESSAGE) /* parse_message decides */
        return count >= LEDGER_HEADER_ARGS + 3;
    if (kind == LEDGER_S_RECEIPT)
        return count >= LEDGER_HEADER_ARGS + 2;
    if (kind == LEDGER_S_OUTBOUND)
        return count == LEDGER_HEADER_ARGS + 3; /* mid, eid, created_at */
    if (kind != LEDGER_S_SENT || count != LEDGER_HEADER_ARGS + SENT_ARGS)
        return false;
    const char *buf = a->buf.data;
    size_t o = first + LEDGER_HEADER_ARGS;
    /* an accepted send with IDs JSON writes as they are; failures (free-text reasons) and
     * anything else stay with the script */
    return arg_is(a, o + 2, "accepted") && plain_id(buf + a->off[o + 4], a->len[o + 4]) &&
           (a->len[o + 5] == 0 || plain_id(buf + a->off[o + 5], a->len[o + 5]));
}

/* A count argument at i whose items fit before end. */
static bool arg_count(const struct ledger_args *a, size_t i, size_t end, size_t per, size_t *count,
                      struct lst_buf *tmp)
{
    int64_t v = i < end ? arg_i64(a, i, tmp) : -1;
    if (v < 0 || (uint64_t)v > (end - i - 1) / per)
        return false;
    *count = (size_t)v;
    return true;
}

/* A string cjson writes as it is between quotes: printable ASCII but '"', '\\' and '/'. */
static bool json_plain(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' || ch == '/')
            return false;
    }
    return true;
}

/* message.lua's arguments after the header: mid, created_at, the number of key/value pairs and
 * the pairs, the selector's departments, vehicles and tags (each a count, then the names), the
 * skipped employees (a count, then pairs), the recipients. C takes a record with a plain ID,
 * category, kind and dispatcher, whose skipped employees and reasons JSON writes as they are
 * (skp is JSON the script writes with cjson). */
static bool parse_message(struct ledger_native *n, struct nev *e, struct lst_buf *tmp)
{
    const struct ledger_args *a = &n->in;
    size_t o = e->argfirst + LEDGER_HEADER_ARGS, end = e->argfirst + e->argn, nskip = 0;
    e->at = arg_i64(a, o + 1, tmp);
    e->kv0 = o + 3;
    if (!plain_id(a->buf.data + a->off[o], a->len[o]) || a->len[o] < 10 || e->at == INT64_MIN ||
        !arg_count(a, o + 2, end, 2, &e->nkv, tmp))
        return false;
    e->cat = e->kind_arg = e->disp = e->dep = SIZE_MAX;
    for (size_t i = e->kv0; i < e->kv0 + 2 * e->nkv; i += 2) {
        size_t *which = arg_is(a, i, "cat")    ? &e->cat
                        : arg_is(a, i, "kind") ? &e->kind_arg
                        : arg_is(a, i, "disp") ? &e->disp
                        : arg_is(a, i, "dep")  ? &e->dep
                                               : NULL;
        if (which != NULL)
            *which = i + 1;
    }
    size_t i = e->kv0 + 2 * e->nkv;
    for (int d = 0; d < 3; d++) {
        if (!arg_count(a, i, end, 1, &e->nsel[d], tmp))
            return false;
        e->sel0[d] = i + 1;
        i += e->nsel[d] + 1;
    }
    if (!arg_count(a, i, end, 2, &nskip, tmp))
        return false;
    e->skip0 = i + 1;
    e->nskip = nskip;
    for (size_t k = e->skip0; k < e->skip0 + 2 * nskip; k++) {
        if (!json_plain(a->buf.data + a->off[k], a->len[k]))
            return false;
    }
    i += 2 * nskip;
    e->r0 = i + 1;
    e->nr = end - e->r0;
    return e->cat != SIZE_MAX && e->kind_arg != SIZE_MAX && e->disp != SIZE_MAX;
}

static bool parse_event(struct ledger_native *n, struct nev *e, struct lst_buf *tmp)
{
    const struct ledger_args *a = &n->in;
    size_t f = e->argfirst, o = f + LEDGER_HEADER_ARGS;
    e->field_arg = f + 1;
    e->off = arg_i64(a, f + 2, tmp);
    e->prev = arg_i64(a, f + 3, tmp);
    e->tm0 = n->nevtm;
    e->tid_arg = SIZE_MAX;
    if (e->kind == LEDGER_S_MESSAGE)
        return e->off != INT64_MIN && e->prev != INT64_MIN && parse_message(n, e, tmp);
    if (e->kind == LEDGER_S_RECEIPT) {
        int64_t status = arg_i64(a, o, tmp);
        e->step = status >= 1 && status <= 4 ? K_D + (int)status - 1 : -1;
        e->at = arg_i64(a, o + 1, tmp);
        for (size_t i = o + 2; i < f + e->argn; i++)
            n->evtm[n->nevtm++] = i;
    } else if (e->kind == LEDGER_S_OUTBOUND) {
        e->at = arg_i64(a, o + 2, tmp);
    } else {
        e->at = arg_i64(a, o + 3, tmp);
        n->evtm[n->nevtm++] = o + 4;
        e->tid_arg = a->len[o + 5] > 0 ? o + 5 : SIZE_MAX;
        e->dup = arg_i64(a, o + 10, tmp);
        e->att = arg_i64(a, o + 11, tmp);
    }
    if (e->kind != LEDGER_S_RECEIPT) {
        /* "<mid> <eid>", as t: maps a Threema message ID */
        e->rcp_arg = n->in.n;
        lst_buf_reset(tmp);
        lst_buf_append(tmp, a->buf.data + a->off[o], a->len[o]);
        lst_buf_puts(tmp, " ");
        lst_buf_append(tmp, a->buf.data + a->off[o + 1], a->len[o + 1]);
        if (ledger_args_add(&n->in, tmp->data, tmp->len) != LST_OK)
            return false;
    }
    e->ntm = n->nevtm - e->tm0;
    return e->off != INT64_MIN && e->at != INT64_MIN && e->prev != INT64_MIN &&
           (e->kind != LEDGER_S_SENT || (e->dup != INT64_MIN && e->att != INT64_MIN));
}

lst_err ledger_native_add(struct ledger_native *n, enum ledger_script kind,
                          const struct ledger_args *a, size_t first, size_t count, size_t done)
{
    struct lst_buf tmp;
    if (!takes(kind, a, first, count))
        return LST_ERR_INVALID;
    if (!vgrow((void **)&n->ev, &n->capev, n->nev + 1, sizeof(*n->ev)) ||
        !vgrow((void **)&n->evtm, &n->capevtm, n->nevtm + count, sizeof(*n->evtm)))
        return LST_ERR_NOMEM;
    struct nev *e = &n->ev[n->nev];
    memset(e, 0, sizeof(*e));
    e->done = done;
    e->kind = kind;
    e->argfirst = n->in.n;
    e->argn = count;
    for (size_t i = first; i < first + count; i++)
        ledger_args_add(&n->in, a->buf.data + a->off[i], a->len[i]);
    if (lst_buf_failed(&n->in.buf))
        return LST_ERR_NOMEM;
    lst_buf_init(&tmp);
    size_t tm0 = n->nevtm;
    bool ok = parse_event(n, e, &tmp);
    lst_err err = lst_buf_failed(&tmp) || lst_buf_failed(&n->in.buf) ? LST_ERR_NOMEM
                  : ok                                               ? LST_OK
                                                                     : LST_ERR_INVALID;
    lst_buf_cleanup(&tmp);
    if (err != LST_OK) {
        n->nevtm = tm0;
        return err;
    }
    n->nev++;
    return LST_OK;
}

/* ---- commands ------------------------------------------------------------------------------ */

static void cmd_begin(struct ledger_native *n, const char *name)
{
    ledger_args_reset(&n->cmd);
    ledger_args_str(&n->cmd, name);
}

static void cmd_s(struct ledger_native *n, const char *s)
{
    ledger_args_str(&n->cmd, s);
}

static void cmd_i(struct ledger_native *n, int64_t v)
{
    lst_buf_reset(&n->num);
    put_i64(&n->num, v);
    ledger_args_add(&n->cmd, n->num.data, n->num.len);
}

/* A projection key: LEDGER_PREFIX, then a and b. */
static void cmd_key(struct ledger_native *n, const char *a, const char *b)
{
    lst_buf_reset(&n->key);
    PUT(&n->key, LEDGER_PREFIX, a, b != NULL ? b : "");
    ledger_args_add(&n->cmd, n->key.data, n->key.len);
}

static void cmd_all(struct ledger_native *n, const char *const *parts)
{
    for (; *parts != NULL; parts++)
        cmd_s(n, *parts);
}
#define PUT_ARGS(n, ...) cmd_all((n), (const char *const[]){__VA_ARGS__, NULL})

static lst_err cmd_end(struct ledger_native *n)
{
    lst_err err = lst_buf_failed(&n->cmd.buf) ? LST_ERR_NOMEM : ledger_args_finish(&n->cmd);
    if (err == LST_OK)
        err = lst_redis_pipe_add(n->pipe, (int)n->cmd.n, n->cmd.argv, n->cmd.argvlen);
    return err;
}

/* t:<the ID's last five characters> (tkey in prelude.lua) */
static void cmd_tkey(struct ledger_native *n, const char *tm)
{
    size_t len = strlen(tm);
    cmd_key(n, "t:", tm + (len > 5 ? len - 5 : 0));
}

/* e:<eid>:<what> of recipient rcp ("<mid> <eid>"). */
static void cmd_ekey(struct ledger_native *n, size_t rcp, const char *what)
{
    lst_buf_reset(&n->key);
    PUT(&n->key, LEDGER_PREFIX "e:", strchr(n->rcps.keys[rcp], ' ') + 1, ":", what);
    ledger_args_add(&n->cmd, n->key.data, n->key.len);
}

static const redisReply *reply(struct ledger_native *n, size_t i)
{
    return lst_redis_pipe_reply(n->pipe, i);
}

/* A string reply's text (hiredis terminates it), valid until its round's pipe is reset. */
static const char *reply_str(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STRING ? r->str : NULL;
}

static int64_t reply_i64(const redisReply *r, int64_t none)
{
    int64_t v = none;
    if (r != NULL && r->type == REDIS_REPLY_STRING &&
        lst_parse_i64(r->str, INT64_MIN, INT64_MAX, &v) != LST_OK)
        v = none;
    return v;
}

/* ---- round 1: watermarks, markers and the t: entries --------------------------------------- */

/* The index of argument arg of in in ix (the events keep arguments, not indexes). */
static size_t index_of(struct ledger_native *n, struct nindex *ix, size_t arg)
{
    bool added;
    return nindex_get(ix, n->in.buf.data + n->in.off[arg], n->in.len[arg], &added);
}

static bool index_events(struct ledger_native *n)
{
    bool added;
    for (size_t i = 0; i < n->nev; i++) {
        struct nev *e = &n->ev[i];
        e->field = nindex_get(&n->fields, n->in.buf.data + n->in.off[e->field_arg],
                              n->in.len[e->field_arg], &added);
        if (e->field == SIZE_MAX)
            return false;
        for (size_t j = 0; j < e->ntm; j++) {
            size_t a = n->evtm[e->tm0 + j];
            if (nindex_get(&n->tms, n->in.buf.data + n->in.off[a], n->in.len[a], &added) ==
                SIZE_MAX)
                return false;
        }
    }
    for (size_t i = 0; i < n->nev; i++) {
        if (n->ev[i].tid_arg != SIZE_MAX && index_of(n, &n->tids, n->ev[i].tid_arg) == SIZE_MAX)
            return false;
    }
    if (!vgrow((void **)&n->tid_known, &n->captid, n->tids.n, sizeof(*n->tid_known)))
        return false;
    size_t nf = n->fields.n;
    size_t cap = n->capf;
    if (!vgrow((void **)&n->wm0, &cap, nf, sizeof(*n->wm0)))
        return false;
    cap = n->capf;
    if (!vgrow((void **)&n->wm, &cap, nf, sizeof(*n->wm)))
        return false;
    cap = n->capf;
    if (!vgrow((void **)&n->mark, &cap, nf, sizeof(*n->mark)))
        return false;
    cap = n->capf;
    if (!vgrow((void **)&n->wm_touched, &cap, nf, sizeof(*n->wm_touched)))
        return false;
    cap = n->capf;
    if (!vgrow((void **)&n->deferred, &cap, nf, sizeof(*n->deferred)))
        return false;
    n->capf = cap;
    memset(n->deferred, 0, nf * sizeof(*n->deferred));
    return vgrow((void **)&n->tm, &n->captm, n->tms.n, sizeof(*n->tm));
}

static lst_err round1(struct ledger_core *c, struct ledger_native *n, unsigned long *conn)
{
    n->pipe = n->pipes[0];
    lst_redis_pipe_reset(n->pipe);
    /* Every other writer of what the batch reads either advances a watermark in the same
     * atomic step (scripts, these transactions, a second ledger's) or bumps lst:lg-gen
     * (retention), and the refill markers are read too: watching those three is watching
     * everything read below. (Redis checks a new WATCH key against every key the client
     * watches already: a batch's 2,000 keys cost ~3 ms per call.) */
    lst_err err = lst_redis_pipe_addf(n->pipe, "WATCH " LEDGER_PREFIX "wm " LEDGER_PREFIX
                                               "refill lst:lg-gen");
    for (int which = 0; which < 2 && err == LST_OK; which++) {
        cmd_begin(n, "HMGET");
        cmd_key(n, which == 0 ? "wm" : "refill", NULL);
        for (size_t i = 0; i < n->fields.n; i++)
            cmd_s(n, n->fields.keys[i]);
        err = cmd_end(n);
    }
    if (err == LST_OK)
        err = lst_redis_pipe_addf(n->pipe, "EXISTS " LEDGER_PREFIX "erased");
    if (err == LST_OK)
        err = lst_redis_pipe_addf(n->pipe, "SCRIPT EXISTS %s", lst_redis_script_sha(c->script));
    for (size_t i = 0; i < n->tms.n && err == LST_OK; i++) {
        cmd_begin(n, "HGET");
        cmd_tkey(n, n->tms.keys[i]);
        cmd_s(n, n->tms.keys[i]);
        err = cmd_end(n);
    }
    if (err == LST_OK)
        err = lst_redis_pipe_exec_once(c->redis, n->pipe, conn);
    if (err != LST_OK)
        return err;
    const redisReply *wm = reply(n, 1), *mark = reply(n, 2);
    if (wm->type != REDIS_REPLY_ARRAY || mark->type != REDIS_REPLY_ARRAY ||
        wm->elements != n->fields.n || mark->elements != n->fields.n)
        return LST_ERR_REDIS;
    for (size_t i = 0; i < n->fields.n; i++) {
        n->wm0[i] = n->wm[i] = reply_i64(wm->element[i], -1);
        n->mark[i] = reply_i64(mark->element[i], -1);
        n->wm_touched[i] = false;
    }
    n->any_erased = reply(n, 3)->integer == 1;
    const redisReply *se = reply(n, 4);
    n->script_loaded =
        se->type == REDIS_REPLY_ARRAY && se->elements == 1 && se->element[0]->integer == 1;
    for (size_t i = 0; i < n->tms.n; i++) {
        n->tm[i].value = reply_str(reply(n, 5 + i));
        n->tm[i].rcp = n->tm[i].held = SIZE_MAX;
    }
    return LST_OK;
}

/* ---- round 2: messages, recipients, held receipts, erased, rroff, versions ----------------- */

/* The recipient "<mid> <eid>" of a t: entry, with its message and employee. */
static size_t add_rcp(struct ledger_native *n, const char *value)
{
    const char *sp = strchr(value, ' ');
    bool added;
    if (sp == NULL)
        return SIZE_MAX - 1; /* not a mapping the scripts wrote */
    size_t r = nindex_get(&n->rcps, value, strlen(value), &added);
    if (r == SIZE_MAX || !added)
        return r;
    size_t m = nindex_get(&n->mids, value, (size_t)(sp - value), &added);
    size_t e = m == SIZE_MAX ? SIZE_MAX : nindex_get(&n->emps, sp + 1, strlen(sp + 1), &added);
    if (e == SIZE_MAX || !vgrow((void **)&n->rcp, &n->caprcp, n->rcps.n, sizeof(*n->rcp)) ||
        !vgrow((void **)&n->msg, &n->capmsg, n->mids.n, sizeof(*n->msg)) ||
        !vgrow((void **)&n->emp, &n->capemp, n->emps.n, sizeof(*n->emp)))
        return SIZE_MAX;
    struct nmsg *msg = &n->msg[m];
    if (!vgrow((void **)&msg->rcp, &msg->caprcp, msg->nrcp + 1, sizeof(*msg->rcp)))
        return SIZE_MAX;
    msg->rcp[msg->nrcp++] = r;
    n->rcp[r].msg = m;
    n->rcp[r].emp = e;
    return r;
}

static bool is_send(const struct nev *e)
{
    return e->kind == LEDGER_S_SENT || e->kind == LEDGER_S_OUTBOUND;
}

/* A message record's message and recipients; round 2 reads every state of the message, and
 * each recipient's directory entry and incoming messages in the reply windows. */
static bool map_message(struct ledger_native *n, struct nev *e)
{
    const struct ledger_args *a = &n->in;
    size_t o = e->argfirst + LEDGER_HEADER_ARGS;
    bool added;
    e->mid = nindex_get(&n->mids, a->buf.data + a->off[o], a->len[o], &added);
    if (e->mid == SIZE_MAX || !vgrow((void **)&n->msg, &n->capmsg, n->mids.n, sizeof(*n->msg)) ||
        !vgrow((void **)&n->evr, &n->capevr, n->nevr + e->nr, sizeof(*n->evr)))
        return false;
    n->msg[e->mid].record = true;
    const char *mid = n->mids.keys[e->mid];
    int64_t mt = ulid_ms(mid);
    e->evr0 = n->nevr;
    for (size_t j = e->r0; j < e->r0 + e->nr; j++) {
        lst_buf_reset(&n->key);
        PUT(&n->key, mid, " ");
        lst_buf_append(&n->key, a->buf.data + a->off[j], a->len[j]);
        size_t r = lst_buf_failed(&n->key) ? SIZE_MAX : add_rcp(n, n->key.data);
        if (r >= SIZE_MAX - 1)
            return false;
        n->evr[n->nevr++] = r;
        struct nemp *em = &n->emp[n->rcp[r].emp];
        em->lo = em->listed && em->lo < mt ? em->lo : mt;
        em->hi = em->listed && em->hi > mt + n->window ? em->hi : mt + n->window;
        em->listed = true;
    }
    return true;
}

static bool map_tms(struct ledger_native *n)
{
    for (size_t i = 0; i < n->tms.n; i++) {
        struct ntm *t = &n->tm[i];
        if (t->value == NULL) {
            if (!vgrow((void **)&n->held, &n->capheld, n->nheld + 1, sizeof(*n->held)) ||
                !vgrow((void **)&n->held_tm, &n->capheld_tm, n->nheld + 1, sizeof(*n->held_tm)))
                return false;
            n->held_tm[n->nheld] = i;
            t->held = n->nheld++;
        } else if (strcmp(t->value, "-") != 0) {
            t->rcp = add_rcp(n, t->value);
            if (t->rcp == SIZE_MAX)
                return false;
        }
    }
    for (size_t i = 0; i < n->nev; i++) {
        struct nev *e = &n->ev[i];
        if (e->kind == LEDGER_S_MESSAGE && !map_message(n, e))
            return false;
        if (!is_send(e))
            continue;
        lst_buf_reset(&n->key);
        lst_buf_append(&n->key, n->in.buf.data + n->in.off[e->rcp_arg], n->in.len[e->rcp_arg]);
        e->rcp = lst_buf_failed(&n->key) ? SIZE_MAX : add_rcp(n, n->key.data);
        if (e->rcp >= SIZE_MAX - 1)
            return false; /* "<mid> <eid>" built above always has the space */
    }
    return true;
}

static const char *const msg_fields[] = {"msg",
                                         "cat",
                                         "at",
                                         "disp",
                                         "dep",
                                         "n",
                                         "s:queued",
                                         "s:retrying",
                                         "s:failed",
                                         "s:sent",
                                         "s:delivered",
                                         "s:read",
                                         "s:acknowledged",
                                         "s:declined"};

#define IN_MAX 64 /* incoming messages read per recipient: more counts as a reply (script) */

/* What message.lua reads besides the states: every state of the message (the credit of a
 * send before the record), whether the message has annotations or anonymous credits (left
 * to the script), and per recipient her directory entry and incoming messages in the reply
 * windows of the batch's messages to her (relink: left to the script). */
static lst_err queue_records(struct ledger_native *n)
{
    lst_err err = LST_OK;
    for (size_t i = 0; i < n->mids.n && err == LST_OK; i++) {
        if (!n->msg[i].record)
            continue;
        cmd_begin(n, "HGETALL");
        cmd_key(n, "r:", n->mids.keys[i]);
        err = cmd_end(n);
        cmd_begin(n, "EXISTS");
        cmd_key(n, "ann:", n->mids.keys[i]);
        cmd_key(n, "annh:", n->mids.keys[i]);
        cmd_key(n, "crx:", n->mids.keys[i]);
        if (err == LST_OK)
            err = cmd_end(n);
    }
    for (size_t i = 0; i < n->emps.n && err == LST_OK; i++) {
        const struct nemp *em = &n->emp[i];
        if (!em->listed)
            continue;
        cmd_begin(n, "HMGET");
        cmd_key(n, "emp:", n->emps.keys[i]);
        PUT_ARGS(n, "dep", "veh", "tags");
        err = cmd_end(n);
        cmd_begin(n, "ZRANGEBYSCORE");
        lst_buf_reset(&n->key);
        PUT(&n->key, LEDGER_PREFIX "e:", n->emps.keys[i], ":in");
        ledger_args_add(&n->cmd, n->key.data, n->key.len);
        cmd_i(n, em->lo);
        cmd_i(n, em->hi);
        cmd_s(n, "WITHSCORES");
        cmd_s(n, "LIMIT");
        cmd_s(n, "0");
        cmd_i(n, IN_MAX);
        if (err == LST_OK)
            err = cmd_end(n);
    }
    return err;
}

static lst_err queue_round2(struct ledger_native *n)
{
    lst_err err = LST_OK;
    for (size_t i = 0; i < n->mids.n && err == LST_OK; i++) {
        cmd_begin(n, "HMGET");
        cmd_key(n, "m:", n->mids.keys[i]);
        for (size_t f = 0; f < LST_ARRAY_LEN(msg_fields); f++)
            cmd_s(n, msg_fields[f]);
        err = cmd_end(n);
        cmd_begin(n, "HMGET");
        cmd_key(n, "r:", n->mids.keys[i]);
        for (size_t j = 0; j < n->msg[i].nrcp; j++)
            cmd_s(n, strchr(n->rcps.keys[n->msg[i].rcp[j]], ' ') + 1);
        if (err == LST_OK)
            err = cmd_end(n);
    }
    for (size_t i = 0; i < n->nheld && err == LST_OK; i++) {
        cmd_begin(n, "HMGET");
        cmd_key(n, "h:", n->tms.keys[n->held_tm[i]]);
        cmd_s(n, "d");
        cmd_s(n, "r");
        cmd_s(n, "a");
        cmd_s(n, "x");
        err = cmd_end(n);
    }
    for (size_t i = 0; i < n->tids.n && err == LST_OK; i++) {
        cmd_begin(n, "EXISTS");
        cmd_key(n, "emp:tid:", n->tids.keys[i]);
        err = cmd_end(n);
    }
    for (size_t i = 0; i < n->nev && err == LST_OK; i++) {
        const struct nev *e = &n->ev[i];
        if (!is_send(e))
            continue;
        /* relink's range: a new recipient's send may become the better reply link */
        int64_t mt = ulid_ms(n->rcps.keys[e->rcp]);
        cmd_begin(n, "ZRANGEBYSCORE");
        cmd_ekey(n, e->rcp, "in");
        cmd_i(n, mt);
        cmd_i(n, mt + n->window);
        cmd_s(n, "LIMIT");
        cmd_s(n, "0");
        cmd_s(n, "1");
        err = cmd_end(n);
    }
    n->emps_read = n->emps.n;
    for (int which = 0; which < 2 && err == LST_OK && n->emps.n > 0; which++) {
        cmd_begin(n, "SMISMEMBER");
        cmd_key(n, which == 0 ? "erased" : "rroff", NULL);
        for (size_t i = 0; i < n->emps.n; i++)
            cmd_s(n, n->emps.keys[i]);
        err = cmd_end(n);
    }
    if (err == LST_OK)
        err = queue_records(n);
    if (err == LST_OK)
        err = lst_redis_pipe_addf(n->pipe, "INCRBY lst:mver %lld", (long long)n->nev + 2);
    if (err == LST_OK && !n->script_loaded) {
        char *src = ledger_script_source();
        err = src != NULL ? lst_redis_pipe_addf(n->pipe, "SCRIPT LOAD %s", src) : LST_ERR_NOMEM;
        free(src);
    }
    return err;
}

static void read_msg(struct nmsg *m, const redisReply *v)
{
    m->msg = v->element[0]->type == REDIS_REPLY_STRING;
    m->cat = reply_str(v->element[1]);
    m->at_s = reply_str(v->element[2]);
    m->disp = reply_str(v->element[3]);
    m->dep = reply_str(v->element[4]);
    for (int k = 0; k < NCOUNT; k++)
        m->c0[k] = m->c[k] = reply_i64(v->element[5 + k], 0);
}

static bool read_rcps(struct ledger_native *n, const struct nmsg *m, const redisReply *v)
{
    for (size_t j = 0; j < m->nrcp; j++) {
        struct nrcp *r = &n->rcp[m->rcp[j]];
        r->raw = r->raw0 = reply_str(v->element[j]);
        r->bad = r->raw0 != NULL &&
                 !cache_get(n->cache, &n->arena, n->rcps.keys[m->rcp[j]], r->raw0, &r->s) &&
                 !state_parse(n->tok, &n->arena, r->raw0, &r->s);
    }
    return true;
}

/* emp_dims: the directory entry's department, vehicle and tags as index suffixes. A list of
 * tags that holds anything but strings (the script would fail or format a number) makes her
 * odd: her messages go to the script. */
static void read_dims(struct ledger_native *n, struct nemp *em, const redisReply *v)
{
    static const char *const dim[2] = {"dep:", "veh:"};
    for (int k = 0; k < 2; k++) {
        const redisReply *r = v->element[k];
        if (r->type == REDIS_REPLY_STRING) {
            em->odd = em->odd || strlen(r->str) != r->len;
            PUT(&em->dims, dim[k], r->str);
            lst_buf_append(&em->dims, "", 1);
        }
    }
    const char *raw = reply_str(v->element[2]);
    if (raw == NULL)
        return;
    json_tokener_reset(n->tok);
    json_object *o = json_tokener_parse_ex(n->tok, raw, (int)v->element[2]->len);
    if (o != NULL && json_tokener_get_parse_end(n->tok) != v->element[2]->len)
        em->odd = true; /* cjson would refuse what follows the value */
    if (o == NULL || !json_object_is_type(o, json_type_array)) {
        json_object_put(o); /* tags_of: not a list (or broken) is no tags */
        return;
    }
    for (size_t t = 0; t < json_object_array_length(o); t++) {
        json_object *tag = json_object_array_get_idx(o, t);
        const char *str = json_object_get_string(tag);
        if (!json_object_is_type(tag, json_type_string) ||
            strlen(str) != (size_t)json_object_get_string_len(tag)) {
            em->odd = true;
            break;
        }
        PUT(&em->dims, "tag:", str);
        lst_buf_append(&em->dims, "", 1);
    }
    json_object_put(o);
}

/* A state of the message that no event of the batch names (its credit, message.lua). */
static bool read_other(struct ledger_native *n, size_t m, const redisReply *eid,
                       const redisReply *raw)
{
    lst_buf_reset(&n->key);
    PUT(&n->key, n->mids.keys[m], " ", eid->str);
    if (lst_buf_failed(&n->key) || strlen(eid->str) != eid->len)
        return false;
    if (nindex_find(&n->rcps, n->key.data) != SIZE_MAX)
        return true; /* read by HMGET already */
    size_t r = add_rcp(n, n->key.data);
    if (r >= SIZE_MAX - 1)
        return false;
    struct nrcp *rc = &n->rcp[r];
    rc->raw = rc->raw0 = raw->str;
    rc->bad = !cache_get(n->cache, &n->arena, n->rcps.keys[r], rc->raw0, &rc->s) &&
              !state_parse(n->tok, &n->arena, rc->raw0, &rc->s);
    return true;
}

/* queue_records' replies, from reply *i on. */
static lst_err read_records(struct ledger_native *n, size_t *i)
{
    for (size_t m = 0; m < n->mids.n; m++) { /* read_other adds recipients, no message */
        if (!n->msg[m].record)
            continue;
        const redisReply *all = reply(n, (*i)++), *ex = reply(n, (*i)++);
        if (all->type != REDIS_REPLY_ARRAY || all->elements % 2 != 0 ||
            ex->type != REDIS_REPLY_INTEGER)
            return LST_ERR_REDIS;
        n->msg[m].annotated = ex->integer > 0;
        for (size_t k = 0; k < all->elements; k += 2) {
            if (all->element[k]->type != REDIS_REPLY_STRING ||
                all->element[k + 1]->type != REDIS_REPLY_STRING)
                return LST_ERR_REDIS;
            if (!read_other(n, m, all->element[k], all->element[k + 1]))
                return LST_ERR_NOMEM;
        }
    }
    for (size_t e = 0; e < n->emps_read; e++) {
        struct nemp *em = &n->emp[e];
        if (!em->listed)
            continue;
        const redisReply *v = reply(n, (*i)++);
        em->in = reply(n, (*i)++);
        if (v->type != REDIS_REPLY_ARRAY || v->elements != 3 || em->in->type != REDIS_REPLY_ARRAY)
            return LST_ERR_REDIS;
        read_dims(n, em, v);
        if (lst_buf_failed(&em->dims))
            return LST_ERR_NOMEM;
    }
    return LST_OK;
}

/* The first version of the block reserved by INCRBY (mver in prelude.lua): a fresh counter
 * (Redis lost its data) starts at the time in microseconds, so versions never go back. */
static lst_err versions(struct ledger_core *c, struct ledger_native *n, const redisReply *r)
{
    int64_t k = (int64_t)n->nev + 2;
    if (r->type != REDIS_REPLY_INTEGER)
        return LST_ERR_REDIS;
    n->ver_base = r->integer - k;
    if (r->integer != k)
        return LST_OK;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    n->ver_base = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    return lst_redis_cmdf(c->redis, NULL, "SET lst:mver %lld", (long long)(n->ver_base + k));
}

static lst_err round2(struct ledger_core *c, struct ledger_native *n, unsigned long *conn)
{
    n->pipe = n->pipes[1];
    lst_redis_pipe_reset(n->pipe);
    if (!map_tms(n))
        return LST_ERR_NOMEM;
    lst_err err = queue_round2(n);
    if (err == LST_OK)
        err = lst_redis_pipe_exec_once(c->redis, n->pipe, conn);
    if (err != LST_OK)
        return err;
    size_t i = 0;
    for (size_t m = 0; m < n->mids.n; m++, i += 2) {
        const redisReply *v = reply(n, i), *r = reply(n, i + 1);
        if (v->type != REDIS_REPLY_ARRAY || v->elements != LST_ARRAY_LEN(msg_fields) ||
            r->type != REDIS_REPLY_ARRAY || r->elements != n->msg[m].nrcp)
            return LST_ERR_REDIS;
        read_msg(&n->msg[m], v);
        if (!read_rcps(n, &n->msg[m], r))
            return LST_ERR_NOMEM;
    }
    for (size_t h = 0; h < n->nheld; h++, i++) {
        const redisReply *v = reply(n, i);
        if (v->type != REDIS_REPLY_ARRAY || v->elements != 4)
            return LST_ERR_REDIS;
        for (int k = 0; k < 4; k++)
            n->held[h].h[k] = reply_i64(v->element[k], -1);
        n->held[h].changed = 0;
    }
    for (size_t t = 0; t < n->tids.n; t++, i++)
        n->tid_known[t] = reply(n, i)->integer == 1;
    for (size_t k = 0; k < n->nev; k++) {
        if (is_send(&n->ev[k]))
            n->ev[k].replies = reply(n, i++)->elements > 0;
    }
    for (int which = 0; which < 2 && n->emps_read > 0; which++, i++) {
        const redisReply *v = reply(n, i);
        if (v->type != REDIS_REPLY_ARRAY || v->elements != n->emps_read)
            return LST_ERR_REDIS;
        for (size_t e = 0; e < n->emps_read; e++) {
            bool yes = v->element[e]->integer == 1;
            if (which == 0)
                n->emp[e].erased = n->any_erased && yes;
            else
                n->emp[e].rroff = yes;
        }
    }
    lst_err err2 = read_records(n, &i);
    return err2 != LST_OK ? err2 : versions(c, n, reply(n, i));
}

/* ---- the merge (merge, after, agg_status of prelude.lua) ----------------------------------- */

/* Credits of a send, counted once when both the accepted outcome and the message are known
 * (count_credit): "day field" lines summed before the write. */
static void count_credit(struct ledger_native *n, const struct nmsg *m, struct rstate *s)
{
    if (!HAS(s, K_S) || HAS(s, K_CR) || !m->msg)
        return;
    int64_t day = s->v[K_S] / 86400000 - (s->v[K_S] < 0 && s->v[K_S] % 86400000 != 0);
    lst_buf_printf(&n->credits, "%" PRId64 " all\n", day);
    lst_buf_printf(&n->credits, "%" PRId64 " disp:%s\n", day, m->disp != NULL ? m->disp : "");
    if (m->dep != NULL)
        lst_buf_printf(&n->credits, "%" PRId64 " dep:%s\n", day, m->dep);
    s->v[K_CR] = 1;
    s->has |= 1u << K_CR;
}

/* An observation of one record about a recipient (merge's o): step times, and for an accepted
 * send its Threema message ID, Threema ID, possible duplicate and attempts. */
struct obs {
    int64_t v[NINT];
    uint32_t has;
    const char *tm, *tid; /* NUL-terminated; tid NULL: none */
};

static void obs_set(struct obs *o, int k, int64_t v)
{
    o->v[k] = v;
    o->has |= 1u << k;
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The Threema message ID wins when it is the first, or its send is the earlier (merge). */
static void merge_ids(struct ledger_native *n, struct rstate *s, const struct obs *o, bool had_s,
                      int64_t before, bool *dirty)
{
    if (o->tm == NULL || !(s->tm == NULL || !had_s || o->v[K_S] < before ||
                           (o->v[K_S] == before && strcmp(o->tm, s->tm) < 0)))
        return;
    if (str_eq(s->tm, o->tm) && str_eq(s->tid, o->tid))
        return;
    s->tm = arena_dup(&n->arena, o->tm, strlen(o->tm));
    s->tid = o->tid != NULL ? arena_dup(&n->arena, o->tid, strlen(o->tid)) : NULL;
    n->nomem = n->nomem || s->tm == NULL || (o->tid != NULL && s->tid == NULL);
    s->strings_changed = true;
    *dirty = true;
}

/* Merges o into recipient r (merge); returns the steps that got their first time, *old the
 * state before (ST_NONE: new). */
static uint32_t merge(struct ledger_native *n, struct nrcp *r, struct nmsg *m, const struct obs *o,
                      int *old)
{
    struct rstate *s = &r->s;
    bool dirty = r->raw == NULL, had_s = HAS(s, K_S);
    int64_t before = s->v[K_S];
    uint32_t changed = 0;
    *old = r->raw == NULL ? ST_NONE : s->st;
    for (int k = K_Q; k <= K_X; k++) {
        if (!((o->has >> k) & 1u))
            continue;
        if (!HAS(s, k)) {
            changed |= 1u << k;
            s->v[k] = o->v[k];
            s->has |= 1u << k;
            dirty = true;
        } else if (o->v[k] < s->v[k]) {
            s->v[k] = o->v[k];
            dirty = true;
        }
    }
    merge_ids(n, s, o, had_s, before, &dirty);
    for (int k = K_ATT; k <= K_DUP; k++) {
        if (((o->has >> k) & 1u) && o->v[k] > (HAS(s, k) ? s->v[k] : 0)) {
            s->v[k] = o->v[k];
            s->has |= 1u << k;
            dirty = true;
        }
    }
    bool cr = HAS(s, K_CR);
    count_credit(n, m, s);
    if (dirty || HAS(s, K_CR) != cr) {
        s->st = state_of(s);
        state_encode(s, &n->enc);
        if (r->raw == NULL || strcmp(n->enc.data, r->raw) != 0) {
            char *enc = lst_strdup(n->enc.data);
            n->nomem = n->nomem || enc == NULL || lst_buf_failed(&n->enc);
            free(r->enc);
            r->enc = enc;
            r->raw = enc != NULL ? enc : r->raw;
        }
    }
    return changed;
}

/* The transition old -> new in the message's counts (agg_status); returns the readers after. */
static int64_t agg_status(struct ledger_native *n, struct nmsg *m, int old, int new_st,
                          int64_t *ev_ver)
{
    if (old == ST_NONE)
        m->c[0]++;
    else
        m->c[old]--;
    m->c[new_st]++;
    if (*ev_ver == 0)
        *ev_ver = n->ver_base + ++n->ver_seq;
    m->ver = *ev_ver;
    return m->c[ST_READ] + m->c[ST_ACK] + m->c[ST_DECLINED];
}

#define DRAX ((1u << K_D) | (1u << K_R) | (1u << K_A) | (1u << K_X))
#define RAX  ((1u << K_R) | (1u << K_A) | (1u << K_X))

/* Read-receipt evidence of a merge (after, RRN > 0): the message into e:<eid>:dl / :rd the
 * first time, and the employee marked for the rule. had: a step of the set before the merge. */
static void rr_evidence(struct ledger_native *n, struct nrcp *r, const struct nmsg *m,
                        uint32_t changed)
{
    struct nemp *e = &n->emp[r->emp];
    const char *mid = n->mids.keys[r->msg];
    uint32_t had = r->s.has & ~changed;
    char mt[24];
    if (m->at_s != NULL)
        snprintf(mt, sizeof(mt), "%s", m->at_s);
    else
        snprintf(mt, sizeof(mt), "%" PRId64, ulid_ms(mid));
    if ((had & DRAX) == 0)
        PUT(&e->dl, mt, " ", mid, "\n");
    bool read = (changed & RAX) != 0;
    if (read && (had & RAX) == 0)
        PUT(&e->rd, mt, " ", mid, "\n");
    if ((changed & (1u << K_D)) || (read && !e->dirty && e->rroff))
        e->dirty = true;
}

/* merge_after: the merge, then the change stream, counts, first reader and the rule's
 * evidence. */
static void merge_after(struct ledger_core *c, struct ledger_native *n, size_t rcp,
                        const struct obs *o, int64_t *ev_ver)
{
    struct nrcp *r = &n->rcp[rcp];
    struct nmsg *m = &n->msg[r->msg];
    const char *mid = n->mids.keys[r->msg];
    const char *eid = n->emps.keys[r->emp];
    int old;
    uint32_t changed = merge(n, r, m, o, &old);
    int new_st = r->s.st;
    if (old != new_st) {
        if (new_st != ST_QUEUED)
            PUT(&n->events, mid, " ", eid, " ", st_name[new_st], "\n");
        int64_t readers = agg_status(n, m, old, new_st, ev_ver);
        if (is_reader(new_st) && !is_reader(old == ST_NONE ? ST_QUEUED : old) && readers == 1)
            PUT(&n->firsts, mid, " ", eid, "\n");
    }
    if (c->cfg->read_receipts > 0 && (changed & DRAX))
        rr_evidence(n, r, m, changed);
}

static void apply_held(struct ledger_native *n, size_t h, int step, int64_t at)
{
    struct nheld *hd = &n->held[h];
    int k = step - K_D;
    if (hd->h[k] < 0 || at < hd->h[k]) {
        hd->h[k] = at;
        hd->changed |= (uint8_t)(1u << k);
    }
}

/* An event fails (as a script error would) when a state it names is not one the scripts
 * wrote: nothing of it is applied, and its watermark stays. */
static bool event_bad(struct ledger_native *n, const struct nev *e)
{
    if (e->kind == LEDGER_S_MESSAGE) {
        const struct nmsg *m = &n->msg[e->mid];
        for (size_t j = 0; j < m->nrcp; j++) {
            if (n->rcp[m->rcp[j]].bad)
                return true;
        }
        return false;
    }
    if (e->kind != LEDGER_S_RECEIPT)
        return n->rcp[e->rcp].bad;
    for (size_t j = 0; j < e->ntm; j++) {
        const struct ntm *t = &n->tm[index_of(n, &n->tms, n->evtm[e->tm0 + j])];
        if (t->rcp == SIZE_MAX - 1 || (t->rcp != SIZE_MAX && n->rcp[t->rcp].bad))
            return true;
    }
    return false;
}

/* A send (or outbound record) the script must apply: to an erased recipient, a recipient no record
 * named before (note_out: pending sends and reply links), a Threema ID to learn (learn_tid: waiting
 * messages), or IDs in a state that JSON would not write as they are. */
static bool defers(struct ledger_native *n, const struct nev *e)
{
    const struct nrcp *r = &n->rcp[e->rcp];
    if (e->kind == LEDGER_S_OUTBOUND) /* erased: the script does nothing, nor does apply_outbound */
        return !n->emp[r->emp].erased && r->raw == NULL && e->replies;
    if (n->emp[r->emp].erased || (r->raw == NULL && e->replies) || (r->raw0 != NULL && !r->s.safe))
        return true;
    return e->tid_arg != SIZE_MAX && !n->tid_known[index_of(n, &n->tids, e->tid_arg)];
}

/* An incoming message of em between lo and hi (e:<eid>:in's scores), or maybe one. */
static bool replied(const struct nemp *em, int64_t lo, int64_t hi)
{
    if (em->in->elements >= 2 * IN_MAX)
        return true;
    for (size_t k = 1; k < em->in->elements; k += 2) {
        int64_t at = reply_i64(em->in->element[k], INT64_MIN);
        if (at == INT64_MIN || (at >= lo && at <= hi))
            return true;
    }
    return false;
}

/* A message record the script must apply: someone is erased (recipients, skipped, sel_emps),
 * the message has annotations or anonymous credits, a recipient's directory entry is odd, or
 * a recipient has incoming messages in the reply window after it (relink). */
static bool message_defers(struct ledger_native *n, const struct nev *e)
{
    int64_t mt = ulid_ms(n->mids.keys[e->mid]);
    if (n->any_erased || n->msg[e->mid].annotated)
        return true;
    for (size_t j = 0; j < e->nr; j++) {
        const struct nemp *em = &n->emp[n->rcp[n->evr[e->evr0 + j]].emp];
        if (em->odd || replied(em, mt, mt + n->window))
            return true;
    }
    return false;
}

/* Argument i of in as a string of the attempt. */
static const char *arg_dup(struct ledger_native *n, size_t i)
{
    char *d = arena_dup(&n->arena, n->in.buf.data + n->in.off[i], n->in.len[i]);
    n->nomem = n->nomem || d == NULL;
    return d != NULL ? d : "";
}

/* The message into the sorted set n->key (without the prefix), at its time, once per batch. */
static void ix_put(struct ledger_native *n, size_t m)
{
    bool added;
    size_t k = lst_buf_failed(&n->key) ? SIZE_MAX
                                       : nindex_get(&n->ixkeys, n->key.data, n->key.len, &added);
    if (k == SIZE_MAX ||
        !vgrow((void **)&n->ixlast, &n->capixlast, n->ixkeys.n, sizeof(*n->ixlast)) ||
        !vgrow((void **)&n->ix, &n->capix, n->nix + 1, sizeof(*n->ix))) {
        n->nomem = true;
        return;
    }
    if (added)
        n->ixlast[k] = NULL;
    if (n->ixlast[k] == n->mids.keys[m])
        return;
    n->ixlast[k] = n->mids.keys[m];
    n->ix[n->nix++] = (struct nixe){k, n->msg[m].at_s, n->mids.keys[m]};
}

/* ixadd: the message into x:<sfx> and, unless the dimension has no per-category copies (emp,
 * veh: NOCAT), into xc:<cat>:<sfx>; one entry per index and message. */
static void ix_add(struct ledger_native *n, size_t m, const char *sfx)
{
    const struct nmsg *msg = &n->msg[m];
    bool nocat = strncmp(sfx, "emp:", 4) == 0 || strncmp(sfx, "veh:", 4) == 0;
    for (int cat = 0; cat < 2 && !(cat == 1 && nocat); cat++) {
        lst_buf_reset(&n->key);
        if (cat)
            PUT(&n->key, "xc:", msg->cat, ":", sfx);
        else
            PUT(&n->key, "x:", sfx);
        ix_put(n, m);
    }
}

/* ix_add of dim:<argument i>. */
static void ix_add_arg(struct ledger_native *n, size_t m, const char *dim, size_t i)
{
    lst_buf_reset(&n->sfx);
    PUT(&n->sfx, dim, ":");
    lst_buf_append(&n->sfx, n->in.buf.data + n->in.off[i], n->in.len[i]);
    if (lst_buf_failed(&n->sfx))
        n->nomem = true;
    else
        ix_add(n, m, n->sfx.data);
}

/* skipped_add: skp as [[ID, reason], ...] in record order, and the message in each skipped
 * employee's e:<eid>:skp, so that her erasure finds it (nobody is erased: message_defers). */
static void skipped(struct ledger_native *n, const struct nev *e)
{
    struct nmsg *m = &n->msg[e->mid];
    const struct ledger_args *a = &n->in;
    if (e->nskip == 0)
        return;
    lst_buf_reset(&n->sfx);
    for (size_t k = e->skip0; k < e->skip0 + 2 * e->nskip; k += 2) {
        lst_buf_puts(&n->sfx, k == e->skip0 ? "[[\"" : ",[\"");
        lst_buf_append(&n->sfx, a->buf.data + a->off[k], a->len[k]);
        lst_buf_puts(&n->sfx, "\",\"");
        lst_buf_append(&n->sfx, a->buf.data + a->off[k + 1], a->len[k + 1]);
        lst_buf_puts(&n->sfx, "\"]");
    }
    lst_buf_puts(&n->sfx, "]");
    m->skp = lst_buf_failed(&n->sfx) ? NULL : arena_dup(&n->arena, n->sfx.data, n->sfx.len);
    n->nomem = n->nomem || m->skp == NULL;
    for (size_t k = e->skip0; k < e->skip0 + 2 * e->nskip; k += 2) {
        lst_buf_reset(&n->key);
        lst_buf_puts(&n->key, "e:");
        lst_buf_append(&n->key, a->buf.data + a->off[k], a->len[k]);
        lst_buf_puts(&n->key, ":skp");
        ix_put(n, e->mid);
    }
}

/* The one employee every recipient is (sole_recipient), or NULL. */
static const char *sole(struct ledger_native *n, const struct nev *e)
{
    for (size_t j = 1; j < e->nr; j++) {
        if (n->rcp[n->evr[e->evr0 + j]].emp != n->rcp[n->evr[e->evr0]].emp)
            return NULL;
    }
    return e->nr > 0 ? n->emps.keys[n->rcp[n->evr[e->evr0]].emp] : NULL;
}

/* message.lua without what message_defers leaves to the script: the message's fields (written
 * by write_messages), its indexes, every recipient queued, the credits of sends whose outcome
 * came before the record. The same record again changes nothing. */
static void apply_message(struct ledger_core *c, struct ledger_native *n, size_t i, int64_t *ev_ver)
{
    static const char *const sel_dim[3] = {"dep", "veh", "tag"};
    const struct nev *e = &n->ev[i];
    struct nmsg *m = &n->msg[e->mid];
    const char *mid = n->mids.keys[e->mid];
    bool added;
    if (m->msg)
        return;
    if (*ev_ver == 0)
        *ev_ver = n->ver_base + ++n->ver_seq;
    m->ver = *ev_ver;
    m->msg = true;
    m->fresh = i + 1;
    m->cat = arg_dup(n, e->cat);
    m->disp = arg_dup(n, e->disp);
    m->dep = e->dep != SIZE_MAX ? arg_dup(n, e->dep) : NULL;
    lst_buf_reset(&n->num);
    put_i64(&n->num, ulid_ms(mid));
    m->at_s = arena_dup(&n->arena, n->num.data, n->num.len);
    m->only = sole(n, e);
    if (m->at_s == NULL || nindex_get(&n->cats, m->cat, strlen(m->cat), &added) == SIZE_MAX) {
        n->nomem = true;
        return;
    }
    ix_add(n, e->mid, "all");
    ix_add(n, e->mid, "dir:out");
    ix_add_arg(n, e->mid, "kind", e->kind_arg);
    ix_add_arg(n, e->mid, "disp", e->disp);
    for (int d = 0; d < 3; d++) {
        for (size_t k = e->sel0[d]; k < e->sel0[d] + e->nsel[d]; k++)
            ix_add_arg(n, e->mid, sel_dim[d], k);
    }
    skipped(n, e);
    struct obs q = {0}, none = {0};
    obs_set(&q, K_Q, e->at);
    for (size_t j = 0; j < e->nr; j++) {
        size_t r = n->evr[e->evr0 + j];
        struct nemp *em = &n->emp[n->rcp[r].emp];
        n->rcp[r].unlist = n->rcp[r].unlist || n->rcp[r].raw != NULL; /* out_listed */
        merge_after(c, n, r, &q, ev_ver);
        lst_buf_reset(&n->sfx);
        PUT(&n->sfx, "emp:", n->emps.keys[n->rcp[r].emp]);
        if (lst_buf_failed(&n->sfx))
            n->nomem = true;
        else
            ix_add(n, e->mid, n->sfx.data);
        for (size_t k = 0; k < em->dims.len; k += strlen(em->dims.data + k) + 1)
            ix_add(n, e->mid, em->dims.data + k);
    }
    for (size_t j = 0; j < m->nrcp; j++) { /* credits of sends the record came after */
        const struct nrcp *r = &n->rcp[m->rcp[j]];
        if (r->raw != NULL && HAS(&r->s, K_S) && !HAS(&r->s, K_CR))
            merge_after(c, n, m->rcp[j], &none, ev_ver);
    }
    PUT(&n->events, mid, "\n");
}

static void apply_receipt(struct ledger_core *c, struct ledger_native *n, struct nev *e,
                          int64_t *ev_ver)
{
    struct obs o = {0};
    obs_set(&o, e->step, e->at);
    for (size_t j = 0; j < e->ntm && e->step >= 0; j++) {
        const struct ntm *t = &n->tm[index_of(n, &n->tms, n->evtm[e->tm0 + j])];
        if (t->rcp != SIZE_MAX)
            merge_after(c, n, t->rcp, &o, ev_ver);
        else if (t->held != SIZE_MAX)
            apply_held(n, t->held, e->step, e->at);
    }
}

/* An accepted send (apply_sent): its ID mapped in t:, the receipts held under it folded in. */
static void apply_sent(struct ledger_core *c, struct ledger_native *n, struct nev *e,
                       int64_t *ev_ver)
{
    size_t ti = index_of(n, &n->tms, n->evtm[e->tm0]);
    struct ntm *t = &n->tm[ti];
    struct obs o = {0};
    char tid[64] = "";
    obs_set(&o, K_S, e->at);
    o.tm = n->tms.keys[ti];
    if (e->tid_arg != SIZE_MAX) {
        snprintf(tid, sizeof(tid), "%.*s", (int)n->in.len[e->tid_arg],
                 n->in.buf.data + n->in.off[e->tid_arg]);
        o.tid = tid;
    }
    if (e->dup > 0)
        obs_set(&o, K_DUP, e->dup);
    obs_set(&o, K_ATT, e->att);
    if (t->held != SIZE_MAX) {
        struct nheld *hd = &n->held[t->held];
        for (int k = 0; k < 4; k++) {
            if (hd->h[k] >= 0) {
                obs_set(&o, K_D + k, hd->h[k]);
                t->fold = true; /* as sent.lua: DEL and ZREM only when something was held */
            }
        }
        hd->changed = 0; /* folded, not held any more */
        t->held = SIZE_MAX;
    }
    t->rcp = e->rcp;
    t->map = true;
    if (n->rcp[e->rcp].raw == NULL) /* note_out: pending until the message record lists it */
        lst_buf_printf(&n->outs, "%zu\n", e->rcp);
    merge_after(c, n, e->rcp, &o, ev_ver);
}

/* An outbound record (apply_outbound): the recipient queued; a new one's send pending in
 * e:<eid>:out. */
static void apply_outbound(struct ledger_core *c, struct ledger_native *n, struct nev *e,
                           int64_t *ev_ver)
{
    struct obs o = {0};
    if (n->emp[n->rcp[e->rcp].emp].erased)
        return;
    obs_set(&o, K_Q, e->at);
    if (n->rcp[e->rcp].raw == NULL)
        lst_buf_printf(&n->outs, "%zu\n", e->rcp);
    merge_after(c, n, e->rcp, &o, ev_ver);
}

/* Every event in order behind its gate (epilogue.lua); a partition whose event the script
 * must apply leaves the rest of its events to the script too. */
static void compute(struct ledger_core *c, struct ledger_native *n)
{
    for (size_t i = 0; i < n->nev; i++) {
        struct nev *e = &n->ev[i];
        int64_t wm = n->wm[e->field], ev_ver = 0;
        if (n->deferred[e->field]) {
            e->result = R_DEFER;
        } else if (e->off <= wm) {
            e->result = 0;
        } else if (wm < e->prev) {
            e->result = -1;
        } else if (event_bad(n, e)) {
            e->result = -2;
        } else if ((is_send(e) && defers(n, e)) ||
                   (e->kind == LEDGER_S_MESSAGE && message_defers(n, e))) {
            n->deferred[e->field] = true;
            e->result = R_DEFER;
        } else {
            if (e->kind == LEDGER_S_MESSAGE)
                apply_message(c, n, i, &ev_ver);
            else if (e->kind == LEDGER_S_SENT)
                apply_sent(c, n, e, &ev_ver);
            else if (e->kind == LEDGER_S_OUTBOUND)
                apply_outbound(c, n, e, &ev_ver);
            else
                apply_receipt(c, n, e, &ev_ver);
            n->wm[e->field] = e->off;
            n->wm_touched[e->field] = true;
            e->result = 1;
        }
    }
}

/* ---- round 3: MULTI, the writes, EXEC ------------------------------------------------------ */

static lst_err write_states(struct ledger_native *n)
{
    lst_err err = LST_OK;
    for (size_t m = 0; m < n->mids.n && err == LST_OK; m++) {
        const struct nmsg *msg = &n->msg[m];
        cmd_begin(n, "HSET");
        cmd_key(n, "r:", n->mids.keys[m]);
        for (size_t j = 0; j < msg->nrcp; j++) {
            const struct nrcp *r = &n->rcp[msg->rcp[j]];
            if (r->raw != r->raw0) {
                cmd_s(n, strchr(n->rcps.keys[msg->rcp[j]], ' ') + 1);
                cmd_s(n, r->raw);
            }
        }
        if (n->cmd.n > 2)
            err = cmd_end(n);
    }
    return err;
}

struct flags {
    bool on[3];
};
static const char *const status_names[3] = {"failed", "unread", "undelivered"};

static struct flags status_flags(const int64_t *c)
{
    int64_t readers = c[ST_READ] + c[ST_ACK] + c[ST_DECLINED];
    int64_t live = c[0] - c[ST_FAILED];
    return (struct flags){{c[ST_FAILED] > 0, readers < live, c[ST_DELIVERED] + readers < live}};
}

/* The status indexes whose membership the batch flipped (status_set), or all of them for a
 * message whose record the batch applied (status_full). */
static lst_err write_status_index(struct ledger_native *n, size_t m)
{
    const struct nmsg *msg = &n->msg[m];
    struct flags before = status_flags(msg->c0), after = status_flags(msg->c);
    lst_err err = LST_OK;
    for (int i = 0; i < 3 && err == LST_OK; i++) {
        if (before.on[i] == after.on[i] && msg->fresh == 0)
            continue;
        for (int cat = 0; cat < 2 && err == LST_OK; cat++) {
            if (cat == 1 && msg->cat == NULL)
                break;
            cmd_begin(n, after.on[i] ? "ZADD" : "ZREM");
            lst_buf_reset(&n->key);
            lst_buf_printf(&n->key, LEDGER_PREFIX "%s%s%sst:%s",
                           cat ? "xc:" : "x:", cat ? msg->cat : "", cat ? ":" : "",
                           status_names[i]);
            ledger_args_add(&n->cmd, n->key.data, n->key.len);
            if (after.on[i])
                cmd_s(n, msg->at_s != NULL ? msg->at_s : "0");
            cmd_s(n, n->mids.keys[m]);
            err = cmd_end(n);
        }
    }
    return err;
}

/* The counts that moved (HSET with the item's version, HDEL of a count back at zero), then the
 * status indexes. */
static lst_err write_counts(struct ledger_native *n)
{
    lst_err err = LST_OK;
    for (size_t m = 0; m < n->mids.n && err == LST_OK; m++) {
        const struct nmsg *msg = &n->msg[m];
        if (msg->ver == 0)
            continue;
        cmd_begin(n, "HSET");
        cmd_key(n, "m:", n->mids.keys[m]);
        for (int k = 0; k < NCOUNT; k++) {
            if (msg->c[k] != msg->c0[k] && msg->c[k] > 0) {
                cmd_s(n, count_field[k]);
                cmd_i(n, msg->c[k]);
            }
        }
        cmd_s(n, "v");
        cmd_i(n, msg->ver);
        err = cmd_end(n);
        cmd_begin(n, "HDEL");
        cmd_key(n, "m:", n->mids.keys[m]);
        for (int k = 0; k < NCOUNT; k++) {
            if (msg->c[k] != msg->c0[k] && msg->c[k] <= 0)
                cmd_s(n, count_field[k]);
        }
        if (err == LST_OK && n->cmd.n > 2)
            err = cmd_end(n);
        if (err == LST_OK && msg->msg)
            err = write_status_index(n, m);
    }
    return err;
}

/* Lines "a b c\n" of buf, split in place: calls fn with up to three words. */
static lst_err each_line(struct ledger_native *n, struct lst_buf *buf,
                         lst_err (*fn)(struct ledger_native *, char **w, void *), void *ud)
{
    lst_err err = LST_OK;
    char *p = buf->data;
    while (p != NULL && *p != '\0' && err == LST_OK) {
        char *nl = strchr(p, '\n');
        *nl = '\0';
        char *w[3] = {p, NULL, NULL};
        for (int i = 1; i < 3; i++) {
            char *sp = w[i - 1] != NULL ? strchr(w[i - 1], ' ') : NULL;
            if (sp != NULL) {
                *sp = '\0';
                w[i] = sp + 1;
            }
        }
        err = fn(n, w, ud);
        p = nl + 1;
    }
    return err;
}

static lst_err put_event(struct ledger_native *n, char **w, void *ud)
{
    (void)ud;
    cmd_begin(n, "XADD");
    cmd_key(n, "ev", NULL);
    cmd_s(n, "MAXLEN");
    cmd_s(n, "~");
    cmd_s(n, "100000"); /* EV_MAX of prelude.lua */
    cmd_s(n, "*");
    cmd_s(n, "t");
    cmd_s(n, w[1] != NULL ? "status" : "message");
    cmd_s(n, "id");
    cmd_s(n, w[0]);
    if (w[1] != NULL) {
        cmd_s(n, "eid");
        cmd_s(n, w[1]);
        cmd_s(n, "st");
        cmd_s(n, w[2]);
    }
    return cmd_end(n);
}

/* The fields of the messages whose records the batch applied (message.lua's HSET): msg, dir,
 * id, at, the record's pairs, the one recipient it names, the item's version. */
static lst_err write_messages(struct ledger_native *n)
{
    lst_err err = LST_OK;
    for (size_t m = 0; m < n->mids.n && err == LST_OK; m++) {
        const struct nmsg *msg = &n->msg[m];
        if (msg->fresh == 0)
            continue;
        const struct nev *e = &n->ev[msg->fresh - 1];
        cmd_begin(n, "HSET");
        cmd_key(n, "m:", n->mids.keys[m]);
        PUT_ARGS(n, "msg", "1", "dir", "out", "id", n->mids.keys[m], "at", msg->at_s);
        for (size_t a = e->kv0; a < e->kv0 + 2 * e->nkv; a++)
            ledger_args_add(&n->cmd, n->in.buf.data + n->in.off[a], n->in.len[a]);
        if (msg->only != NULL)
            PUT_ARGS(n, "eid", msg->only);
        if (msg->skp != NULL)
            PUT_ARGS(n, "skp", msg->skp);
        cmd_s(n, "v");
        cmd_i(n, msg->ver);
        err = cmd_end(n);
    }
    return err;
}

static int nixe_cmp(const void *a, const void *b)
{
    const struct nixe *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* The messages' index entries, one ZADD per index; their categories in cats. */
static lst_err put_index(struct ledger_native *n)
{
    lst_err err = LST_OK;
    if (n->nix > 1)
        qsort(n->ix, n->nix, sizeof(*n->ix), nixe_cmp);
    for (size_t i = 0; i < n->nix && err == LST_OK;) {
        size_t k = n->ix[i].key;
        cmd_begin(n, "ZADD");
        cmd_key(n, n->ixkeys.keys[k], NULL);
        for (; i < n->nix && n->ix[i].key == k; i++)
            PUT_ARGS(n, n->ix[i].score, n->ix[i].member);
        err = cmd_end(n);
    }
    if (n->cats.n > 0 && err == LST_OK) {
        cmd_begin(n, "SADD");
        cmd_key(n, "cats", NULL);
        for (size_t i = 0; i < n->cats.n; i++)
            cmd_s(n, n->cats.keys[i]);
        err = cmd_end(n);
    }
    for (size_t r = 0; r < n->rcps.n && err == LST_OK; r++) {
        if (!n->rcp[r].unlist)
            continue;
        cmd_begin(n, "ZREM"); /* after put_maps: a send of the batch may have put it there */
        cmd_ekey(n, r, "out");
        cmd_s(n, n->mids.keys[n->rcp[r].msg]);
        err = cmd_end(n);
    }
    return err;
}

/* e:<eid>:dl or :rd: the messages added, then the set trimmed to its newest RRN. */
static lst_err put_rr_set(struct ledger_native *n, size_t e, const char *which, struct lst_buf *b,
                          int64_t rrn)
{
    if (b->len == 0)
        return LST_OK;
    cmd_begin(n, "ZADD");
    lst_buf_reset(&n->key);
    lst_buf_printf(&n->key, LEDGER_PREFIX "e:%s:%s", n->emps.keys[e], which);
    ledger_args_add(&n->cmd, n->key.data, n->key.len);
    for (char *p = b->data; *p != '\0';) {
        char *sp = strchr(p, ' '), *nl = strchr(p, '\n');
        ledger_args_add(&n->cmd, p, (size_t)(sp - p));
        ledger_args_add(&n->cmd, sp + 1, (size_t)(nl - sp - 1));
        p = nl + 1;
    }
    lst_err err = cmd_end(n);
    cmd_begin(n, "ZREMRANGEBYRANK");
    ledger_args_add(&n->cmd, n->key.data, n->key.len);
    cmd_s(n, "0");
    cmd_i(n, -(rrn + 1));
    return err == LST_OK ? cmd_end(n) : err;
}

static lst_err put_first(struct ledger_native *n, char **w, void *ud)
{
    (void)ud;
    cmd_s(n, w[0]);
    cmd_s(n, w[1]);
    return LST_OK;
}

/* One call of the ledger's script after the writes: the events left to it (in their order,
 * behind their gates, which read the watermarks written just before), then the read-receipt
 * rule (rr_update) as an event of kind LEDGER_S_RR, reading the data everything before it left.
 * n->script_at: its reply's place in EXEC's. */
static lst_err put_script(struct ledger_core *c, struct ledger_native *n, size_t queued)
{
    size_t pairs = 0, dirty = 0, deferred = 0;
    for (const char *p = n->firsts.data; p != NULL && *p != '\0'; p = strchr(p, '\n') + 1)
        pairs++;
    for (size_t e = 0; e < n->emps.n; e++)
        dirty += n->emp[e].dirty;
    for (size_t i = 0; i < n->nev; i++)
        deferred += n->ev[i].result == R_DEFER;
    bool rule = c->cfg->read_receipts > 0 && (pairs > 0 || dirty > 0);
    n->script_at = SIZE_MAX;
    if (!rule && deferred == 0)
        return LST_OK;
    cmd_begin(n, "EVALSHA");
    cmd_s(n, lst_redis_script_sha(c->script));
    cmd_s(n, "0");
    cmd_i(n, c->cfg->read_receipts);
    cmd_i(n, c->cfg->reply_window);
    for (size_t i = 0; i < n->nev; i++) {
        const struct nev *e = &n->ev[i];
        for (size_t a = e->argfirst; a < e->argfirst + e->argn && e->result == R_DEFER; a++)
            ledger_args_add(&n->cmd, n->in.buf.data + n->in.off[a], n->in.len[a]);
    }
    lst_err err = LST_OK;
    if (rule) {
        cmd_i(n, LEDGER_S_RR);
        cmd_s(n, "");
        cmd_s(n, "0");
        cmd_s(n, "-1");
        cmd_i(n, (int64_t)(1 + 2 * pairs + dirty));
        cmd_i(n, (int64_t)pairs);
        err = each_line(n, &n->firsts, put_first, NULL);
        for (size_t e = 0; e < n->emps.n; e++) {
            if (n->emp[e].dirty)
                cmd_s(n, n->emps.keys[e]);
        }
    }
    n->script_at = queued;
    return err == LST_OK ? cmd_end(n) : err;
}

/* The sends' Threema message IDs mapped in t:, their folded held receipts removed, new
 * recipients' sends pending in e:<eid>:out (no incoming message to relink: defers). */
static lst_err put_maps(struct ledger_native *n)
{
    lst_err err = LST_OK;
    for (const char *p = n->outs.data; p != NULL && *p != '\0' && err == LST_OK;
         p = strchr(p, '\n') + 1) {
        size_t rcp = (size_t)strtoull(p, NULL, 10);
        const char *key = n->rcps.keys[rcp];
        cmd_begin(n, "ZADD");
        cmd_ekey(n, rcp, "out");
        cmd_i(n, ulid_ms(key));
        ledger_args_add(&n->cmd, key, (size_t)(strchr(key, ' ') - key));
        err = cmd_end(n);
    }
    for (size_t i = 0; i < n->tms.n && err == LST_OK; i++) {
        const struct ntm *t = &n->tm[i];
        if (!t->map)
            continue;
        cmd_begin(n, "HSET");
        cmd_tkey(n, n->tms.keys[i]);
        cmd_s(n, n->tms.keys[i]);
        cmd_s(n, n->rcps.keys[t->rcp]);
        err = cmd_end(n);
        if (err == LST_OK && t->fold) {
            cmd_begin(n, "DEL");
            cmd_key(n, "h:", n->tms.keys[i]);
            err = cmd_end(n);
            cmd_begin(n, "ZREM");
            cmd_key(n, "hx", NULL);
            cmd_s(n, n->tms.keys[i]);
            if (err == LST_OK)
                err = cmd_end(n);
        }
    }
    return err;
}

static lst_err put_held(struct ledger_native *n)
{
    static const char *const steps[4] = {"d", "r", "a", "x"};
    lst_err err = LST_OK;
    for (size_t h = 0; h < n->nheld && err == LST_OK; h++) {
        const struct nheld *hd = &n->held[h];
        const char *tm = n->tms.keys[n->held_tm[h]];
        int64_t least = INT64_MAX;
        if (hd->changed == 0)
            continue;
        cmd_begin(n, "HSET");
        cmd_key(n, "h:", tm);
        for (int k = 0; k < 4; k++) {
            if (hd->changed & (1u << k)) {
                cmd_s(n, steps[k]);
                cmd_i(n, hd->h[k]);
                least = hd->h[k] < least ? hd->h[k] : least;
            }
        }
        err = cmd_end(n);
        cmd_begin(n, "ZADD");
        cmd_key(n, "hx", NULL);
        cmd_s(n, "LT");
        cmd_i(n, least);
        cmd_s(n, tm);
        if (err == LST_OK)
            err = cmd_end(n);
    }
    return err;
}

/* Credits: the "day field" lines summed per key and field, one HINCRBY each. */
static lst_err put_credits(struct ledger_native *n)
{
    struct nindex seen = {0};
    int64_t *count = NULL;
    size_t cap = 0;
    lst_err err = LST_OK;
    for (char *p = n->credits.data; p != NULL && *p != '\0' && err == LST_OK;) {
        char *nl = strchr(p, '\n');
        bool added;
        size_t i = nindex_get(&seen, p, (size_t)(nl - p), &added);
        if (i == SIZE_MAX || !vgrow((void **)&count, &cap, i + 1, sizeof(*count)))
            err = LST_ERR_NOMEM;
        else
            count[i]++;
        p = nl + 1;
    }
    for (size_t i = 0; i < seen.n && err == LST_OK; i++) {
        char *sp = strchr(seen.keys[i], ' ');
        *sp = '\0';
        cmd_begin(n, "HINCRBY");
        cmd_key(n, "cr:", seen.keys[i]);
        cmd_s(n, sp + 1);
        cmd_i(n, count[i]);
        err = cmd_end(n);
    }
    free(count);
    nindex_free(&seen);
    return err;
}

/* The watermarks the batch advanced, and the refill markers they reached (epilogue.lua). */
static lst_err put_watermarks(struct ledger_native *n)
{
    lst_err err = LST_OK;
    cmd_begin(n, "HSET");
    cmd_key(n, "wm", NULL);
    for (size_t f = 0; f < n->fields.n; f++) {
        if (n->wm_touched[f]) {
            cmd_s(n, n->fields.keys[f]);
            cmd_i(n, n->wm[f]);
        }
    }
    if (n->cmd.n > 2)
        err = cmd_end(n);
    cmd_begin(n, "HDEL");
    cmd_key(n, "refill", NULL);
    for (size_t f = 0; f < n->fields.n; f++) {
        if (n->wm_touched[f] && n->mark[f] >= 0 && n->mark[f] <= n->wm[f])
            cmd_s(n, n->fields.keys[f]);
    }
    if (err == LST_OK && n->cmd.n > 2)
        err = cmd_end(n);
    return err;
}

static lst_err queue_writes(struct ledger_core *c, struct ledger_native *n)
{
    lst_err err = lst_redis_pipe_addf(n->pipe, "MULTI");
    if (err == LST_OK)
        err = write_messages(n);
    if (err == LST_OK)
        err = write_states(n);
    if (err == LST_OK)
        err = write_counts(n);
    if (err == LST_OK)
        err = each_line(n, &n->events, put_event, NULL);
    if (err == LST_OK)
        err = put_maps(n);
    if (err == LST_OK)
        err = put_index(n);
    if (err == LST_OK)
        err = put_held(n);
    if (err == LST_OK)
        err = put_credits(n);
    for (size_t e = 0; e < n->emps.n && err == LST_OK && c->cfg->read_receipts > 0; e++) {
        err = put_rr_set(n, e, "dl", &n->emp[e].dl, c->cfg->read_receipts);
        if (err == LST_OK)
            err = put_rr_set(n, e, "rd", &n->emp[e].rd, c->cfg->read_receipts);
    }
    if (err == LST_OK)
        err = put_watermarks(n);
    if (err == LST_OK)
        err = put_script(c, n, lst_redis_pipe_len(n->pipe) - 1);
    if (err == LST_OK)
        err = lst_redis_pipe_addf(n->pipe, "EXEC");
    return err;
}

/* Why a transaction was refused: the first queued command's error (OOM, MISCONF, ...) or
 * EXEC's own. */
static void tx_error(struct ledger_native *n, const redisReply *exec)
{
    size_t last = lst_redis_pipe_len(n->pipe) - 1;
    lst_buf_reset(&n->why);
    for (size_t i = 1; i < last; i++) {
        const redisReply *r = reply(n, i);
        if (r != NULL && r->type == REDIS_REPLY_ERROR) {
            lst_buf_puts(&n->why, r->str);
            return;
        }
    }
    if (exec != NULL && exec->type == REDIS_REPLY_ERROR)
        lst_buf_puts(&n->why, exec->str);
    else if (exec != NULL && exec->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < exec->elements; i++) {
            if (exec->element[i]->type == REDIS_REPLY_ERROR) {
                lst_buf_puts(&n->why, exec->element[i]->str);
                return;
            }
        }
    }
}

/* The script's answer per event left to it (epilogue.lua): 1 or 0, "LGAP ...", "ERR ...". */
static lst_err script_results(struct ledger_native *n, const redisReply *out)
{
    size_t k = 0;
    if (out->type != REDIS_REPLY_ARRAY)
        return LST_ERR_REDIS;
    for (size_t i = 0; i < n->nev; i++) {
        struct nev *e = &n->ev[i];
        if (e->result != R_DEFER)
            continue;
        const redisReply *r = k < out->elements ? out->element[k] : NULL;
        k++;
        if (r != NULL && r->type == REDIS_REPLY_INTEGER) {
            e->result = (int)r->integer;
            continue;
        }
        const char *msg = r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "ERR no reply";
        e->result = strncmp(msg, "LGAP", 4) == 0 ? -1 : -2;
        free(e->why);
        e->why = lst_strdup(msg);
    }
    return LST_OK;
}

/* Round 3 sent: MULTI, the writes, EXEC, on round 1's connection (LST_ERR_STATE: reconnected
 * since, the WATCH is gone). Its answer is read by round3_recv, while the ledger reads the next
 * batch from Kafka. */
static lst_err round3_send(struct ledger_core *c, struct ledger_native *n)
{
    n->pipe = n->pipes[2];
    lst_redis_pipe_reset(n->pipe);
    lst_err err = queue_writes(c, n);
    return err == LST_OK ? lst_redis_pipe_send_once(c->redis, n->pipe, &n->conn) : err;
}

/* Round 3's answer. *again: another writer changed a watched key (EXEC answered nil). */
static lst_err round3_recv(struct ledger_native *n, bool *again)
{
    *again = false;
    lst_err err = lst_redis_pipe_recv_once(n->redis, n->pipe);
    if (err != LST_OK && err != LST_ERR_INVALID)
        return err;
    const redisReply *exec = reply(n, lst_redis_pipe_len(n->pipe) - 1);
    if (exec->type == REDIS_REPLY_NIL) {
        *again = true;
        return LST_OK;
    }
    if (err == LST_OK && exec->type == REDIS_REPLY_ARRAY) {
        /* a command that failed when it ran (the others ran: EXEC does not roll back) */
        for (size_t i = 0; i < exec->elements && err == LST_OK; i++) {
            const redisReply *r = exec->element[i];
            if (r->type == REDIS_REPLY_ERROR)
                err = LST_ERR_INVALID;
        }
    }
    if (err == LST_ERR_INVALID)
        tx_error(n, exec);
    if (err == LST_OK && n->script_at != SIZE_MAX)
        err = script_results(n, exec->element[n->script_at]);
    return err;
}

/* The states the transaction wrote, for the next batches' reads (cache_get). */
static void remember(struct ledger_native *n)
{
    for (size_t i = 0; i < n->rcps.n; i++) {
        const struct nrcp *r = &n->rcp[i];
        if (r->raw != NULL && r->raw != r->raw0 && !r->bad)
            cache_put(n->cache, n->rcps.keys[i], r->raw, &r->s);
    }
}

/* ---- the batch ----------------------------------------------------------------------------- */

/* An attempt that failed: no WATCH may outlive it, and n->why says why. */
static lst_err failed(struct ledger_native *n, lst_err err)
{
    if (n->conn != 0)
        (void)lst_redis_cmdf(n->redis, NULL, "UNWATCH");
    if (n->why.len == 0) {
        char last[256];
        lst_redis_last_error(n->redis, last, sizeof(last));
        lst_buf_puts(&n->why, last[0] != '\0' ? last : lst_strerror(err));
    }
    return err;
}

/* Rounds 1 and 2, the merge, and round 3 sent (n->flying). *again: reconnected between the
 * rounds, read again. */
static lst_err begin(struct ledger_core *c, struct ledger_native *n, bool *again)
{
    n->conn = 0;
    *again = false;
    clear_batch(n);
    lst_buf_reset(&n->why);
    n->window = c->cfg->reply_window;
    lst_err err = index_events(n) ? round1(c, n, &n->conn) : LST_ERR_NOMEM;
    if (err == LST_OK)
        err = round2(c, n, &n->conn);
    if (err == LST_OK) {
        compute(c, n);
        if (c->before_commit != NULL)
            c->before_commit(c->before_commit_arg);
        err = n->nomem ? LST_ERR_NOMEM : round3_send(c, n);
    }
    if (err == LST_OK) {
        n->flying = true;
        return LST_OK;
    }
    *again = err == LST_ERR_STATE;
    return failed(n, err);
}

/* Attempts until one's transaction is in flight, or none is left. */
static void attempts(struct ledger_core *c, struct ledger_native *n)
{
    bool again = true;
    while (again && n->tries < ATTEMPTS) {
        n->tries++;
        n->err = begin(c, n, &again);
    }
    if (again && n->err == LST_OK) {
        n->err = LST_ERR_STATE;
        lst_buf_reset(&n->why);
        lst_buf_puts(&n->why, "other writers kept changing the receipts' keys");
    }
}

void ledger_native_send(struct ledger_core *c, struct ledger_native *n)
{
    n->redis = c->redis;
    n->tries = 0;
    n->err = LST_OK;
    n->flying = false;
    if (n->nev > 0)
        attempts(c, n);
}

lst_err ledger_native_recv(struct ledger_core *c, struct ledger_native *n)
{
    while (n->flying) {
        bool again = false;
        n->flying = false;
        n->err = round3_recv(n, &again);
        if (n->err == LST_OK && !again)
            remember(n);
        else if (n->err != LST_OK)
            n->err = failed(n, n->err);
        if (again)
            attempts(c, n); /* synchronous from here: the next batch is read already */
    }
    return n->err;
}

int ledger_native_outcome(const struct ledger_native *n, lst_err applied, size_t i, size_t *done,
                          const char **why)
{
    const struct nev *e = &n->ev[i];
    *done = e->done;
    *why = n->why.data != NULL ? n->why.data : "";
    if (applied != LST_OK)
        return LEDGER_NATIVE_RETRY;
    if (e->why != NULL)
        *why = e->why;
    else if (e->result == -1)
        *why = "LGAP watermark behind the previous offset";
    else if (e->result == -2)
        *why = "ERR a recipient state that is not the ledger's JSON";
    return e->result;
}
