/* The directory of simulated users, loaded once from the ERP export (demo/erp-export.csv).
 *
 * Everything is deterministic so that tests, the demo and the benchmarks agree across runs:
 *   - the key pair: crypto_generichash(seed | "key" | employee_no) -> crypto_box_seed_keypair;
 *   - the Threema ID (unless the CSV gives one): crypto_generichash(seed | "id" | employee_no),
 *     each byte mod 36 -> [0-9A-Z];
 *   - the profile (read receipts off, text only): a hash of the ID compared with the shares.
 * threema_id "none" in the CSV marks a driver who does not use Threema: not in the directory,
 * so every lookup of their phone or e-mail answers 404. */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lst/log.h"
#include "lst/threema.h"
#include "sim.h"

#define MAX_CSV_BYTES (64 * 1024 * 1024)
#define MAX_COLUMNS   64

static const char id_alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* ---- CSV (RFC 4180: quoted fields, "" inside quotes, CRLF or LF) ---- */

struct csv {
    const char *p, *end;
    struct lst_buf field;
};

/* Reads one field into c->field; *eol is set when the record ends after it. False at EOF. */
static bool csv_field(struct csv *c, bool *eol)
{
    lst_buf_reset(&c->field);
    *eol = false;
    if (c->p >= c->end)
        return false;
    bool quoted = *c->p == '"';
    if (quoted)
        c->p++;
    while (c->p < c->end) {
        char ch = *c->p;
        if (quoted && ch == '"') {
            if (c->p + 1 < c->end && c->p[1] == '"') {
                lst_buf_append(&c->field, "\"", 1);
                c->p += 2;
                continue;
            }
            quoted = false;
            c->p++;
            continue;
        }
        if (!quoted && (ch == ',' || ch == '\n' || ch == '\r'))
            break;
        lst_buf_append(&c->field, &ch, 1);
        c->p++;
    }
    if (c->p < c->end && *c->p == ',') {
        c->p++;
        return true;
    }
    if (c->p < c->end && *c->p == '\r')
        c->p++;
    if (c->p < c->end && *c->p == '\n')
        c->p++;
    *eol = true;
    return true;
}

/* Reads one record; fields[i] are owned copies. Returns the count (0 at EOF). */
static size_t csv_record(struct csv *c, char **fields, size_t max)
{
    size_t n = 0;
    bool eol = false;
    while (!eol && csv_field(c, &eol)) {
        if (n < max)
            fields[n++] = lst_strdup(c->field.data ? c->field.data : "");
    }
    return n;
}

static void free_fields(char **fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(fields[i]);
        fields[i] = NULL;
    }
}

static lst_err read_file(const char *path, struct lst_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        LST_ERROR("sim.directory.open", "cannot open the directory CSV %s", path);
        return LST_ERR_IO;
    }
    lst_err err = LST_OK;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (out->len + n > MAX_CSV_BYTES) {
            err = LST_ERR_TOO_LARGE;
            break;
        }
        lst_buf_append(out, chunk, n);
    }
    if (ferror(f) || lst_buf_failed(out))
        err = err != LST_OK ? err : LST_ERR_IO;
    fclose(f);
    return err;
}

/* ---- derivations ---- */

static void derive(const char *seed, const char *what, const char *employee_no, unsigned char *out,
                   size_t outlen)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, outlen);
    crypto_generichash_update(&st, (const unsigned char *)seed, strlen(seed));
    crypto_generichash_update(&st, (const unsigned char *)"|", 1);
    crypto_generichash_update(&st, (const unsigned char *)what, strlen(what));
    crypto_generichash_update(&st, (const unsigned char *)"|", 1);
    crypto_generichash_update(&st, (const unsigned char *)employee_no, strlen(employee_no));
    crypto_generichash_final(&st, out, outlen);
}

/* A number in [0, 1) from a hash of the ID: the same user gets the same profile every run. */
static double profile_draw(const char *seed, const char *what, const char *id)
{
    unsigned char h[4];
    derive(seed, what, id, h, sizeof(h));
    uint32_t v = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    return (double)v / 4294967296.0;
}

struct columns {
    int employee_no, first_name, phone, email, threema_id;
};

static int column_of(char **hdr, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(hdr[i], name) == 0)
            return (int)i;
    }
    return -1;
}

static const char *field_at(char **fields, size_t n, int col)
{
    return col >= 0 && (size_t)col < n ? fields[col] : "";
}

static lst_err fill_contact(struct sim_user *u, const char *phone, const char *email)
{
    struct lst_buf norm;
    lst_buf_init(&norm);
    lst_err err = LST_OK;
    if (phone[0] != '\0') {
        err = lst_threema_normalize_phone(phone, &norm);
        if (err == LST_OK)
            u->phone = lst_strdup(norm.data);
        if (err == LST_OK)
            err = lst_threema_hash_phone(phone, u->phone_hash);
    }
    if (err == LST_OK && email[0] != '\0') {
        err = lst_threema_normalize_email(email, &norm);
        if (err == LST_OK)
            u->email = lst_strdup(norm.data);
        if (err == LST_OK)
            err = lst_threema_hash_email(email, u->email_hash);
    }
    lst_buf_cleanup(&norm);
    return err;
}

static lst_err make_user(struct sim_user *u, char **f, size_t n, const struct columns *c,
                         const char *seed)
{
    const char *emp = field_at(f, n, c->employee_no);
    const char *given = field_at(f, n, c->threema_id);
    if (emp[0] == '\0' || strlen(emp) >= sizeof(u->employee_no))
        return LST_ERR_INVALID;
    snprintf(u->employee_no, sizeof(u->employee_no), "%s", emp);
    snprintf(u->nickname, sizeof(u->nickname), "%s", field_at(f, n, c->first_name));
    if (given[0] != '\0') {
        if (!lst_threema_id_valid(given, strlen(given)) || given[0] == '*')
            return LST_ERR_INVALID;
        for (size_t i = 0; i < SIM_ID_LEN; i++)
            u->id[i] = (char)toupper((unsigned char)given[i]);
    } else {
        unsigned char h[SIM_ID_LEN];
        derive(seed, "id", emp, h, sizeof(h));
        for (size_t i = 0; i < SIM_ID_LEN; i++)
            u->id[i] = id_alphabet[h[i] % 36];
    }
    u->id[SIM_ID_LEN] = '\0';
    unsigned char key_seed[crypto_box_SEEDBYTES];
    derive(seed, "key", emp, key_seed, sizeof(key_seed));
    crypto_box_seed_keypair(u->pk, u->sk, key_seed);
    sodium_memzero(key_seed, sizeof(key_seed));
    return fill_contact(u, field_at(f, n, c->phone), field_at(f, n, c->email));
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct sim_user *)a)->id, ((const struct sim_user *)b)->id);
}

static lst_err check_unique(struct sim_directory *d)
{
    for (size_t i = 1; i < d->n; i++) {
        if (strcmp(d->users[i - 1].id, d->users[i].id) == 0) {
            LST_ERROR("sim.directory.duplicate", "Threema ID %s appears twice (employees %s, %s)",
                      d->users[i].id, d->users[i - 1].employee_no, d->users[i].employee_no);
            return LST_ERR_INVALID;
        }
    }
    return LST_OK;
}

static lst_err parse_rows(struct sim_directory *d, struct csv *c, const struct columns *cols,
                          const char *seed)
{
    char *f[MAX_COLUMNS] = {0};
    size_t n, line = 1;
    lst_err err = LST_OK;
    while (err == LST_OK && (n = csv_record(c, f, MAX_COLUMNS)) > 0) {
        line++;
        const char *tid = field_at(f, n, cols->threema_id);
        bool blank = n == 1 && f[0][0] == '\0';
        if (!blank && strcasecmp(tid, "none") != 0) {
            struct sim_user *grown = realloc(d->users, (d->n + 1) * sizeof(*grown));
            if (grown == NULL) {
                err = LST_ERR_NOMEM;
                break;
            }
            d->users = grown;
            memset(&d->users[d->n], 0, sizeof(d->users[0]));
            d->n++;
            err = make_user(&d->users[d->n - 1], f, n, cols, seed);
            if (err != LST_OK)
                LST_ERROR("sim.directory.row", "line %zu of the directory CSV is invalid: %s", line,
                          lst_strerror(err));
        }
        free_fields(f, n);
    }
    return err;
}

static void assign_profiles(struct sim_directory *d, const char *seed, double no_read_share,
                            double text_only_share)
{
    for (size_t i = 0; i < d->n; i++) {
        struct sim_user *u = &d->users[i];
        u->index = i;
        u->read_receipts = profile_draw(seed, "read-receipts", u->id) >= no_read_share;
        u->text_only = profile_draw(seed, "text-only", u->id) < text_only_share;
    }
}

lst_err sim_directory_load(struct sim_directory *d, const char *path, const char *seed,
                           double no_read_receipts_share, double text_only_share)
{
    struct lst_buf data;
    struct csv c = {0};
    char *hdr[MAX_COLUMNS] = {0};
    size_t nh = 0;
    lst_buf_init(&data);
    lst_buf_init(&c.field);
    memset(d, 0, sizeof(*d));
    lst_err err = read_file(path, &data);
    if (err != LST_OK)
        goto out;
    c.p = data.data ? data.data : "";
    c.end = c.p + data.len;
    if (data.len >= 3 && memcmp(c.p, "\xEF\xBB\xBF", 3) == 0)
        c.p += 3; /* a UTF-8 BOM, as spreadsheet exports write it */
    nh = csv_record(&c, hdr, MAX_COLUMNS);
    struct columns cols = {
        .employee_no = column_of(hdr, nh, "employee_no"),
        .first_name = column_of(hdr, nh, "first_name"),
        .phone = column_of(hdr, nh, "phone"),
        .email = column_of(hdr, nh, "email"),
        .threema_id = column_of(hdr, nh, "threema_id"),
    };
    if (cols.employee_no < 0) {
        LST_ERROR("sim.directory.header", "%s has no employee_no column", path);
        err = LST_ERR_INVALID;
        goto out;
    }
    err = parse_rows(d, &c, &cols, seed);
    if (err != LST_OK)
        goto out;
    qsort(d->users, d->n, sizeof(d->users[0]), by_id);
    err = check_unique(d);
    assign_profiles(d, seed, no_read_receipts_share, text_only_share);
    LST_INFO("sim.directory.loaded", "%zu simulated users from %s", d->n, path);
out:
    free_fields(hdr, nh);
    lst_buf_cleanup(&c.field);
    lst_buf_cleanup(&data);
    if (err != LST_OK)
        sim_directory_cleanup(d);
    return err;
}

void sim_directory_cleanup(struct sim_directory *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->users[i].phone);
        free(d->users[i].email);
        sodium_memzero(d->users[i].sk, sizeof(d->users[i].sk));
    }
    free(d->users);
    d->users = NULL;
    d->n = 0;
}

const struct sim_user *sim_directory_by_id(const struct sim_directory *d, const char *id)
{
    struct sim_user key;
    if (strlen(id) != SIM_ID_LEN)
        return NULL;
    for (size_t i = 0; i <= SIM_ID_LEN; i++)
        key.id[i] = (char)toupper((unsigned char)id[i]);
    return bsearch(&key, d->users, d->n, sizeof(d->users[0]), by_id);
}

const struct sim_user *sim_directory_by_phone(const struct sim_directory *d, const char *phone)
{
    struct lst_buf norm;
    const struct sim_user *found = NULL;
    lst_buf_init(&norm);
    if (lst_threema_normalize_phone(phone, &norm) == LST_OK) {
        for (size_t i = 0; i < d->n && found == NULL; i++) {
            if (d->users[i].phone != NULL && strcmp(d->users[i].phone, norm.data) == 0)
                found = &d->users[i];
        }
    }
    lst_buf_cleanup(&norm);
    return found;
}

const struct sim_user *sim_directory_by_email(const struct sim_directory *d, const char *email)
{
    struct lst_buf norm;
    const struct sim_user *found = NULL;
    lst_buf_init(&norm);
    if (lst_threema_normalize_email(email, &norm) == LST_OK) {
        for (size_t i = 0; i < d->n && found == NULL; i++) {
            if (d->users[i].email != NULL && strcmp(d->users[i].email, norm.data) == 0)
                found = &d->users[i];
        }
    }
    lst_buf_cleanup(&norm);
    return found;
}

const struct sim_user *sim_directory_by_phone_hash(const struct sim_directory *d, const char *hash)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->users[i].phone != NULL && strcasecmp(d->users[i].phone_hash, hash) == 0)
            return &d->users[i];
    }
    return NULL;
}

const struct sim_user *sim_directory_by_email_hash(const struct sim_directory *d, const char *hash)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->users[i].email != NULL && strcasecmp(d->users[i].email_hash, hash) == 0)
            return &d->users[i];
    }
    return NULL;
}

const char *sim_user_capabilities(const struct sim_user *u)
{
    return u->text_only ? "text" : "text,image,video,audio,file";
}
