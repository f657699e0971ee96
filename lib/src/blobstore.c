#include "lst/blobstore.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lst/log.h"

#define META_SUFFIX   ".json"
#define META_READ_MAX (16 * 1024)
#define DIR_MODE      0750
#define FILE_MODE     0640

struct lst_blobstore {
    char *root;
};

void lst_blob_meta_cleanup(struct lst_blob_meta *m)
{
    if (m == NULL)
        return;
    free(m->mime);
    free(m->filename);
    free(m->source);
    memset(m, 0, sizeof(*m));
}

bool lst_blobstore_ref_valid(const char *ref)
{
    if (ref == NULL)
        return false;
    for (size_t i = 0; i < LST_BLOBSTORE_REF_HEX; i++) {
        char c = ref[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return ref[LST_BLOBSTORE_REF_HEX] == '\0';
}

void lst_blobstore_ref_of(const void *data, size_t len, char ref[LST_BLOBSTORE_REF_HEX + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, data, len);
    sodium_bin2hex(ref, LST_BLOBSTORE_REF_HEX + 1, h, sizeof(h));
}

/* ---- paths and directories ---- */

/* "<root>/<ab>" or "<root>/<ab>/<ref><suffix>" (sub == false: the fan-out directory). */
static lst_err path_of(const struct lst_blobstore *bs, const char *ref, bool file,
                       const char *suffix, char *out, size_t cap)
{
    int n = file ? snprintf(out, cap, "%s/%.2s/%s%s", bs->root, ref, ref, suffix)
                 : snprintf(out, cap, "%s/%.2s", bs->root, ref);
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0)
            out[0] = '\0';
        return LST_ERR_TOO_LARGE;
    }
    return LST_OK;
}

lst_err lst_blobstore_path(const struct lst_blobstore *bs, const char *ref, char *out, size_t cap)
{
    if (!lst_blobstore_ref_valid(ref))
        return LST_ERR_INVALID;
    return path_of(bs, ref, true, "", out, cap);
}

/* mkdir -p: creates every missing component (an existing one is fine). */
static lst_err mkdirs(const char *dir)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s", dir);
    if (n <= 0 || (size_t)n >= sizeof(tmp))
        return LST_ERR_TOO_LARGE;
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, DIR_MODE) != 0 && errno != EEXIST)
            return LST_ERR_IO;
        *p = '/';
    }
    if (mkdir(tmp, DIR_MODE) != 0 && errno != EEXIST)
        return LST_ERR_IO;
    return LST_OK;
}

/* fsync of a directory makes a rename in it durable. */
static lst_err sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return LST_ERR_IO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? LST_OK : LST_ERR_IO;
}

static lst_err write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return LST_ERR_IO;
        p += n;
        len -= (size_t)n;
    }
    return LST_OK;
}

/* Writes data to final (in dir) through a unique temporary file: write, fsync, rename,
 * fsync dir. A concurrent writer of the same content-addressed file is harmless: both write
 * the same bytes and rename is atomic. */
static lst_err write_atomic(const char *dir, const char *final, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    unsigned char rnd[8];
    char rhex[sizeof(rnd) * 2 + 1];
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(rhex, sizeof(rhex), rnd, sizeof(rnd));
    int n = snprintf(tmp, sizeof(tmp), "%s/.tmp-%ld-%s", dir, (long)getpid(), rhex);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return LST_ERR_TOO_LARGE;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, FILE_MODE);
    if (fd < 0)
        return LST_ERR_IO;
    lst_err err = write_all(fd, data, len);
    if (err == LST_OK && fsync(fd) != 0)
        err = LST_ERR_IO;
    if (close(fd) != 0 && err == LST_OK)
        err = LST_ERR_IO;
    if (err == LST_OK && rename(tmp, final) != 0)
        err = LST_ERR_IO;
    if (err != LST_OK)
        unlink(tmp);
    else
        err = sync_dir(dir);
    return err;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- lifecycle ---- */

lst_err lst_blobstore_create(const char *dir, struct lst_blobstore **out)
{
    lst_err err = LST_ERR_INVALID;
    struct lst_blobstore *bs = NULL;
    *out = NULL;
    if (dir == NULL || dir[0] == '\0')
        goto out;
    err = LST_ERR_NOMEM;
    bs = calloc(1, sizeof(*bs));
    if (bs == NULL || (bs->root = lst_strdup(dir)) == NULL)
        goto out;
    size_t len = strlen(bs->root);
    while (len > 1 && bs->root[len - 1] == '/')
        bs->root[--len] = '\0';
    err = mkdirs(bs->root);
    if (err == LST_OK) {
        /* Probe: a file can be created (and removed) in the root. */
        char probe[PATH_MAX];
        int n = snprintf(probe, sizeof(probe), "%s/.probe-%ld", bs->root, (long)getpid());
        int fd = n > 0 && (size_t)n < sizeof(probe)
                     ? open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, FILE_MODE)
                     : -1;
        if (fd < 0) {
            err = LST_ERR_IO;
        } else {
            close(fd);
            unlink(probe);
        }
    }
    if (err != LST_OK) {
        LST_ERROR("blobstore.open_failed", "blob store %s is not writable: %s", bs->root,
                  strerror(errno));
        goto out;
    }
    *out = bs;
    bs = NULL;
out:
    lst_blobstore_destroy(bs);
    return err;
}

void lst_blobstore_destroy(struct lst_blobstore *bs)
{
    if (bs == NULL)
        return;
    free(bs->root);
    free(bs);
}

const char *lst_blobstore_dir(const struct lst_blobstore *bs)
{
    return bs->root;
}

/* ---- put ---- */

static bool meta_str_ok(const char *s, size_t max, bool required)
{
    if (s == NULL)
        return !required;
    size_t len = strlen(s);
    return len > 0 && len <= max && lst_utf8_valid(s, len);
}

static lst_err meta_json(const struct lst_blob_desc *m, const char *ref, size_t size,
                         struct lst_buf *out)
{
    int64_t created = m->created_at > 0 ? m->created_at : lst_wall_ms();
    lst_buf_printf(out, "{\"v\":1,\"sha256\":\"%s\",\"mime\":", ref);
    lst_buf_json_str(out, m->mime, strlen(m->mime));
    lst_buf_printf(out, ",\"size\":%zu", size);
    if (m->filename != NULL) {
        lst_buf_puts(out, ",\"filename\":");
        lst_buf_json_str(out, m->filename, strlen(m->filename));
    }
    if (m->source != NULL) {
        lst_buf_puts(out, ",\"source\":");
        lst_buf_json_str(out, m->source, strlen(m->source));
    }
    lst_buf_printf(out, ",\"created_at\":%lld}\n", (long long)created);
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}

lst_err lst_blobstore_put(struct lst_blobstore *bs, const void *data, size_t len,
                          const struct lst_blob_desc *meta, char ref[LST_BLOBSTORE_REF_HEX + 1])
{
    char dir[PATH_MAX], path[PATH_MAX], mpath[PATH_MAX];
    struct lst_buf js;
    lst_buf_init(&js);
    ref[0] = '\0';
    lst_err err = LST_ERR_INVALID;
    if (meta == NULL || !meta_str_ok(meta->mime, LST_BLOBSTORE_MIME_MAX, true) ||
        !meta_str_ok(meta->filename, LST_BLOBSTORE_NAME_MAX, false) ||
        !meta_str_ok(meta->source, LST_BLOBSTORE_NAME_MAX, false) || (data == NULL && len > 0))
        goto out;
    char r[LST_BLOBSTORE_REF_HEX + 1];
    lst_blobstore_ref_of(data != NULL ? data : "", len, r);
    err = path_of(bs, r, false, "", dir, sizeof(dir));
    if (err == LST_OK)
        err = path_of(bs, r, true, "", path, sizeof(path));
    if (err == LST_OK)
        err = path_of(bs, r, true, META_SUFFIX, mpath, sizeof(mpath));
    if (err == LST_OK)
        err = mkdirs(dir);
    if (err == LST_OK && !file_exists(path))
        err = write_atomic(dir, path, data != NULL ? data : "", len);
    if (err == LST_OK && !file_exists(mpath)) {
        err = meta_json(meta, r, len, &js);
        if (err == LST_OK)
            err = write_atomic(dir, mpath, js.data, js.len);
    }
    if (err == LST_OK)
        memcpy(ref, r, sizeof(r));
    else if (err == LST_ERR_IO)
        LST_ERROR("blobstore.write_failed", "storing a blob of %zu bytes in %s failed: %s", len,
                  bs->root, strerror(errno));
out:
    lst_buf_cleanup(&js);
    return err;
}

/* ---- reading ---- */

bool lst_blobstore_exists(struct lst_blobstore *bs, const char *ref)
{
    char path[PATH_MAX];
    return lst_blobstore_path(bs, ref, path, sizeof(path)) == LST_OK && file_exists(path);
}

/* Reads a whole file of at most max bytes (0: no limit) into out (replaced). */
static lst_err read_file(const char *path, size_t max, struct lst_buf *out)
{
    lst_buf_reset(out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? LST_ERR_NOT_FOUND : LST_ERR_IO;
    lst_err err = LST_OK;
    struct stat st;
    if (fstat(fd, &st) != 0)
        err = LST_ERR_IO;
    else if (max > 0 && (uintmax_t)st.st_size > (uintmax_t)max)
        err = LST_ERR_TOO_LARGE;
    char chunk[64 * 1024];
    while (err == LST_OK) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = LST_ERR_IO;
        else if (n == 0)
            break;
        else if (max > 0 && out->len + (size_t)n > max)
            err = LST_ERR_TOO_LARGE; /* grew while we read */
        else
            err = lst_buf_append(out, chunk, (size_t)n);
    }
    close(fd);
    if (err != LST_OK)
        lst_buf_reset(out);
    return err;
}

lst_err lst_blobstore_get(struct lst_blobstore *bs, const char *ref, size_t max_len,
                          struct lst_buf *out)
{
    char path[PATH_MAX], check[LST_BLOBSTORE_REF_HEX + 1];
    lst_err err = lst_blobstore_path(bs, ref, path, sizeof(path));
    if (err == LST_OK)
        err = read_file(path, max_len, out);
    if (err == LST_OK) {
        lst_blobstore_ref_of(out->data != NULL ? out->data : "", out->len, check);
        if (sodium_memcmp(check, ref, LST_BLOBSTORE_REF_HEX) != 0) {
            LST_ERROR("blobstore.corrupt", "blob %s does not match its hash", ref);
            lst_buf_reset(out);
            err = LST_ERR_CRYPTO;
        }
    }
    return err;
}

static char *json_str_dup(json_object *doc, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(doc, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return lst_strdup(json_object_get_string(v));
}

static int64_t json_int(json_object *doc, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(doc, key, &v) || !json_object_is_type(v, json_type_int))
        return -1;
    return json_object_get_int64(v);
}

lst_err lst_blobstore_meta(struct lst_blobstore *bs, const char *ref, struct lst_blob_meta *out)
{
    char mpath[PATH_MAX];
    struct lst_buf raw;
    json_object *doc = NULL;
    memset(out, 0, sizeof(*out));
    lst_buf_init(&raw);
    lst_err err = lst_blobstore_ref_valid(ref) ? LST_OK : LST_ERR_INVALID;
    if (err == LST_OK)
        err = path_of(bs, ref, true, META_SUFFIX, mpath, sizeof(mpath));
    if (err == LST_OK)
        err = read_file(mpath, META_READ_MAX, &raw);
    if (err == LST_OK) {
        doc = json_tokener_parse(raw.data != NULL ? raw.data : "");
        err = json_object_is_type(doc, json_type_object) ? LST_OK : LST_ERR_INVALID;
    }
    if (err == LST_OK) {
        out->mime = json_str_dup(doc, "mime");
        out->filename = json_str_dup(doc, "filename");
        out->source = json_str_dup(doc, "source");
        out->size = json_int(doc, "size");
        out->created_at = json_int(doc, "created_at");
        if (out->mime == NULL || out->size < 0)
            err = LST_ERR_INVALID;
    }
    if (err != LST_OK)
        lst_blob_meta_cleanup(out);
    json_object_put(doc);
    lst_buf_cleanup(&raw);
    return err;
}
