/* The benchmark's directory and message history (vgen.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgen.h"

static const char *const CATS[] = {"dispo", "dispo", "dispo", "dispo",  "tour", "tour",
                                   "tour",  "info",  "info",  "safety", "hr",   "werkstatt"};
static const char *const DISP[] = {"anna", "ben",   "carla", "dirk",
                                   "emre", "frida", "gero",  "hanna"};
static const char *const DISP_NAME[] = {"Anna Dispo", "Ben Dispo",   "Carla Dispo", "Dirk Dispo",
                                        "Emre Dispo", "Frida Dispo", "Gero Dispo",  "Hanna Dispo"};
static const char *const DISP_DEP[] = {"Dispo-Nord", "Dispo-Nord", "Dispo-Nord", "Dispo-Nord",
                                       "Dispo-Süd",  "Dispo-Süd",  "Dispo-Süd",  "Dispo-Süd"};
static const char *const TEXTS[] = {"Bitte Lieferschein prüfen", "Tour übernehmen",
                                    "Rampe ist frei", "Stau auf der A7, bitte umfahren",
                                    "Neue Sicherheitsunterweisung ab Montag"};

/* splitmix64: a well mixed 64-bit value per (i, j, salt). */
static uint64_t mix(uint64_t i, uint64_t j, uint64_t salt)
{
    uint64_t z = i * UINT64_C(0x9E3779B97F4A7C15) + j * UINT64_C(0xBF58476D1CE4E5B9) + salt;
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* ---- the directory ---- */

enum col {
    C_ID,
    C_FIRST,
    C_LAST,
    C_DEPOT,
    C_DEP,
    C_VEH,
    C_SHIFT,
    C_PHONE,
    C_MAIL,
    C_ACTIVE,
    C_TAGS,
    C_TID,
    C__COUNT
};

static const char *const COLS[C__COUNT] = {"employee_no", "first_name", "last_name", "depot",
                                           "department",  "vehicle",    "shift",     "phone",
                                           "email",       "active",     "tags",      "threema_id"};

/* Splits one line at commas into at most max fields (the demo file has no quoting). */
static size_t split(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        p = strchr(p, ',');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    return n;
}

static char *opt(const char *s)
{
    return s != NULL && s[0] != '\0' ? lst_strdup(s) : NULL;
}

static void push_tags(struct vb_emp *e, char *tags)
{
    char *p = tags;
    while (p != NULL && *p != '\0') {
        char *semi = strchr(p, ';');
        if (semi != NULL)
            *semi = '\0';
        if (*p != '\0')
            lst_strv_push(&e->tags, p);
        p = semi != NULL ? semi + 1 : NULL;
    }
}

static void prefixed(struct vb_emp *e, const char *prefix, const char *v)
{
    char t[128];
    if (v != NULL && v[0] != '\0') {
        snprintf(t, sizeof(t), "%s%s", prefix, v);
        lst_strv_push(&e->tags, t);
    }
}

static void employee_from(struct vb_emp *e, char **f, const int *at, size_t i)
{
    char name[160];
    snprintf(name, sizeof(name), "%s %s", f[at[C_FIRST]], f[at[C_LAST]]);
    e->id = lst_strdup(f[at[C_ID]]);
    e->name = lst_strdup(name);
    e->dep = opt(f[at[C_DEP]]);
    e->veh = opt(f[at[C_VEH]]);
    e->tid = strcmp(f[at[C_TID]], "none") != 0 ? opt(f[at[C_TID]]) : NULL; /* as the import */
    e->phone = opt(f[at[C_PHONE]]);
    e->email = opt(f[at[C_MAIL]]);
    e->depot = opt(f[at[C_DEPOT]]);
    e->shift = opt(f[at[C_SHIFT]]);
    e->active = strcmp(f[at[C_ACTIVE]], "0") != 0 && strcmp(f[at[C_ACTIVE]], "false") != 0;
    e->rr_off = mix(i, 0, 77) % 10 == 0;
    push_tags(e, f[at[C_TAGS]]);
    prefixed(e, "depot:", e->depot);
    prefixed(e, "shift:", e->shift);
}

static bool header(char *line, int *at)
{
    char *f[C__COUNT + 8];
    size_t n = split(line, f, LST_ARRAY_LEN(f));
    for (int c = 0; c < C__COUNT; c++) {
        at[c] = -1;
        for (size_t k = 0; k < n; k++) {
            if (strcmp(f[k], COLS[c]) == 0)
                at[c] = (int)k;
        }
        if (at[c] < 0)
            return false;
    }
    return true;
}

static lst_err read_file(const char *path, char **out)
{
    FILE *fp = fopen(path, "rb");
    lst_err err = LST_ERR_IO;
    char *data = NULL;
    long len = 0;
    if (fp == NULL)
        goto out;
    if (fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0)
        goto out;
    data = malloc((size_t)len + 1);
    if (data == NULL || fread(data, 1, (size_t)len, fp) != (size_t)len)
        goto out;
    data[len] = '\0';
    *out = data;
    data = NULL;
    err = LST_OK;
out:
    free(data);
    if (fp != NULL)
        fclose(fp);
    return err;
}

/* The next non-empty line from *p (cut in place), NULL at the end. */
static char *next_line(char **p)
{
    while (**p == '\r' || **p == '\n')
        (*p)++;
    if (**p == '\0')
        return NULL;
    char *line = *p;
    *p += strcspn(*p, "\r\n");
    if (**p != '\0')
        *(*p)++ = '\0';
    return line;
}

lst_err vb_dir_load(const char *csv_path, size_t max, struct vb_dir *d)
{
    char *text = NULL, *rest = NULL;
    int at[C__COUNT];
    lst_err err = read_file(csv_path, &text);
    memset(d, 0, sizeof(*d));
    if (err != LST_OK)
        goto out;
    err = LST_ERR_INVALID;
    rest = text;
    if (strchr(text, '"') != NULL)
        goto out;
    char *line = next_line(&rest);
    if (line == NULL || !header(line, at))
        goto out;
    d->e = calloc(1024, sizeof(*d->e));
    if (d->e == NULL)
        goto out;
    while ((line = next_line(&rest)) != NULL && d->n < 1024 && (max == 0 || d->n < max)) {
        char *f[C__COUNT + 8];
        if (split(line, f, LST_ARRAY_LEN(f)) < C__COUNT)
            goto out;
        employee_from(&d->e[d->n], f, at, d->n);
        d->n++;
    }
    err = d->n > 0 ? LST_OK : LST_ERR_INVALID;
out:
    free(text);
    return err;
}

void vb_dir_cleanup(struct vb_dir *d)
{
    for (size_t i = 0; d->e != NULL && i < d->n; i++) {
        struct vb_emp *e = &d->e[i];
        free(e->id);
        free(e->name);
        free(e->dep);
        free(e->veh);
        free(e->tid);
        free(e->phone);
        free(e->email);
        free(e->depot);
        free(e->shift);
        lst_strv_cleanup(&e->tags);
    }
    free(d->e);
    memset(d, 0, sizeof(*d));
}

lst_err vb_employee_record(const struct vb_emp *e, int64_t at, struct lst_buf *out)
{
    struct lst_employee r = {0};
    r.employee_id = lst_strdup(e->id);
    r.name = lst_strdup(e->name);
    r.department = e->dep ? lst_strdup(e->dep) : NULL;
    r.vehicle = e->veh ? lst_strdup(e->veh) : NULL;
    r.threema_id = e->tid ? lst_strdup(e->tid) : NULL;
    r.phone = e->phone ? lst_strdup(e->phone) : NULL;
    r.email = e->email ? lst_strdup(e->email) : NULL;
    r.active = e->active;
    r.updated_at = at;
    r.source = lst_strdup("erp");
    for (size_t i = 0; i < e->tags.len; i++)
        lst_strv_push(&r.tags, e->tags.items[i]);
    lst_buf_reset(out);
    lst_err err = lst_employee_encode(&r, out);
    if (err != LST_OK) {
        struct lst_buf why;
        lst_buf_init(&why);
        lst_employee_validate(&r, &why);
        fprintf(stderr, "vgen: employee %s refused: %s\n", e->id, why.data ? why.data : "?");
        lst_buf_cleanup(&why);
    }
    lst_employee_cleanup(&r);
    return err;
}

/* ---- messages ---- */

static void ulid(char out[27], int64_t ms, uint64_t seq)
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    for (int i = 9; i >= 0; i--) {
        out[i] = b32[ms & 31];
        ms >>= 5;
    }
    for (int i = 25; i >= 10; i--) {
        out[i] = b32[seq & 31];
        seq >>= 5;
    }
    out[26] = '\0';
}

static bool chosen(const struct vb_msg *m, size_t emp)
{
    for (size_t k = 0; k < m->n; k++) {
        if (m->r[k].emp == emp)
            return true;
    }
    return false;
}

/* 8 to 32 distinct active employees drawn at random. */
static void explicit_audience(const struct vb_dir *d, uint64_t i, struct vb_msg *m)
{
    size_t want = 8 + mix(i, 1, 3) % 25;
    for (uint64_t j = 0; m->n < want && j < 4 * want + 64; j++) {
        size_t e = mix(i, j, 5) % d->n;
        if (d->e[e].active && !chosen(m, e))
            m->r[m->n++].emp = e;
    }
}

/* Everyone active of one department within one depot (the selector departments + tags). */
static void selector_audience(const struct vb_dir *d, uint64_t i, struct vb_msg *m)
{
    const struct vb_emp *pick = &d->e[mix(i, 2, 7) % d->n];
    if (pick->dep == NULL || pick->depot == NULL)
        return;
    for (size_t e = 0; e < d->n && m->n < VB_MAX_RCPT; e++) {
        const struct vb_emp *c = &d->e[e];
        if (c->active && c->dep != NULL && c->depot != NULL && strcmp(c->dep, pick->dep) == 0 &&
            strcmp(c->depot, pick->depot) == 0)
            m->r[m->n++].emp = e;
    }
    if (m->n >= 3) {
        m->sel_dep = pick->dep;
        m->sel_tag = pick->tags.items[pick->tags.len - 2]; /* depot:<depot> */
    } else {
        m->n = 0;
    }
}

static void outcome(const struct vb_dir *d, uint64_t i, size_t k, struct vb_rcpt *r)
{
    uint64_t h = mix(i, k, 11);
    unsigned p = (unsigned)(h % 100);
    int64_t at = r->q;
    /* random like the Gateway's IDs, so the t: buckets (prelude.lua's tkey) fill evenly */
    snprintf(r->tmid, sizeof(r->tmid), "%016llx", (unsigned long long)mix(i, k, 0x7417));
    if (p < 2) {
        r->failed = true;
        r->f = at + 800 + (int64_t)(h >> 8) % 1000;
        return;
    }
    r->s = at + 1000 + (int64_t)(h >> 8) % 2000;
    if (p < 7)
        return;
    r->d = r->s + 2000 + (int64_t)(h >> 16) % 60000;
    if (d->e[r->emp].rr_off || p < 30)
        return;
    r->r = r->d + 5000 + (int64_t)(h >> 24) % 600000;
    if (p >= 98)
        r->x = r->r + 3000 + (int64_t)(h >> 32) % 60000;
    else if (p >= 88)
        r->a = r->r + 3000 + (int64_t)(h >> 32) % 60000;
}

void vb_msg_make(const struct vb_dir *d, uint64_t i, struct vb_msg *m)
{
    uint64_t h = mix(i, 0, 1);
    size_t disp = (size_t)(h % LST_ARRAY_LEN(DISP));
    memset(m, 0, sizeof(*m));
    m->at = VB_T0 + (int64_t)i * VB_STEP_MS + (int64_t)((h >> 8) % 5000);
    ulid(m->mid, m->at, i + 1);
    m->disp = DISP[disp];
    m->disp_name = DISP_NAME[disp];
    m->dep = DISP_DEP[disp];
    m->cat = CATS[(h >> 16) % LST_ARRAY_LEN(CATS)];
    snprintf(m->text, sizeof(m->text), "%s (%llu)", TEXTS[(h >> 24) % LST_ARRAY_LEN(TEXTS)],
             (unsigned long long)(i % 97));
    if ((h >> 32) % 2 == 0)
        selector_audience(d, i, m);
    if (m->n == 0)
        explicit_audience(d, i, m);
    for (size_t k = 0; k < m->n; k++) {
        m->r[k].q = m->at;
        outcome(d, i, k, &m->r[k]);
    }
}

const char *vb_rcpt_state(const struct vb_rcpt *r)
{
    if (r->a && r->x)
        return r->x >= r->a ? "declined" : "acknowledged";
    if (r->a)
        return "acknowledged";
    if (r->x)
        return "declined";
    if (r->r)
        return "read";
    if (r->d)
        return "delivered";
    if (r->s)
        return "sent";
    if (r->f)
        return "failed";
    return "queued";
}
