/* Threema end-to-end crypto: shared keys, encrypt/decrypt, padding, the key cache, blobs. */
#include <pthread.h>
#include <string.h>

#include "lst/threema.h"
#include "lst_test.h"

#define ALICE_SK "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define ALICE_PK "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define BOB_SK   "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define BOB_PK   "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"

static uint8_t alice_sk[32], alice_pk[32], bob_sk[32], bob_pk[32];

static void load_keys(void)
{
    lst_threema_init();
    lst_threema_hex_decode(ALICE_SK, 64, alice_sk, 32);
    lst_threema_hex_decode(ALICE_PK, 64, alice_pk, 32);
    lst_threema_hex_decode(BOB_SK, 64, bob_sk, 32);
    lst_threema_hex_decode(BOB_PK, 64, bob_pk, 32);
}

static void test_shared_key_vector(void)
{
    load_keys();
    struct lst_threema_shared a, b;
    char hex[65];
    REQUIRE(lst_threema_shared_init(&a, alice_sk, bob_pk) == LST_OK);
    REQUIRE(lst_threema_shared_init(&b, bob_sk, alice_pk) == LST_OK);
    /* NaCl's crypto_box test: the "firstkey" of Alice and Bob. */
    lst_threema_hex_encode(a.k, 32, hex, sizeof(hex));
    CHECK_STREQ(hex, "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389");
    CHECK(memcmp(a.k, b.k, 32) == 0);
    lst_threema_shared_cleanup(&a);
    CHECK(lst_threema_key_is_zero(a.k));
    lst_threema_shared_cleanup(&b);

    uint8_t zero[32] = {0};
    CHECK_EQ(lst_threema_shared_init(&a, alice_sk, zero), LST_ERR_CRYPTO);
    /* A low-order point (order 8 on Curve25519): the X25519 result is zero, refused. */
    uint8_t low[32];
    lst_threema_hex_decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", 64,
                           low, 32);
    CHECK_EQ(lst_threema_shared_init(&a, alice_sk, low), LST_ERR_CRYPTO);
}

/* Made with the official Python SDK 8.0.0:
 *   threema-gateway encrypt private:<ALICE_SK> public:<BOB_PK> "Grüezi Fahrer 7" */
static void test_decrypt_sdk_vector(void)
{
    load_keys();
    static const char nonce_hex[] = "2bd023941db2284a29bbaebcbec8675aca267a5a092a0451";
    static const char box_hex[] =
        "3620efc8c3bfc30c3755631ee8a12340e5e5f1faceb92f05be39aafa4a17392ac47bf7a2601f08b5f906fc"
        "e9d3a1b11b3ca93f1b5663d93b27b9053ccd38e16cbfa9c6c8222093be2e46f5346b1a3ea56d48180bf0"
        "9015b9589d34";
    uint8_t nonce[24];
    struct lst_buf box, why;
    struct lst_threema_shared s;
    struct lst_threema_msg m;
    lst_buf_init(&box);
    lst_buf_init(&why);
    REQUIRE(lst_threema_hex_decode(nonce_hex, 48, nonce, 24) == LST_OK);
    REQUIRE(lst_threema_hex_decode_buf(box_hex, strlen(box_hex), &box) == LST_OK);
    REQUIRE(lst_threema_shared_init(&s, bob_sk, alice_pk) == LST_OK);
    CHECK_EQ(lst_threema_msg_open(&s, nonce, (const uint8_t *)box.data, box.len, &m, &why), LST_OK);
    CHECK_EQ(m.kind, LST_THREEMA_MSG_TEXT);
    CHECK_STREQ(m.text, "Grüezi Fahrer 7");
    lst_threema_msg_cleanup(&m);
    /* Wrong key pair: does not authenticate. */
    lst_threema_shared_cleanup(&s);
    REQUIRE(lst_threema_shared_init(&s, bob_sk, bob_pk) == LST_OK);
    CHECK_EQ(lst_threema_msg_open(&s, nonce, (const uint8_t *)box.data, box.len, &m, &why),
             LST_ERR_CRYPTO);
    lst_threema_shared_cleanup(&s);
    lst_buf_cleanup(&box);
    lst_buf_cleanup(&why);
}

static void test_encrypt_decrypt(void)
{
    load_keys();
    struct lst_threema_shared a, b;
    uint8_t nonce[24], nonce2[24];
    struct lst_buf box, box2, plain;
    lst_buf_init(&box);
    lst_buf_init(&box2);
    lst_buf_init(&plain);
    REQUIRE(lst_threema_shared_init(&a, alice_sk, bob_pk) == LST_OK);
    REQUIRE(lst_threema_shared_init(&b, bob_sk, alice_pk) == LST_OK);
    const uint8_t msg[] = "\x01hello\x03\x03\x03";
    CHECK_EQ(lst_threema_encrypt(&a, msg, 9, nonce, &box), LST_OK);
    CHECK_EQ(box.len, 9 + 16);
    CHECK_EQ(lst_threema_encrypt(&a, msg, 9, nonce2, &box2), LST_OK);
    CHECK(memcmp(nonce, nonce2, 24) != 0); /* fresh random nonces */
    CHECK_EQ(lst_threema_decrypt(&b, nonce, (const uint8_t *)box.data, box.len, &plain), LST_OK);
    CHECK(plain.len == 9 && memcmp(plain.data, msg, 9) == 0);
    /* Tampering anywhere fails authentication; a short box is invalid. */
    box.data[20] ^= 1;
    CHECK_EQ(lst_threema_decrypt(&b, nonce, (const uint8_t *)box.data, box.len, &plain),
             LST_ERR_CRYPTO);
    CHECK_EQ(plain.len, 0);
    CHECK_EQ(lst_threema_decrypt(&b, nonce, (const uint8_t *)box.data, 15, &plain),
             LST_ERR_INVALID);
    nonce2[0] ^= 1;
    CHECK_EQ(lst_threema_decrypt(&b, nonce2, (const uint8_t *)box2.data, box2.len, &plain),
             LST_ERR_CRYPTO);
    /* Deterministic with a given nonce. */
    CHECK_EQ(lst_threema_encrypt_nonce(&a, msg, 9, nonce, &box), LST_OK);
    CHECK_EQ(lst_threema_encrypt_nonce(&a, msg, 9, nonce, &box2), LST_OK);
    CHECK(box.len == box2.len && memcmp(box.data, box2.data, box.len) == 0);
    lst_threema_shared_cleanup(&a);
    lst_threema_shared_cleanup(&b);
    lst_buf_cleanup(&box);
    lst_buf_cleanup(&box2);
    lst_buf_cleanup(&plain);
}

static void test_padding(void)
{
    lst_threema_init();
    struct lst_buf c, why;
    lst_buf_init(&c);
    lst_buf_init(&why);
    uint8_t type;
    const uint8_t *body;
    size_t blen;
    uint8_t big[300];
    memset(big, 'x', sizeof(big));
    /* 1-byte body: raised so that body + P == 32 at least. */
    for (int i = 0; i < 200; i++) {
        REQUIRE(lst_threema_pad(0x01, big, 1, 0, &c) == LST_OK);
        size_t p = (uint8_t)c.data[c.len - 1];
        CHECK(p >= 31 && p <= 255);
        CHECK(c.len == 1 + 1 + p);
    }
    /* Explicit P 1 with a 1-byte body: raised to exactly 31. */
    REQUIRE(lst_threema_pad(0x01, big, 1, 1, &c) == LST_OK);
    CHECK_EQ(c.len, 33);
    CHECK_EQ((uint8_t)c.data[32], 31);
    for (size_t i = 2; i < 33; i++)
        CHECK_EQ((uint8_t)c.data[i], 31);
    /* Empty body: P = 32. */
    REQUIRE(lst_threema_pad(0x90, big, 0, 1, &c) == LST_OK);
    CHECK_EQ(c.len, 33);
    /* 31-byte body with P 1: no raise needed. */
    REQUIRE(lst_threema_pad(0x01, big, 31, 1, &c) == LST_OK);
    CHECK_EQ(c.len, 33);
    CHECK_EQ((uint8_t)c.data[32], 1);
    /* 300-byte body: random P in 1..255 never raised. */
    int seen_small = 0;
    for (int i = 0; i < 500; i++) {
        REQUIRE(lst_threema_pad(0x01, big, 300, 0, &c) == LST_OK);
        size_t p = (uint8_t)c.data[c.len - 1];
        CHECK(p >= 1 && p <= 255 && c.len == 301 + p);
        seen_small += p < 32;
    }
    CHECK(seen_small > 0);
    /* Max padding. */
    REQUIRE(lst_threema_pad(0x01, big, 40, 255, &c) == LST_OK);
    CHECK_EQ(c.len, 1 + 40 + 255);
    CHECK_EQ(lst_threema_unpad((const uint8_t *)c.data, c.len, &type, &body, &blen, &why), LST_OK);
    CHECK(type == 0x01 && blen == 40 && body == (const uint8_t *)c.data + 1);

    /* Receive side: any P in [1, len-1]. */
    const uint8_t ok1[] = {0x01, 'a', 0x01};
    CHECK_EQ(lst_threema_unpad(ok1, 3, &type, &body, &blen, &why), LST_OK);
    CHECK(blen == 1 && body[0] == 'a');
    const uint8_t ok2[] = {0x01, 0x02, 0x02}; /* P = len - 1: empty body */
    CHECK_EQ(lst_threema_unpad(ok2, 3, &type, &body, &blen, &why), LST_OK);
    CHECK_EQ(blen, 0);
    const uint8_t p0[] = {0x01, 'a', 0x00};
    CHECK_EQ(lst_threema_unpad(p0, 3, &type, &body, &blen, &why), LST_ERR_INVALID);
    CHECK(strstr(why.data, "padding length 0") != NULL);
    const uint8_t plen[] = {0x01, 0x03, 0x03}; /* P = len */
    CHECK_EQ(lst_threema_unpad(plen, 3, &type, &body, &blen, &why), LST_ERR_INVALID);
    const uint8_t pbig[] = {0x01, 0x09, 0x09};
    CHECK_EQ(lst_threema_unpad(pbig, 3, &type, &body, &blen, &why), LST_ERR_INVALID);
    const uint8_t pbad[] = {0x01, 'a', 0x07, 0x02}; /* padding bytes differ */
    CHECK_EQ(lst_threema_unpad(pbad, 4, &type, &body, &blen, &why), LST_ERR_INVALID);
    CHECK_EQ(lst_threema_unpad(ok1, 1, &type, &body, &blen, &why), LST_ERR_INVALID);
    CHECK_EQ(lst_threema_unpad(ok1, 0, &type, &body, &blen, &why), LST_ERR_INVALID);
    lst_buf_cleanup(&c);
    lst_buf_cleanup(&why);
}

struct cache_arg {
    struct lst_threema_keycache *c;
    uint8_t (*pks)[32];
    size_t n;
    int failures;
};

static void *cache_worker(void *p)
{
    struct cache_arg *a = p;
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < a->n; i++) {
            struct lst_threema_shared s, direct;
            if (lst_threema_keycache_get(a->c, a->pks[i], &s) != LST_OK ||
                lst_threema_shared_init(&direct, bob_sk, a->pks[i]) != LST_OK ||
                memcmp(s.k, direct.k, 32) != 0)
                a->failures++;
            lst_threema_shared_cleanup(&s);
            lst_threema_shared_cleanup(&direct);
        }
    }
    return NULL;
}

static void test_keycache(void)
{
    load_keys();
    struct lst_threema_keycache *c = NULL;
    uint8_t zero[32] = {0};
    CHECK_EQ(lst_threema_keycache_create(bob_sk, 0, &c), LST_ERR_INVALID);
    CHECK_EQ(lst_threema_keycache_create(zero, 4, &c), LST_ERR_INVALID);
    lst_threema_keycache_destroy(NULL);
    REQUIRE(lst_threema_keycache_create(bob_sk, 4, &c) == LST_OK);
    uint8_t pks[8][32], sk[32];
    for (int i = 0; i < 8; i++)
        lst_threema_key_generate(sk, pks[i]);
    struct lst_threema_shared s;
    size_t size;
    uint64_t hits, misses;
    for (int i = 0; i < 4; i++)
        CHECK_EQ(lst_threema_keycache_get(c, pks[i], &s), LST_OK);
    CHECK_EQ(lst_threema_keycache_get(c, pks[0], &s), LST_OK); /* 0 most recent */
    lst_threema_keycache_stats(c, &size, &hits, &misses);
    CHECK(size == 4 && hits == 1 && misses == 4);
    CHECK_EQ(lst_threema_keycache_get(c, pks[4], &s), LST_OK); /* evicts 1 */
    CHECK_EQ(lst_threema_keycache_get(c, pks[0], &s), LST_OK); /* still cached */
    lst_threema_keycache_stats(c, &size, &hits, &misses);
    CHECK(size == 4 && hits == 2 && misses == 5);
    CHECK_EQ(lst_threema_keycache_get(c, pks[1], &s), LST_OK); /* was evicted: miss */
    lst_threema_keycache_stats(c, &size, &hits, &misses);
    CHECK(size == 4 && misses == 6);
    CHECK_EQ(lst_threema_keycache_get(c, zero, &s), LST_ERR_CRYPTO);
    struct lst_threema_shared direct;
    lst_threema_shared_init(&direct, bob_sk, alice_pk);
    CHECK_EQ(lst_threema_keycache_get(c, alice_pk, &s), LST_OK);
    CHECK(memcmp(s.k, direct.k, 32) == 0);
    lst_threema_shared_cleanup(&s);
    lst_threema_shared_cleanup(&direct);
    lst_threema_keycache_destroy(c);

    /* Threads hammering a cache smaller than the key set: always the right key. */
    REQUIRE(lst_threema_keycache_create(bob_sk, 5, &c) == LST_OK);
    pthread_t th[4];
    struct cache_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct cache_arg){c, pks, 8, 0};
        pthread_create(&th[i], NULL, cache_worker, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(args[i].failures, 0);
    }
    lst_threema_keycache_stats(c, &size, &hits, &misses);
    CHECK(size == 5 && hits + misses == 4 * 50 * 8);
    lst_threema_keycache_destroy(c);
}

static void test_blobs(void)
{
    lst_threema_init();
    uint8_t key[32];
    struct lst_buf enc, dec;
    lst_buf_init(&enc);
    lst_buf_init(&dec);
    lst_threema_blob_keygen(key);
    CHECK(!lst_threema_key_is_zero(key));
    const uint8_t data[] = "JPEG bytes...";
    CHECK_EQ(lst_threema_blob_encrypt(key, LST_THREEMA_BLOB_FILE, data, 13, &enc), LST_OK);
    CHECK_EQ(enc.len, 13 + 16); /* no nonce in front */
    CHECK_EQ(lst_threema_blob_decrypt(key, LST_THREEMA_BLOB_FILE, (const uint8_t *)enc.data,
                                      enc.len, &dec),
             LST_OK);
    CHECK(dec.len == 13 && memcmp(dec.data, data, 13) == 0);
    /* The thumbnail nonce differs: a file blob does not open as a thumbnail. */
    CHECK_EQ(lst_threema_blob_decrypt(key, LST_THREEMA_BLOB_THUMBNAIL, (const uint8_t *)enc.data,
                                      enc.len, &dec),
             LST_ERR_CRYPTO);
    CHECK_EQ(
        lst_threema_blob_decrypt(key, LST_THREEMA_BLOB_FILE, (const uint8_t *)enc.data, 15, &dec),
        LST_ERR_INVALID);
    /* Fixed vector: key 0x01 * 32, the file nonce (23 zeros, 0x01), plaintext "abc"; made with
     * libnacl's SecretBox as the official SDK uses it, nonce stripped as the SDK uploads. */
    memset(key, 1, 32);
    CHECK_EQ(lst_threema_blob_encrypt(key, LST_THREEMA_BLOB_FILE, (const uint8_t *)"abc", 3, &enc),
             LST_OK);
    char hex[64];
    lst_threema_hex_encode((const uint8_t *)enc.data, enc.len, hex, sizeof(hex));
    CHECK_STREQ(hex, "bfd2638312801e1ee093a4c0798159d075dbbe");
    CHECK_EQ(lst_threema_blob_encrypt(key, LST_THREEMA_BLOB_THUMBNAIL, data, 0, &enc), LST_OK);
    CHECK_EQ(enc.len, 16);
    CHECK_EQ(lst_threema_blob_decrypt(key, LST_THREEMA_BLOB_THUMBNAIL, (const uint8_t *)enc.data,
                                      enc.len, &dec),
             LST_OK);
    CHECK_EQ(dec.len, 0);
    CHECK_EQ(lst_threema_blob_encrypt(key, (enum lst_threema_blob_kind)3, data, 1, &enc),
             LST_ERR_INVALID);
    lst_buf_cleanup(&enc);
    lst_buf_cleanup(&dec);
}

LST_TEST_MAIN(T(test_shared_key_vector), T(test_decrypt_sdk_vector), T(test_encrypt_decrypt),
              T(test_padding), T(test_keycache), T(test_blobs))
