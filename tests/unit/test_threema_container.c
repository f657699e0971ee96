/* Threema containers: every message type through encode -> encrypt -> decrypt -> decode, exact
 * bytes where the format is fixed, and rejections. */
#include <math.h>
#include <string.h>

#include "lst/threema.h"
#include "lst_test.h"

#define BLOB1 "0123456789abcdef0123456789abcdef"
#define BLOB2 "fedcba9876543210fedcba9876543210"
#define KEYX  "1111111111111111111111111111111111111111111111111111111111111111"

static struct lst_threema_shared alice_to_bob, bob_from_alice;

static void setup(void)
{
    static bool done;
    if (done)
        return;
    uint8_t ask[32], apk[32], bsk[32], bpk[32];
    lst_threema_init();
    lst_threema_key_generate(ask, apk);
    lst_threema_key_generate(bsk, bpk);
    lst_threema_shared_init(&alice_to_bob, ask, bpk);
    lst_threema_shared_init(&bob_from_alice, bsk, apk);
    done = true;
}

/* Seals m from Alice to Bob and opens it again into out. */
static lst_err round_trip(const struct lst_threema_msg *m, struct lst_threema_msg *out)
{
    uint8_t nonce[24];
    struct lst_buf box, why;
    lst_buf_init(&box);
    lst_buf_init(&why);
    setup();
    lst_err err = lst_threema_msg_seal(m, &alice_to_bob, nonce, &box, &why);
    if (err == LST_OK)
        err = lst_threema_msg_open(&bob_from_alice, nonce, (const uint8_t *)box.data, box.len, out,
                                   &why);
    if (err != LST_OK)
        fprintf(stderr, "round trip: %s: %s\n", lst_strerror(err), why.data ? why.data : "");
    lst_buf_cleanup(&box);
    lst_buf_cleanup(&why);
    return err;
}

/* Decodes a body of the given type; why is kept for inspection. */
static lst_err decode(uint8_t type, const char *body, size_t len, struct lst_threema_msg *m,
                      struct lst_buf *why)
{
    return lst_threema_msg_decode_body(type, (const uint8_t *)body, len, m, why);
}

static void test_text(void)
{
    struct lst_threema_msg m = {0}, out;
    const char *t = "Bitte Tor 3 anfahren 🚚";
    REQUIRE(lst_threema_msg_set_text(&m, t, strlen(t)) == LST_OK);
    REQUIRE(round_trip(&m, &out) == LST_OK);
    CHECK_EQ(out.kind, LST_THREEMA_MSG_TEXT);
    CHECK_EQ(out.type, 0x01);
    CHECK_STREQ(out.text, t);
    CHECK_EQ(out.text_len, strlen(t));
    lst_threema_msg_cleanup(&out);
    lst_threema_msg_cleanup(&out); /* twice is safe */

    /* Exact container bytes with a given padding. */
    struct lst_buf c, why;
    lst_buf_init(&c);
    lst_buf_init(&why);
    REQUIRE(lst_threema_msg_set_text(&m, "hi", 2) == LST_OK);
    REQUIRE(lst_threema_msg_encode(&m, 1, &c, &why) == LST_OK);
    CHECK_EQ(c.len, 1 + 2 + 30);
    CHECK(memcmp(c.data, "\x01hi\x1e", 4) == 0);

    /* Limits: 3500 bytes fine, 3501 too large; invalid UTF-8; empty. */
    char big[3502];
    memset(big, 'a', sizeof(big));
    REQUIRE(lst_threema_msg_set_text(&m, big, 3500) == LST_OK);
    CHECK_EQ(round_trip(&m, &out), LST_OK);
    CHECK_EQ(out.text_len, 3500);
    lst_threema_msg_cleanup(&out);
    REQUIRE(lst_threema_msg_set_text(&m, big, 3501) == LST_OK);
    CHECK_EQ(lst_threema_msg_encode(&m, 0, &c, &why), LST_ERR_TOO_LARGE);
    CHECK_EQ(c.len, 0);
    REQUIRE(lst_threema_msg_set_text(&m, "caf\xC3", 4) == LST_OK);
    CHECK_EQ(lst_threema_msg_encode(&m, 0, &c, &why), LST_ERR_UTF8);
    REQUIRE(lst_threema_msg_set_text(&m, "", 0) == LST_OK);
    CHECK_EQ(lst_threema_msg_encode(&m, 0, &c, &why), LST_ERR_INVALID);
    lst_threema_msg_cleanup(&m);

    /* Decode side: invalid UTF-8, NUL, overlong input rejected; an empty text is kept. */
    CHECK_EQ(decode(0x01, "\xFF\xFE", 2, &out, &why), LST_ERR_UTF8);
    CHECK_EQ(out.text, NULL);
    CHECK_EQ(decode(0x01, "a\0b", 3, &out, &why), LST_ERR_INVALID);
    CHECK_EQ(decode(0x01, "", 0, &out, &why), LST_OK);
    CHECK_STREQ(out.text, "");
    lst_threema_msg_cleanup(&out);
    lst_buf_cleanup(&c);
    lst_buf_cleanup(&why);
}

static void fill_file(struct lst_threema_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->kind = LST_THREEMA_MSG_FILE;
    struct lst_threema_file *f = &m->file;
    memcpy(f->blob_id, BLOB1, 33);
    lst_threema_hex_decode(KEYX, 64, f->key, 32);
    f->mime = lst_strdup("image/jpeg");
    f->size = 123456;
    f->name = lst_strdup("Schaden \"LKW\" 7.jpg");
    memcpy(f->thumbnail_blob_id, BLOB2, 33);
    f->thumbnail_mime = lst_strdup("image/jpeg");
    f->caption = lst_strdup("Delle hinten links");
    f->has_rendering = true;
    f->rendering = 1;
    f->has_legacy = true;
    f->legacy = 1;
    f->has_meta = true;
    f->has_width = f->has_height = f->has_duration = f->has_animated = true;
    f->width = 640;
    f->height = 480;
    f->duration = 1.5;
    f->animated = false;
}

static void test_file_exact_json(void)
{
    struct lst_threema_msg m;
    struct lst_buf body, why;
    lst_buf_init(&body);
    lst_buf_init(&why);
    fill_file(&m);
    REQUIRE(lst_threema_msg_encode_body(&m, &body, &why) == LST_OK);
    CHECK_STREQ(body.data, "{\"b\":\"" BLOB1 "\",\"k\":\"" KEYX "\",\"m\":\"image/jpeg\","
                           "\"s\":123456,\"n\":\"Schaden \\\"LKW\\\" 7.jpg\",\"t\":\"" BLOB2 "\","
                           "\"p\":\"image/jpeg\",\"d\":\"Delle hinten links\",\"j\":1,\"i\":1,"
                           "\"x\":{\"w\":640,\"h\":480,\"d\":1.5,\"a\":false}}");
    lst_threema_msg_cleanup(&m);
    /* Only the required keys. */
    memset(&m, 0, sizeof(m));
    m.kind = LST_THREEMA_MSG_FILE;
    memcpy(m.file.blob_id, "0123456789ABCDEF0123456789ABCDEF", 33); /* printed lowercase */
    lst_threema_hex_decode(KEYX, 64, m.file.key, 32);
    m.file.mime = lst_strdup("application/pdf");
    REQUIRE(lst_threema_msg_encode_body(&m, &body, &why) == LST_OK);
    CHECK_STREQ(body.data,
                "{\"b\":\"" BLOB1 "\",\"k\":\"" KEYX "\",\"m\":\"application/pdf\",\"s\":0}");
    lst_threema_msg_cleanup(&m);
    lst_buf_cleanup(&body);
    lst_buf_cleanup(&why);
}

static void test_file_round_trip(void)
{
    struct lst_threema_msg m, out;
    fill_file(&m);
    REQUIRE(round_trip(&m, &out) == LST_OK);
    const struct lst_threema_file *a = &m.file, *b = &out.file;
    CHECK_EQ(out.kind, LST_THREEMA_MSG_FILE);
    CHECK_EQ(out.type, 0x17);
    CHECK_STREQ(b->blob_id, a->blob_id);
    CHECK(memcmp(b->key, a->key, 32) == 0);
    CHECK_STREQ(b->mime, a->mime);
    CHECK_EQ(b->size, a->size);
    CHECK_STREQ(b->name, a->name);
    CHECK_STREQ(b->thumbnail_blob_id, a->thumbnail_blob_id);
    CHECK_STREQ(b->thumbnail_mime, a->thumbnail_mime);
    CHECK_STREQ(b->caption, a->caption);
    CHECK(b->has_rendering && b->rendering == 1 && b->has_legacy && b->legacy == 1);
    CHECK(b->has_meta && b->has_width && b->width == 640 && b->has_height && b->height == 480);
    CHECK(b->has_duration && b->duration == 1.5 && b->has_animated && !b->animated);
    lst_threema_msg_cleanup(&out);
    lst_threema_msg_cleanup(&m);
}

static void test_file_decode(void)
{
    struct lst_threema_msg out;
    struct lst_buf why;
    lst_buf_init(&why);
    /* As the official SDK writes it (n and i, no j), uppercase hex, extra unknown keys,
     * optional keys of the wrong type ignored, spaces allowed. */
    const char *sdk = "{\"b\": \"0123456789ABCDEF0123456789ABCDEF\", \"k\":\"" KEYX "\","
                      "\"m\":\"text/plain\",\"n\":\"a.txt\",\"s\":3,\"i\":0,\"zz\":[1,{}],"
                      "\"j\":\"1\",\"d\":5,\"x\":{\"d\":7,\"w\":\"x\"},\"t\":\"short\"}";
    REQUIRE(decode(0x17, sdk, strlen(sdk), &out, &why) == LST_OK);
    CHECK_STREQ(out.file.blob_id, BLOB1);
    CHECK_STREQ(out.file.mime, "text/plain");
    CHECK_STREQ(out.file.name, "a.txt");
    CHECK_EQ(out.file.size, 3);
    CHECK(out.file.has_legacy && out.file.legacy == 0 && !out.file.has_rendering);
    CHECK(out.file.caption == NULL && out.file.thumbnail_blob_id[0] == '\0');
    CHECK(out.file.has_meta && out.file.has_duration && out.file.duration == 7.0);
    CHECK(!out.file.has_width);
    lst_threema_msg_cleanup(&out);

    /* Each required key missing. */
    static const char *const missing[] = {
        "{\"k\":\"" KEYX "\",\"m\":\"a/b\",\"s\":1}",
        "{\"b\":\"" BLOB1 "\",\"m\":\"a/b\",\"s\":1}",
        "{\"b\":\"" BLOB1 "\",\"k\":\"" KEYX "\",\"s\":1}",
        "{\"b\":\"" BLOB1 "\",\"k\":\"" KEYX "\",\"m\":\"a/b\"}",
    };
    static const char *const key_names[] = {"file.b", "file.k", "file.m", "file.s"};
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ(decode(0x17, missing[i], strlen(missing[i]), &out, &why), LST_ERR_INVALID);
        CHECK(strstr(why.data, key_names[i]) != NULL && strstr(why.data, "missing") != NULL);
        CHECK(out.file.mime == NULL);
    }
    /* Wrong shapes of required keys and broken JSON. */
    static const char *const bad[] = {
        "{\"b\":\"" BLOB1 "00\",\"k\":\"" KEYX "\",\"m\":\"a/b\",\"s\":1}",
        "{\"b\":\"" BLOB1 "\",\"k\":\"" BLOB1 "\",\"m\":\"a/b\",\"s\":1}",
        "{\"b\":\"" BLOB1 "\",\"k\":\"" KEYX "\",\"m\":\"\",\"s\":1}",
        "{\"b\":\"" BLOB1 "\",\"k\":\"" KEYX "\",\"m\":\"a/b\",\"s\":\"1\"}",
        "{\"b\":\"" BLOB1 "\",\"k\":\"" KEYX "\",\"m\":\"a/b\",\"s\":1.5}",
        "{\"b\":\"" BLOB1 "\",\"k\":\"" KEYX "\",\"m\":\"a\\u0000b\",\"s\":1}",
        "{\"b\":\"" BLOB1 "\",\"k\":\"" KEYX "\",\"m\":\"a/b\",\"s\":1} x",
        "{\"b\":\"" BLOB1 "\",\"k\":\"" KEYX "\",\"m\":\"a/b\",\"s\":1",
        "[1,2]",
        "",
        "{'b':1}",
    };
    for (size_t i = 0; i < LST_ARRAY_LEN(bad); i++)
        CHECK(decode(0x17, bad[i], strlen(bad[i]), &out, &why) != LST_OK);
    const char *neg = "{\"b\":\"" BLOB1 "\",\"k\":\"" KEYX "\",\"m\":\"a/b\",\"s\":-1}";
    CHECK_EQ(decode(0x17, neg, strlen(neg), &out, &why), LST_ERR_RANGE);
    lst_buf_cleanup(&why);
}

static void test_image_as_file_j1(void)
{
    struct lst_threema_msg m, out;
    memset(&m, 0, sizeof(m));
    m.kind = LST_THREEMA_MSG_FILE;
    memcpy(m.file.blob_id, BLOB1, 33);
    lst_threema_blob_keygen(m.file.key);
    m.file.mime = lst_strdup("image/png");
    m.file.size = 42;
    m.file.has_rendering = true;
    m.file.rendering = 1;
    REQUIRE(round_trip(&m, &out) == LST_OK);
    CHECK(out.kind == LST_THREEMA_MSG_FILE && out.file.has_rendering && out.file.rendering == 1);
    CHECK_STREQ(out.file.mime, "image/png");
    lst_threema_msg_cleanup(&out);
    lst_threema_msg_cleanup(&m);
}

static void test_location(void)
{
    struct lst_threema_msg m, out;
    struct lst_buf body, why;
    lst_buf_init(&body);
    lst_buf_init(&why);
    memset(&m, 0, sizeof(m));
    m.kind = LST_THREEMA_MSG_LOCATION;
    m.location.lat = 47.3769;
    m.location.lon = 8.5417;
    m.location.has_accuracy = true;
    m.location.accuracy = 12.5;
    m.location.name = lst_strdup("Depot Nord");
    m.location.address = lst_strdup("Hauptstrasse 1\n8000 Zürich");
    REQUIRE(lst_threema_msg_encode_body(&m, &body, &why) == LST_OK);
    CHECK_STREQ(body.data, "47.3769,8.5417,12.5\nDepot Nord\nHauptstrasse 1\\n8000 Zürich");
    REQUIRE(round_trip(&m, &out) == LST_OK);
    CHECK_EQ(out.kind, LST_THREEMA_MSG_LOCATION);
    CHECK(out.location.lat == 47.3769 && out.location.lon == 8.5417);
    CHECK(out.location.has_accuracy && out.location.accuracy == 12.5);
    CHECK_STREQ(out.location.name, "Depot Nord");
    CHECK_STREQ(out.location.address, "Hauptstrasse 1\n8000 Zürich");
    lst_threema_msg_cleanup(&out);

    /* A name without address keeps its meaning through an empty address line. */
    free(m.location.address);
    m.location.address = NULL;
    m.location.has_accuracy = false;
    REQUIRE(lst_threema_msg_encode_body(&m, &body, &why) == LST_OK);
    CHECK_STREQ(body.data, "47.3769,8.5417\nDepot Nord\n");
    REQUIRE(round_trip(&m, &out) == LST_OK);
    CHECK_STREQ(out.location.name, "Depot Nord");
    CHECK(out.location.address == NULL && !out.location.has_accuracy);
    lst_threema_msg_cleanup(&out);

    /* Encode rejects bad ranges and a newline in the name. */
    m.location.lat = 91;
    CHECK_EQ(lst_threema_msg_encode_body(&m, &body, &why), LST_ERR_RANGE);
    m.location.lat = 0;
    m.location.lon = (double)NAN;
    CHECK_EQ(lst_threema_msg_encode_body(&m, &body, &why), LST_ERR_RANGE);
    m.location.lon = 0;
    free(m.location.name);
    m.location.name = lst_strdup("a\nb");
    CHECK_EQ(lst_threema_msg_encode_body(&m, &body, &why), LST_ERR_INVALID);
    lst_threema_msg_cleanup(&m);

    /* Decode as the apps write: two lines = address; spaces around numbers. */
    const char *two = "-33.8688, 151.2093\nGeorge St";
    REQUIRE(decode(0x10, two, strlen(two), &out, &why) == LST_OK);
    CHECK(out.location.name == NULL);
    CHECK_STREQ(out.location.address, "George St");
    CHECK(out.location.lat == -33.8688 && out.location.lon == 151.2093);
    lst_threema_msg_cleanup(&out);
    const char *one = "0,0";
    REQUIRE(decode(0x10, one, 3, &out, &why) == LST_OK);
    lst_threema_msg_cleanup(&out);
    static const char *const bad[] = {"",        "47.1",         "91,0",  "0,181", "0,0,-1",  "a,b",
                                      "0,0,1,2", "0,0\na\nb\nc", "nan,0", "0,inf", "1e999,0", ",0"};
    for (size_t i = 0; i < LST_ARRAY_LEN(bad); i++) {
        CHECK(decode(0x10, bad[i], strlen(bad[i]), &out, &why) != LST_OK);
        CHECK(out.location.address == NULL);
    }
    lst_buf_cleanup(&body);
    lst_buf_cleanup(&why);
}

static void test_receipt(void)
{
    struct lst_threema_msg m = {0}, out;
    struct lst_buf body, why;
    lst_buf_init(&body);
    lst_buf_init(&why);
    const uint8_t ids[16] = {1,    2,    3,    4,    5,    6,    7,    8,
                             0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18};
    REQUIRE(lst_threema_msg_set_receipt(&m, LST_THREEMA_RECEIPT_READ, ids, 2) == LST_OK);
    REQUIRE(lst_threema_msg_encode_body(&m, &body, &why) == LST_OK);
    CHECK(body.len == 17 && body.data[0] == 2 && memcmp(body.data + 1, ids, 16) == 0);
    REQUIRE(round_trip(&m, &out) == LST_OK);
    CHECK_EQ(out.kind, LST_THREEMA_MSG_RECEIPT);
    CHECK_EQ(out.receipt.status, 2);
    CHECK_EQ(out.receipt.count, 2);
    CHECK(memcmp(out.receipt.ids, ids, 16) == 0);
    /* The IDs are the bytes of the hex message ID, no byte swap. */
    char hex[17];
    lst_threema_hex_encode(out.receipt.ids[1], 8, hex, sizeof(hex));
    CHECK_STREQ(hex, "a1b2c3d4e5f60718");
    lst_threema_msg_cleanup(&out);

    /* Unknown status kept. */
    const char unk[9] = {9, 1, 2, 3, 4, 5, 6, 7, 8};
    REQUIRE(decode(0x80, unk, 9, &out, &why) == LST_OK);
    CHECK(out.receipt.status == 9 && out.receipt.count == 1);
    lst_threema_msg_cleanup(&out);
    /* Truncated: 1 + 8n violated, or no IDs. */
    const char trunc[17] = {1};
    CHECK_EQ(decode(0x80, trunc, 1, &out, &why), LST_ERR_INVALID);
    CHECK_EQ(decode(0x80, trunc, 0, &out, &why), LST_ERR_INVALID);
    CHECK_EQ(decode(0x80, trunc, 8, &out, &why), LST_ERR_INVALID);
    CHECK_EQ(decode(0x80, trunc, 16, &out, &why), LST_ERR_INVALID);
    CHECK(strstr(why.data, "1 + 8n") != NULL);
    CHECK_EQ(decode(0x80, trunc, 10, &out, &why), LST_ERR_INVALID);
    CHECK(out.receipt.ids == NULL);
    CHECK_EQ(decode(0x80, trunc, 17, &out, &why), LST_OK);
    CHECK_EQ(out.receipt.count, 2);
    lst_threema_msg_cleanup(&out);
    /* Encode: no IDs is invalid. */
    CHECK_EQ(lst_threema_msg_set_receipt(&m, 1, ids, 0), LST_ERR_INVALID);
    CHECK_EQ(lst_threema_msg_encode_body(&m, &body, &why), LST_ERR_INVALID);
    lst_threema_msg_cleanup(&m);
    lst_buf_cleanup(&body);
    lst_buf_cleanup(&why);
}

static void test_typing(void)
{
    struct lst_threema_msg m = {0}, out;
    struct lst_buf why;
    lst_buf_init(&why);
    m.kind = LST_THREEMA_MSG_TYPING;
    m.typing = true;
    REQUIRE(round_trip(&m, &out) == LST_OK);
    CHECK(out.kind == LST_THREEMA_MSG_TYPING && out.type == 0x90 && out.typing);
    lst_threema_msg_cleanup(&out);
    m.typing = false;
    REQUIRE(round_trip(&m, &out) == LST_OK);
    CHECK(!out.typing);
    CHECK_EQ(decode(0x90, "\x01\x01", 2, &out, &why), LST_ERR_INVALID);
    CHECK_EQ(decode(0x90, "", 0, &out, &why), LST_ERR_INVALID);
    lst_buf_cleanup(&why);
}

static void test_legacy_image_and_unsupported(void)
{
    struct lst_threema_msg out;
    struct lst_buf why, c;
    lst_buf_init(&why);
    lst_buf_init(&c);
    uint8_t body[44];
    for (int i = 0; i < 16; i++)
        body[i] = (uint8_t)(0xa0 + i);
    body[16] = 0x78; /* 0x12345678 little-endian */
    body[17] = 0x56;
    body[18] = 0x34;
    body[19] = 0x12;
    for (int i = 0; i < 24; i++)
        body[20 + i] = (uint8_t)i;
    REQUIRE(lst_threema_pad(0x02, body, 44, 0, &c) == LST_OK);
    REQUIRE(lst_threema_msg_decode((const uint8_t *)c.data, c.len, &out, &why) == LST_OK);
    CHECK_EQ(out.kind, LST_THREEMA_MSG_IMAGE);
    CHECK_STREQ(out.image.blob_id, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    CHECK_EQ(out.image.size, 0x12345678);
    CHECK(out.image.nonce[0] == 0 && out.image.nonce[23] == 23);
    lst_threema_msg_cleanup(&out);
    CHECK_EQ(lst_threema_msg_decode_body(0x02, body, 43, &out, &why), LST_ERR_INVALID);
    /* Image cannot be encoded. */
    out.kind = LST_THREEMA_MSG_IMAGE;
    CHECK_EQ(lst_threema_msg_encode(&out, 0, &c, &why), LST_ERR_INVALID);

    /* Types we do not decode: recorded, not failed. */
    const uint8_t types[] = {0x13, 0x15, 0x41, 0x60, 0x81, 0x92, 0xa0, 0x00, 0xff};
    for (size_t i = 0; i < sizeof(types); i++) {
        REQUIRE(lst_threema_pad(types[i], body, 10, 0, &c) == LST_OK);
        CHECK_EQ(lst_threema_msg_decode((const uint8_t *)c.data, c.len, &out, &why), LST_OK);
        CHECK_EQ(out.kind, LST_THREEMA_MSG_UNSUPPORTED);
        CHECK_EQ(out.type, types[i]);
        CHECK_EQ(out.body_len, 10);
        CHECK_STREQ(lst_threema_msg_kind_name(out.kind), "unsupported");
        lst_threema_msg_cleanup(&out);
    }
    /* But bad padding still fails. */
    const uint8_t badpad[] = {0x13, 1, 2, 0};
    CHECK_EQ(lst_threema_msg_decode(badpad, 4, &out, &why), LST_ERR_INVALID);
    lst_buf_cleanup(&why);
    lst_buf_cleanup(&c);
}

static void test_box_limit(void)
{
    /* A file message whose JSON pushes the box over 4000 bytes is refused before sending. */
    struct lst_threema_msg m;
    struct lst_buf box, why;
    uint8_t nonce[24];
    lst_buf_init(&box);
    lst_buf_init(&why);
    setup();
    fill_file(&m);
    free(m.file.caption);
    m.file.caption = malloc(4001);
    memset(m.file.caption, 'c', 4000);
    m.file.caption[4000] = '\0';
    CHECK_EQ(lst_threema_msg_seal(&m, &alice_to_bob, nonce, &box, &why), LST_ERR_TOO_LARGE);
    CHECK_EQ(box.len, 0);
    lst_threema_msg_cleanup(&m);
    lst_buf_cleanup(&box);
    lst_buf_cleanup(&why);
}

LST_TEST_MAIN(T(test_text), T(test_file_exact_json), T(test_file_round_trip), T(test_file_decode),
              T(test_image_as_file_j1), T(test_location), T(test_receipt), T(test_typing),
              T(test_legacy_image_and_unsupported), T(test_box_limit))
