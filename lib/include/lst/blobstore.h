/* The company's own blob store: a directory of content-addressed files (images and files that
 * drivers sent, files dispatchers send), the metadata as JSON beside each one.
 *
 * Layout under the root directory (LST_BLOB_DIR, default LST_BLOBSTORE_DEFAULT_DIR):
 *
 *   <root>/<ref[0..2)>/<ref>         the bytes (plaintext), named by their sha256 (64 hex)
 *   <root>/<ref[0..2)>/<ref>.json    {"v":1,"sha256":..,"mime":..,"size":..,"filename":..,
 *                                     "source":..,"created_at":..}
 *
 * The two-hex fan-out keeps directories small (256 of them). The ref is what Kafka records
 * carry (`blob`, `thumbnail_blob` in proto/: ^[0-9a-f]{64}$), never the bytes.
 *
 * Durability: every file is written to a unique temporary name in the target directory,
 * fsync'ed, renamed into place and the directory fsync'ed, so a reader sees either nothing or
 * the complete file, also after a crash. The data file is written before its metadata; a put
 * of content that is already stored rewrites nothing (content-addressed, so the bytes are the
 * same) and only adds the metadata if it is missing. The metadata of the first put wins.
 *
 * Threads and processes: a store object holds only its root path; any number of threads and
 * processes (gateway-in writing, gateway-out reading) may use the same directory at once.
 *
 * Errors: LST_ERR_INVALID (bad ref or metadata), LST_ERR_NOT_FOUND (no such blob),
 * LST_ERR_IO (the file system refused: permissions, disk full), LST_ERR_CRYPTO (the stored
 * bytes no longer hash to their name: corruption), LST_ERR_TOO_LARGE (above a reader's
 * limit), LST_ERR_NOMEM. */
#ifndef LST_BLOBSTORE_H
#define LST_BLOBSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lst/error.h"
#include "lst/util.h"

/* The default root: an absolute path, so a service's working directory does not decide where
 * company data lands. Deployments mount a volume there; development sets LST_BLOB_DIR. */
#define LST_BLOBSTORE_DEFAULT_DIR "/var/lib/leitstand/blobs"
#define LST_BLOBSTORE_REF_HEX     64 /* sha256, lowercase hex, without the NUL */
#define LST_BLOBSTORE_MIME_MAX    255
#define LST_BLOBSTORE_NAME_MAX    255

/* What a writer says about a blob it stores. Borrowed for the call of lst_blobstore_put. */
struct lst_blob_desc {
    const char *mime;     /* e.g. "image/jpeg"; required, <= LST_BLOBSTORE_MIME_MAX bytes */
    const char *filename; /* NULL when unknown; <= LST_BLOBSTORE_NAME_MAX bytes */
    const char *source;   /* who stores it, e.g. "gateway-in", "view-api"; NULL when unknown */
    int64_t created_at;   /* ms since the epoch; 0: now */
};

/* The stored metadata of one blob, filled by lst_blobstore_meta. Every string is owned; free
 * with lst_blob_meta_cleanup. */
struct lst_blob_meta {
    char *mime;
    char *filename; /* NULL when unknown */
    char *source;   /* NULL when unknown */
    int64_t size;   /* bytes */
    int64_t created_at;
};

/* Frees the strings of a meta filled by lst_blobstore_meta; safe on a zeroed struct. */
void lst_blob_meta_cleanup(struct lst_blob_meta *m);

struct lst_blobstore;

/* Opens the store at dir (created with its parents, mode 0750, when missing) and checks that
 * a file can be created in it. LST_ERR_IO with a log line when that fails. *out is owned by
 * the caller (lst_blobstore_destroy). */
lst_err lst_blobstore_create(const char *dir, struct lst_blobstore **out);
/* NULL is a no-op. */
void lst_blobstore_destroy(struct lst_blobstore *bs);
/* The root directory (borrowed from bs). */
const char *lst_blobstore_dir(const struct lst_blobstore *bs);

/* True when ref is 64 lowercase hex characters. */
bool lst_blobstore_ref_valid(const char *ref);
/* sha256 of data as 64 lowercase hex plus NUL. */
void lst_blobstore_ref_of(const void *data, size_t len, char ref[LST_BLOBSTORE_REF_HEX + 1]);

/* Stores data (any length, also 0) with the metadata of desc, durably (see above), and writes its
 * ref. Idempotent: storing the same bytes again returns the same ref. */
lst_err lst_blobstore_put(struct lst_blobstore *bs, const void *data, size_t len,
                          const struct lst_blob_desc *desc, char ref[LST_BLOBSTORE_REF_HEX + 1]);

/* True when the bytes of ref are stored. */
bool lst_blobstore_exists(struct lst_blobstore *bs, const char *ref);

/* Reads the bytes of ref into out (replaced) and checks they still hash to ref.
 * max_len > 0: LST_ERR_TOO_LARGE for a larger blob (nothing read). */
lst_err lst_blobstore_get(struct lst_blobstore *bs, const char *ref, size_t max_len,
                          struct lst_buf *out);

/* Reads the metadata of ref into out (zeroed first; free with lst_blob_meta_cleanup).
 * LST_ERR_NOT_FOUND when the blob or its metadata is missing. */
lst_err lst_blobstore_meta(struct lst_blobstore *bs, const char *ref, struct lst_blob_meta *out);

/* The path of the bytes of ref ("<root>/ab/<ref>") into out, for callers that stream or
 * mmap the file themselves. LST_ERR_TOO_LARGE when cap is too small. */
lst_err lst_blobstore_path(const struct lst_blobstore *bs, const char *ref, char *out, size_t cap);

#endif
