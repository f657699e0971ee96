/* The content-addressed blob store on a real temporary directory. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lst/blobstore.h"
#include "lst/threema.h"
#include "lst_test.h"

static char root[128];

static void make_root(void)
{
    snprintf(root, sizeof(root), "/tmp/lst-blobstore-XXXXXX");
    if (mkdtemp(root) == NULL)
        root[0] = '\0';
}

/* rm -r of the test root (two levels: fan-out dirs and files). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Files in dir whose name starts with prefix. */
static int count_prefixed(const char *dir, const char *prefix)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void test_ref(void)
{
    char ref[LST_BLOBSTORE_REF_HEX + 1];
    lst_blobstore_ref_of("abc", 3, ref);
    /* FIPS 180-2 test vector */
    CHECK_STREQ(ref, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(lst_blobstore_ref_valid(ref));
    ref[3] = 'A';
    CHECK(!lst_blobstore_ref_valid(ref));
    CHECK(!lst_blobstore_ref_valid("abc"));
    CHECK(!lst_blobstore_ref_valid(NULL));
}

static void test_put_get_meta(void)
{
    make_root();
    REQUIRE(root[0] != '\0');
    char sub[192];
    snprintf(sub, sizeof(sub), "%s/nested/blobs/", root);
    struct lst_blobstore *bs = NULL;
    REQUIRE(lst_blobstore_create(sub, &bs) == LST_OK);
    CHECK(strcmp(lst_blobstore_dir(bs), sub) != 0); /* trailing slash trimmed */

    const char data[] = "\x89PNG not really a png";
    struct lst_blob_desc m = {.mime = "image/png", .filename = "foto.png", .source = "test"};
    char ref[LST_BLOBSTORE_REF_HEX + 1], ref2[LST_BLOBSTORE_REF_HEX + 1];
    REQUIRE(lst_blobstore_put(bs, data, sizeof(data) - 1, &m, ref) == LST_OK);
    CHECK(lst_blobstore_ref_valid(ref));
    CHECK(lst_blobstore_exists(bs, ref));

    /* Idempotent: same bytes, same ref; the first metadata wins. */
    struct lst_blob_desc m2 = {.mime = "application/octet-stream"};
    CHECK(lst_blobstore_put(bs, data, sizeof(data) - 1, &m2, ref2) == LST_OK);
    CHECK_STREQ(ref, ref2);

    struct lst_buf got;
    lst_buf_init(&got);
    CHECK(lst_blobstore_get(bs, ref, 0, &got) == LST_OK);
    CHECK(got.len == sizeof(data) - 1 && memcmp(got.data, data, got.len) == 0);
    CHECK(lst_blobstore_get(bs, ref, 4, &got) == LST_ERR_TOO_LARGE);

    struct lst_blob_meta rm;
    CHECK(lst_blobstore_meta(bs, ref, &rm) == LST_OK);
    CHECK_STREQ(rm.mime, "image/png");
    CHECK_STREQ(rm.filename, "foto.png");
    CHECK_STREQ(rm.source, "test");
    CHECK_EQ(rm.size, (int64_t)(sizeof(data) - 1));
    CHECK(rm.created_at > 0);
    lst_blob_meta_cleanup(&rm);

    /* Layout: <root>/<ab>/<ref>, no temporary files left behind. */
    char path[512], fan[256];
    CHECK(lst_blobstore_path(bs, ref, path, sizeof(path)) == LST_OK);
    snprintf(fan, sizeof(fan), "%s/%.2s", lst_blobstore_dir(bs), ref);
    CHECK(strncmp(path, fan, strlen(fan)) == 0);
    CHECK_EQ(count_prefixed(fan, ".tmp-"), 0);
    CHECK_EQ(count_prefixed(fan, ref), 2);
    char small[10];
    CHECK(lst_blobstore_path(bs, ref, small, sizeof(small)) == LST_ERR_TOO_LARGE);

    /* Corruption is detected. */
    FILE *f = fopen(path, "r+b");
    REQUIRE(f != NULL);
    fputc('X', f);
    fclose(f);
    CHECK(lst_blobstore_get(bs, ref, 0, &got) == LST_ERR_CRYPTO);
    CHECK_EQ(got.len, (size_t)0);

    /* Empty blobs are blobs too. */
    CHECK(lst_blobstore_put(bs, NULL, 0, &m, ref2) == LST_OK);
    CHECK(lst_blobstore_get(bs, ref2, 0, &got) == LST_OK);
    CHECK_EQ(got.len, (size_t)0);

    lst_buf_cleanup(&got);
    lst_blobstore_destroy(bs);
    remove_tree(root);
}

static void test_errors(void)
{
    make_root();
    REQUIRE(root[0] != '\0');
    struct lst_blobstore *bs = NULL;
    REQUIRE(lst_blobstore_create(root, &bs) == LST_OK);
    char ref[LST_BLOBSTORE_REF_HEX + 1];
    struct lst_blob_desc nomime = {0};
    CHECK(lst_blobstore_put(bs, "x", 1, &nomime, ref) == LST_ERR_INVALID);
    CHECK_STREQ(ref, "");
    struct lst_blob_desc badname = {.mime = "text/plain", .filename = "\xff\xfe"};
    CHECK(lst_blobstore_put(bs, "x", 1, &badname, ref) == LST_ERR_INVALID);
    CHECK(lst_blobstore_put(bs, "x", 1, NULL, ref) == LST_ERR_INVALID);

    struct lst_buf got;
    lst_buf_init(&got);
    const char *missing = "0000000000000000000000000000000000000000000000000000000000000000";
    CHECK(lst_blobstore_get(bs, missing, 0, &got) == LST_ERR_NOT_FOUND);
    CHECK(!lst_blobstore_exists(bs, missing));
    struct lst_blob_meta rm;
    CHECK(lst_blobstore_meta(bs, missing, &rm) == LST_ERR_NOT_FOUND);
    CHECK(lst_blobstore_get(bs, "../../etc/passwd", 0, &got) == LST_ERR_INVALID);
    lst_buf_cleanup(&got);
    lst_blobstore_destroy(bs);
    lst_blobstore_destroy(NULL);

    /* Unwritable root: a read-only directory (root ignores modes, so skip as root). */
    if (geteuid() != 0) {
        char ro[192];
        snprintf(ro, sizeof(ro), "%s/ro", root);
        CHECK(mkdir(ro, 0500) == 0);
        CHECK(lst_blobstore_create(ro, &bs) == LST_ERR_IO);
        CHECK(bs == NULL);
        char below[256];
        snprintf(below, sizeof(below), "%s/below", ro);
        CHECK(lst_blobstore_create(below, &bs) == LST_ERR_IO);
        chmod(ro, 0700);
    }
    CHECK(lst_blobstore_create("", &bs) == LST_ERR_INVALID);
    remove_tree(root);
}

LST_TEST_MAIN(T(test_ref), T(test_put_get_meta), T(test_errors))
