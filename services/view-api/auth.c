/* Bearer tokens: the token file holds only the sha256 of each token, so a leaked file does
 * not hand out access. A presented token is hashed and compared with every entry in constant
 * time (sodium_memcmp), and the loop never stops early, so timing tells nothing about which
 * entry (or how much of a hash) matched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "lst/log.h"
#include "view_api.h"

#define TOKEN_FILE_MAX (1024 * 1024)

static bool next_field(char **p, char **out)
{
    char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0')
        return false;
    *out = s;
    while (*s != '\0' && *s != ' ' && *s != '\t')
        s++;
    if (*s != '\0')
        *s++ = '\0';
    *p = s;
    return true;
}

static lst_err add_token(struct va_tokens *t, const struct va_token *tok)
{
    struct va_token *items = realloc(t->items, (t->n + 1) * sizeof(*items));
    if (items == NULL)
        return LST_ERR_NOMEM;
    t->items = items;
    t->items[t->n++] = *tok;
    return LST_OK;
}

/* The optional display name: the rest of the line after the department, blanks around it
 * dropped, blanks inside kept ("Anna Schmidt"). It goes into every lst.message as
 * dispatcher_name, so it must pass the record's rules there: a name the encoder refused would
 * fail every send of this token, found only then. NULL: none; *err on a bad one. */
static char *display_name(char *rest, const char **err)
{
    rest += strspn(rest, " \t");
    size_t len = strlen(rest);
    while (len > 0 && (rest[len - 1] == ' ' || rest[len - 1] == '\t'))
        len--;
    rest[len] = '\0';
    if (len == 0)
        return NULL;
    if (len > LST_NAME_MAX) {
        *err = "display name longer than 256 bytes";
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)rest[i] < 0x20 || rest[i] == 0x7f) {
            *err = "display name with a control character (a tab?)";
            return NULL;
        }
    }
    if (!lst_utf8_valid(rest, len)) {
        *err = "display name is not UTF-8";
        return NULL;
    }
    char *name = lst_strdup(rest);
    if (name == NULL)
        *err = "out of memory";
    return name;
}

static const char *parse_line(char *line, struct va_token *tok)
{
    char *hex, *role, *user, *dep;
    const char *err = NULL;
    size_t bin_len = 0;
    if (!next_field(&line, &hex) || !next_field(&line, &role) || !next_field(&line, &user) ||
        !next_field(&line, &dep))
        return "expected '<sha256 hex> <role> <user> <department|-> [<display name>]'";
    if (strlen(hex) != 2 * VA_TOKEN_HASH_LEN ||
        sodium_hex2bin(tok->hash, sizeof(tok->hash), hex, strlen(hex), NULL, &bin_len, NULL) != 0 ||
        bin_len != VA_TOKEN_HASH_LEN)
        return "the hash must be 64 hex digits (sha256 of the token)";
    if (strcmp(role, "dispatcher") == 0)
        tok->role = VA_ROLE_DISPATCHER;
    else if (strcmp(role, "admin") == 0)
        tok->role = VA_ROLE_ADMIN;
    else
        return "role must be dispatcher or admin";
    if (strlen(user) > LST_USER_ID_MAX)
        return "user id too long";
    tok->name = display_name(line, &err);
    if (err != NULL)
        return err;
    tok->user = lst_strdup(user);
    tok->department = strcmp(dep, "-") == 0 ? NULL : lst_strdup(dep);
    return NULL;
}

lst_err va_tokens_parse(struct va_tokens *t, const char *text, struct lst_buf *why)
{
    lst_err result = LST_OK;
    size_t total = strlen(text);
    char *copy = lst_strdup(text);
    char *save = copy;
    int lineno = 0;
    if (copy == NULL)
        return LST_ERR_NOMEM;
    while (save != NULL && *save != '\0') {
        char *line = save;
        char *nl = strchr(line, '\n');
        save = nl != NULL ? nl + 1 : NULL;
        if (nl != NULL)
            *nl = '\0';
        lineno++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[len - 1] = '\0';
        char *p = line + strspn(line, " \t");
        if (*p == '\0' || *p == '#')
            continue;
        struct va_token tok = {0};
        const char *err = parse_line(p, &tok);
        if (err == NULL && (tok.user == NULL || add_token(t, &tok) != LST_OK))
            err = "out of memory";
        if (err != NULL) {
            free(tok.user);
            free(tok.department);
            free(tok.name);
            lst_buf_printf(why, "token file line %d: %s", lineno, err);
            result = LST_ERR_CONFIG;
            goto out;
        }
    }
out:
    sodium_memzero(copy, total);
    free(copy);
    return result;
}

lst_err va_tokens_load(struct va_tokens *t, const char *path, struct lst_buf *why)
{
    lst_err result = LST_OK;
    struct lst_buf text;
    char chunk[4096];
    FILE *f;
    lst_buf_init(&text);
    if (path == NULL)
        return LST_OK;
    f = fopen(path, "r");
    if (f == NULL) {
        lst_buf_printf(why, "%s: %s", path, strerror(errno));
        return LST_ERR_CONFIG;
    }
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (text.len + n > TOKEN_FILE_MAX) {
            lst_buf_printf(why, "%s: larger than %d bytes", path, TOKEN_FILE_MAX);
            result = LST_ERR_CONFIG;
            goto out;
        }
        lst_buf_append(&text, chunk, n);
    }
    if (ferror(f)) {
        lst_buf_printf(why, "%s: read error", path);
        result = LST_ERR_CONFIG;
        goto out;
    }
    result =
        lst_buf_failed(&text) ? LST_ERR_NOMEM : va_tokens_parse(t, text.data ? text.data : "", why);
out:
    fclose(f);
    lst_buf_cleanup(&text);
    return result;
}

void va_tokens_cleanup(struct va_tokens *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->items[i].user);
        free(t->items[i].department);
        free(t->items[i].name);
    }
    free(t->items);
    t->items = NULL;
    t->n = 0;
}

const struct va_token *va_tokens_find(const struct va_tokens *t, const char *token, size_t len)
{
    unsigned char h[VA_TOKEN_HASH_LEN];
    const struct va_token *found = NULL;
    crypto_hash_sha256(h, (const unsigned char *)token, len);
    for (size_t i = 0; i < t->n; i++) {
        /* no early exit: every entry is compared */
        if (sodium_memcmp(h, t->items[i].hash, sizeof(h)) == 0 && found == NULL)
            found = &t->items[i];
    }
    return found;
}
