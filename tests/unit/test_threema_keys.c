/* Threema keys, hex helpers, identifiers and lookup hashes: published vectors and rejections. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lst/threema.h"
#include "lst_test.h"

/* RFC 7748 section 6.1 (X25519 Alice/Bob), the keys of the NaCl crypto_box test. */
#define ALICE_SK "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define ALICE_PK "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define BOB_SK   "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define BOB_PK   "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
#define ZERO_HEX "0000000000000000000000000000000000000000000000000000000000000000"

static void test_init(void)
{
    CHECK_EQ(lst_threema_init(), LST_OK);
    CHECK_EQ(lst_threema_init(), LST_OK); /* idempotent */
}

static void test_hex(void)
{
    uint8_t b[4];
    char s[9];
    CHECK_EQ(lst_threema_hex_decode("0aFf10e9", 8, b, 4), LST_OK);
    CHECK(b[0] == 0x0a && b[1] == 0xff && b[2] == 0x10 && b[3] == 0xe9);
    lst_threema_hex_encode(b, 4, s, sizeof(s));
    CHECK_STREQ(s, "0aff10e9");
    CHECK_EQ(lst_threema_hex_decode("0aFf10e", 7, b, 4), LST_ERR_INVALID);     /* short */
    CHECK_EQ(lst_threema_hex_decode("0aFf10e9aa", 10, b, 4), LST_ERR_INVALID); /* long */
    CHECK_EQ(lst_threema_hex_decode("0aFf10eg", 8, b, 4), LST_ERR_INVALID);    /* not hex */
    CHECK_EQ(lst_threema_hex_decode("0a:f10e9", 8, b, 4), LST_ERR_INVALID);
    CHECK_EQ(lst_threema_hex_decode("0a f10e9", 8, b, 4), LST_ERR_INVALID);
    struct lst_buf buf;
    lst_buf_init(&buf);
    CHECK_EQ(lst_threema_hex_decode_buf("00ff", 4, &buf), LST_OK);
    CHECK(buf.len == 2 && (uint8_t)buf.data[1] == 0xff);
    CHECK_EQ(lst_threema_hex_decode_buf("00f", 3, &buf), LST_ERR_INVALID);
    CHECK_EQ(lst_threema_hex_decode_buf("", 0, &buf), LST_ERR_INVALID);
    CHECK_EQ(lst_threema_hex_decode_buf("zz", 2, &buf), LST_ERR_INVALID);
    CHECK_EQ(buf.len, 0);
    lst_buf_cleanup(&buf);
}

static void test_ids(void)
{
    CHECK(lst_threema_id_valid("ECHOECHO", 8));
    CHECK(lst_threema_id_valid("*TESTTST", 8));
    CHECK(lst_threema_id_valid("0A1B2C3D", 8));
    CHECK(!lst_threema_id_valid("ECHOECH", 7));
    CHECK(!lst_threema_id_valid("ECHOECHO1", 9));
    CHECK(!lst_threema_id_valid("echoecho", 8));
    CHECK(!lst_threema_id_valid("ECHO*CHO", 8));
    CHECK(!lst_threema_id_valid("ECHO ECH", 8));
}

static void test_parse_format(void)
{
    uint8_t k[32];
    char s[LST_THREEMA_KEY_STR_SIZE];
    struct lst_buf why;
    lst_buf_init(&why);
    CHECK_EQ(lst_threema_key_parse("private:" ALICE_SK, LST_THREEMA_KEY_PRIVATE, k, &why), LST_OK);
    lst_threema_key_format(LST_THREEMA_KEY_PRIVATE, k, s);
    CHECK_STREQ(s, "private:" ALICE_SK);
    /* Uppercase hex accepted, printed lowercase. */
    CHECK_EQ(lst_threema_key_parse("public:8520F0098930A754748B7DDCB43EF75A0DBF3A0D26381AF4EBA4A98"
                                   "EAA9B4E6A",
                                   LST_THREEMA_KEY_PUBLIC, k, &why),
             LST_OK);
    lst_threema_key_format(LST_THREEMA_KEY_PUBLIC, k, s);
    CHECK_STREQ(s, "public:" ALICE_PK);

    CHECK_EQ(lst_threema_key_parse("public:" ALICE_PK, LST_THREEMA_KEY_PRIVATE, k, &why),
             LST_ERR_INVALID);
    CHECK(strstr(why.data, "got a public key") != NULL);
    CHECK_EQ(lst_threema_key_parse("private:" ALICE_SK, LST_THREEMA_KEY_PUBLIC, k, &why),
             LST_ERR_INVALID);
    CHECK_EQ(lst_threema_key_parse(ALICE_SK, LST_THREEMA_KEY_PRIVATE, k, &why), LST_ERR_INVALID);
    CHECK(strstr(why.data, "must start with") != NULL);
    CHECK_EQ(lst_threema_key_parse("Private:" ALICE_SK, LST_THREEMA_KEY_PRIVATE, k, &why),
             LST_ERR_INVALID);
    CHECK_EQ(lst_threema_key_parse("private:" ALICE_SK "00", LST_THREEMA_KEY_PRIVATE, k, &why),
             LST_ERR_INVALID);
    CHECK(strstr(why.data, "66 hex chars") != NULL);
    CHECK_EQ(lst_threema_key_parse("private:abc", LST_THREEMA_KEY_PRIVATE, k, &why),
             LST_ERR_INVALID);
    CHECK_EQ(lst_threema_key_parse("private: " ALICE_SK, LST_THREEMA_KEY_PRIVATE, k, &why),
             LST_ERR_INVALID);
    CHECK_EQ(lst_threema_key_parse("private:" ALICE_SK " ", LST_THREEMA_KEY_PRIVATE, k, &why),
             LST_ERR_INVALID);
    CHECK_EQ(lst_threema_key_parse("private:7707xx0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fb"
                                   "a51db92c2a",
                                   LST_THREEMA_KEY_PRIVATE, k, &why),
             LST_ERR_INVALID);
    CHECK(strstr(why.data, "not hex") != NULL);
    CHECK_EQ(lst_threema_key_parse("private:" ZERO_HEX, LST_THREEMA_KEY_PRIVATE, k, &why),
             LST_ERR_INVALID);
    CHECK(strstr(why.data, "all zero") != NULL);
    CHECK_EQ(lst_threema_key_parse("public:" ZERO_HEX, LST_THREEMA_KEY_PUBLIC, k, &why),
             LST_ERR_INVALID);
    CHECK_EQ(lst_threema_key_parse(NULL, LST_THREEMA_KEY_PUBLIC, k, NULL), LST_ERR_INVALID);
    lst_buf_cleanup(&why);
}

static void check_derive(const char *sk_hex, const char *pk_hex)
{
    uint8_t sk[32], pk[32];
    char s[65];
    REQUIRE(lst_threema_hex_decode(sk_hex, 64, sk, 32) == LST_OK);
    CHECK_EQ(lst_threema_key_derive(sk, pk), LST_OK);
    lst_threema_hex_encode(pk, 32, s, sizeof(s));
    CHECK_STREQ(s, pk_hex);
}

static void test_derive(void)
{
    check_derive(ALICE_SK, ALICE_PK);
    check_derive(BOB_SK, BOB_PK);
    uint8_t zero[32] = {0}, pk[32];
    CHECK_EQ(lst_threema_key_derive(zero, pk), LST_ERR_INVALID);
    uint8_t sk[32], pk2[32];
    CHECK_EQ(lst_threema_key_generate(sk, pk), LST_OK);
    CHECK_EQ(lst_threema_key_derive(sk, pk2), LST_OK);
    CHECK(memcmp(pk, pk2, 32) == 0);
    CHECK(!lst_threema_key_is_zero(pk));
    CHECK(lst_threema_key_is_zero(zero));
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    fputs(content, f);
    fclose(f);
}

static void test_key_files(void)
{
    char dir[] = "/tmp/lst_threema_keysXXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char p1[128], p2[128], p3[128], p4[128];
    snprintf(p1, sizeof(p1), "%s/sk", dir);
    snprintf(p2, sizeof(p2), "%s/pk", dir);
    snprintf(p3, sizeof(p3), "%s/crlf", dir);
    snprintf(p4, sizeof(p4), "%s/bad", dir);
    uint8_t sk[32], pk[32], k[32];
    struct lst_buf why;
    lst_buf_init(&why);
    REQUIRE(lst_threema_key_generate(sk, pk) == LST_OK);
    CHECK_EQ(lst_threema_key_write_file(p1, LST_THREEMA_KEY_PRIVATE, sk, &why), LST_OK);
    CHECK_EQ(lst_threema_key_write_file(p2, LST_THREEMA_KEY_PUBLIC, pk, &why), LST_OK);
    CHECK_EQ(lst_threema_key_write_file(p1, LST_THREEMA_KEY_PRIVATE, sk, &why), LST_ERR_IO);
    struct stat st;
    CHECK(stat(p1, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK_EQ(lst_threema_key_read_file(p1, LST_THREEMA_KEY_PRIVATE, k, &why), LST_OK);
    CHECK(memcmp(k, sk, 32) == 0);
    CHECK_EQ(lst_threema_key_load(p2, LST_THREEMA_KEY_PUBLIC, k, &why), LST_OK);
    CHECK(memcmp(k, pk, 32) == 0);
    CHECK_EQ(lst_threema_key_load("public:" BOB_PK, LST_THREEMA_KEY_PUBLIC, k, &why), LST_OK);
    /* First line only, trailing whitespace and CR trimmed (the SDK writes no newline). */
    write_file(p3, "private:" ALICE_SK " \t\r\nsecond line ignored\n");
    CHECK_EQ(lst_threema_key_read_file(p3, LST_THREEMA_KEY_PRIVATE, k, &why), LST_OK);
    write_file(p3, "private:" ALICE_SK);
    CHECK_EQ(lst_threema_key_read_file(p3, LST_THREEMA_KEY_PRIVATE, k, &why), LST_OK);
    write_file(p4, "\nprivate:" ALICE_SK "\n");
    CHECK_EQ(lst_threema_key_read_file(p4, LST_THREEMA_KEY_PRIVATE, k, &why), LST_ERR_INVALID);
    CHECK_EQ(lst_threema_key_read_file(p3, LST_THREEMA_KEY_PUBLIC, k, &why), LST_ERR_INVALID);
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/nope", dir);
    CHECK_EQ(lst_threema_key_read_file(missing, LST_THREEMA_KEY_PRIVATE, k, &why),
             LST_ERR_NOT_FOUND);
    CHECK(strstr(why.data, "nope") != NULL);
    unlink(p1);
    unlink(p2);
    unlink(p3);
    unlink(p4);
    rmdir(dir);
    lst_buf_cleanup(&why);
}

static void test_hash_vectors(void)
{
    char h[65];
    CHECK_EQ(lst_threema_hash_email("test@threema.ch", h), LST_OK);
    CHECK_STREQ(h, "1ea093239cc5f0e1b6ec81b866265b921f26dc4033025410063309f4d1a8ee2c");
    CHECK_EQ(lst_threema_hash_email("  Test@Threema.CH\n", h), LST_OK);
    CHECK_STREQ(h, "1ea093239cc5f0e1b6ec81b866265b921f26dc4033025410063309f4d1a8ee2c");
    CHECK_EQ(lst_threema_hash_phone("41791234567", h), LST_OK);
    CHECK_STREQ(h, "ad398f4d7ebe63c6550a486cc6e07f9baa09bd9d8b3d8cb9d9be106d35a7fdbc");
    CHECK_EQ(lst_threema_hash_phone("+41 79 123-45-67", h), LST_OK);
    CHECK_STREQ(h, "ad398f4d7ebe63c6550a486cc6e07f9baa09bd9d8b3d8cb9d9be106d35a7fdbc");
    CHECK_EQ(lst_threema_hash_phone("+41 (79) 123.45/67", h), LST_OK);
    CHECK_STREQ(h, "ad398f4d7ebe63c6550a486cc6e07f9baa09bd9d8b3d8cb9d9be106d35a7fdbc");
}

static void test_hash_rejects(void)
{
    char h[65];
    CHECK_EQ(lst_threema_hash_email("   ", h), LST_ERR_INVALID);
    CHECK_EQ(lst_threema_hash_email("", h), LST_ERR_INVALID);
    CHECK_EQ(lst_threema_hash_phone("", h), LST_ERR_INVALID);
    CHECK_EQ(lst_threema_hash_phone("+", h), LST_ERR_INVALID);
    CHECK_EQ(lst_threema_hash_phone("0800-CALL-NOW", h), LST_ERR_INVALID);
    CHECK_EQ(lst_threema_hash_phone("1234567890123456", h), LST_ERR_TOO_LARGE);
    CHECK_EQ(lst_threema_hash_phone("123456789012345", h), LST_OK);
    struct lst_buf n;
    lst_buf_init(&n);
    CHECK_EQ(lst_threema_normalize_email(" A.B@Example.ORG ", &n), LST_OK);
    CHECK_STREQ(n.data, "a.b@example.org");
    CHECK_EQ(lst_threema_normalize_phone("+49 (171) 555", &n), LST_OK);
    CHECK_STREQ(n.data, "49171555");
    lst_buf_cleanup(&n);
}

LST_TEST_MAIN(T(test_init), T(test_hex), T(test_ids), T(test_parse_format), T(test_derive),
              T(test_key_files), T(test_hash_vectors), T(test_hash_rejects))
