/* The Threema Gateway protocol (no HTTP): keys, end-to-end crypto with padding, blob crypto,
 * message containers, the incoming callback (form body + MAC) and the lookup hashes. The
 * reference is docs threema-gateway.md; every byte here must match what the apps and the
 * official SDKs produce and accept.
 *
 * All crypto is libsodium: crypto_box (X25519 + XSalsa20-Poly1305) for messages,
 * crypto_secretbox for blobs, HMAC-SHA256 for callbacks and lookup hashes. Call
 * lst_threema_init() once before anything else (it runs sodium_init, which is idempotent and
 * thread-safe); every other function here is thread-safe unless it says otherwise.
 *
 * Conventions:
 *   - Binary values are uint8_t arrays of the sizes below; hex in and out is lowercase on
 *     output, either case on input, with strict lengths.
 *   - `why` (struct lst_buf *, may be NULL) receives a precise one-line reason on failure,
 *     replacing its content; it is left alone on success.
 *   - Outputs into a struct lst_buf replace its content (reset first); on failure it is empty.
 *   - Secret material (private keys, shared keys, blob keys) is wiped with sodium_memzero by
 *     the matching _cleanup / _destroy; callers holding copies on the stack should wipe them
 *     too (lst_threema_wipe).
 *
 * Errors: LST_ERR_INVALID (malformed input), LST_ERR_TOO_LARGE (above a limit below),
 * LST_ERR_UTF8 (invalid UTF-8), LST_ERR_RANGE (a number out of bounds), LST_ERR_CRYPTO
 * (authentication failed: wrong key, tampered box, bad MAC; also an all-zero or low-order
 * key), LST_ERR_IO / LST_ERR_NOT_FOUND (key files), LST_ERR_NOMEM. */
#ifndef LST_THREEMA_H
#define LST_THREEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lst/error.h"
#include "lst/util.h"

/* ---- sizes and limits (_SIZE: bytes, _HEX: hex characters without NUL) ----------------- */

#define LST_THREEMA_ID_SIZE         8  /* Threema ID / Gateway ID: 8 chars, [*0-9A-Z][0-9A-Z]{7} */
#define LST_THREEMA_MSGID_SIZE      8  /* message ID */
#define LST_THREEMA_MSGID_HEX       16 /* as the Gateway returns and callbacks carry it */
#define LST_THREEMA_BLOB_ID_SIZE    16
#define LST_THREEMA_BLOB_ID_HEX     32
#define LST_THREEMA_NONCE_SIZE      24 /* crypto_box / crypto_secretbox nonce */
#define LST_THREEMA_NONCE_HEX       48
#define LST_THREEMA_KEY_SIZE        32 /* public, private, shared and blob keys */
#define LST_THREEMA_KEY_HEX         64
#define LST_THREEMA_MAC_SIZE        32 /* callback HMAC-SHA256 */
#define LST_THREEMA_MAC_HEX         64
#define LST_THREEMA_HASH_HEX        64 /* lookup hash */
#define LST_THREEMA_BOX_OVERHEAD    16 /* Poly1305 tag in front of the ciphertext */
#define LST_THREEMA_BOX_MIN         (LST_THREEMA_BOX_OVERHEAD + 2) /* tag + type + 1 padding byte */
#define LST_THREEMA_BOX_MAX         4000  /* bytes of a send_e2e box (binary, before hex) */
#define LST_THREEMA_IN_BOX_MAX      65536 /* bytes of a callback box we accept (generous) */
#define LST_THREEMA_TEXT_MAX        3500  /* bytes of UTF-8 in a text we send */
#define LST_THREEMA_IN_TEXT_MAX     16384 /* bytes of text we accept from a phone (never lose) */
#define LST_THREEMA_PAD_MIN_TOTAL   32    /* body + padding is at least this (type excluded) */
#define LST_THREEMA_RECEIPT_IDS_MAX 512   /* message IDs in one receipt we encode or accept */
#define LST_THREEMA_KEY_STR_SIZE    (8 + LST_THREEMA_KEY_HEX + 1) /* "private:" + hex + NUL */

/* Container types (the first plaintext byte). */
enum lst_threema_type {
    LST_THREEMA_TYPE_TEXT = 0x01,
    LST_THREEMA_TYPE_IMAGE = 0x02, /* legacy, receive only */
    LST_THREEMA_TYPE_LOCATION = 0x10,
    LST_THREEMA_TYPE_FILE = 0x17,
    LST_THREEMA_TYPE_RECEIPT = 0x80,
    LST_THREEMA_TYPE_TYPING = 0x90,
};

/* Delivery receipt status bytes. Other values are kept as they are. */
enum lst_threema_receipt_status {
    LST_THREEMA_RECEIPT_RECEIVED = 1,
    LST_THREEMA_RECEIPT_READ = 2,
    LST_THREEMA_RECEIPT_ACK = 3,
    LST_THREEMA_RECEIPT_DECLINE = 4,
};

/* Runs sodium_init. LST_ERR_CRYPTO when libsodium cannot initialise. */
lst_err lst_threema_init(void);

/* sodium_memzero; here so callers need not include sodium.h. */
void lst_threema_wipe(void *p, size_t len);

/* ---- hex and identifiers ------------------------------------------------------------- */

/* Decodes exactly hex_len == 2 * out_size hex chars (either case) into out. Anything else,
 * including a wrong length, is LST_ERR_INVALID. */
lst_err lst_threema_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_size);
/* Writes 2 * len lowercase hex chars and a NUL into out (out_size >= 2 * len + 1). */
void lst_threema_hex_encode(const uint8_t *in, size_t len, char *out, size_t out_size);
/* Decodes hex of any even length into out (replaced). Empty hex is invalid. */
lst_err lst_threema_hex_decode_buf(const char *hex, size_t hex_len, struct lst_buf *out);

/* True for 8 chars of [0-9A-Z] (the first may be '*', a Gateway ID). */
bool lst_threema_id_valid(const char *s, size_t len);

/* ---- keys ---------------------------------------------------------------------------- */

enum lst_threema_key_kind {
    LST_THREEMA_KEY_PRIVATE = 0,
    LST_THREEMA_KEY_PUBLIC = 1,
};

/* Parses "private:<64 hex>" or "public:<64 hex>" (the kind must match; hex of either case;
 * nothing before or after). The all-zero key is rejected (LST_ERR_INVALID) for both kinds. */
lst_err lst_threema_key_parse(const char *s, enum lst_threema_key_kind kind,
                              uint8_t key[LST_THREEMA_KEY_SIZE], struct lst_buf *why);
/* Writes "private:<hex>" / "public:<hex>" (lowercase) into out. */
void lst_threema_key_format(enum lst_threema_key_kind kind, const uint8_t key[LST_THREEMA_KEY_SIZE],
                            char out[LST_THREEMA_KEY_STR_SIZE]);
/* Reads the first line of a key file (trailing whitespace and CR trimmed) and parses it.
 * LST_ERR_NOT_FOUND / LST_ERR_IO for file errors. The read buffer is wiped. */
lst_err lst_threema_key_read_file(const char *path, enum lst_threema_key_kind kind,
                                  uint8_t key[LST_THREEMA_KEY_SIZE], struct lst_buf *why);
/* Key from a command-line argument: a key string when it starts with "private:" or "public:",
 * otherwise the path of a key file. */
lst_err lst_threema_key_load(const char *arg, enum lst_threema_key_kind kind,
                             uint8_t key[LST_THREEMA_KEY_SIZE], struct lst_buf *why);
/* Writes "private:<hex>\n" / "public:<hex>\n" to path, created with mode 0600 for private
 * keys (0644 for public); fails with LST_ERR_IO if the file exists. */
lst_err lst_threema_key_write_file(const char *path, enum lst_threema_key_kind kind,
                                   const uint8_t key[LST_THREEMA_KEY_SIZE], struct lst_buf *why);
/* pk = X25519 base point * sk (crypto_scalarmult_base). Rejects the all-zero private key. */
lst_err lst_threema_key_derive(const uint8_t sk[LST_THREEMA_KEY_SIZE],
                               uint8_t pk[LST_THREEMA_KEY_SIZE]);
/* A fresh key pair (crypto_box_keypair). */
lst_err lst_threema_key_generate(uint8_t sk[LST_THREEMA_KEY_SIZE],
                                 uint8_t pk[LST_THREEMA_KEY_SIZE]);
/* True when all 32 bytes are zero (constant time). */
bool lst_threema_key_is_zero(const uint8_t key[LST_THREEMA_KEY_SIZE]);

/* ---- end-to-end crypto --------------------------------------------------------------- */

/* A precomputed shared key (crypto_box_beforenm of our private and the peer's public key).
 * Embedded; pair _init with _cleanup (wipes). */
struct lst_threema_shared {
    uint8_t k[LST_THREEMA_KEY_SIZE];
};

/* LST_ERR_CRYPTO for an all-zero or low-order peer key (libsodium refuses those). */
lst_err lst_threema_shared_init(struct lst_threema_shared *s,
                                const uint8_t our_sk[LST_THREEMA_KEY_SIZE],
                                const uint8_t their_pk[LST_THREEMA_KEY_SIZE]);
void lst_threema_shared_cleanup(struct lst_threema_shared *s);

/* Encrypts plain (a padded container) with a fresh random nonce (written to nonce) into box
 * (crypto_box_easy layout: 16-byte tag then ciphertext). */
lst_err lst_threema_encrypt(const struct lst_threema_shared *s, const uint8_t *plain, size_t len,
                            uint8_t nonce[LST_THREEMA_NONCE_SIZE], struct lst_buf *box);
/* The same with a given nonce (tests, the simulator's determinism). Never reuse a nonce. */
lst_err lst_threema_encrypt_nonce(const struct lst_threema_shared *s, const uint8_t *plain,
                                  size_t len, const uint8_t nonce[LST_THREEMA_NONCE_SIZE],
                                  struct lst_buf *box);
/* Opens a box. LST_ERR_INVALID when shorter than the tag, LST_ERR_CRYPTO when it does not
 * authenticate. */
lst_err lst_threema_decrypt(const struct lst_threema_shared *s,
                            const uint8_t nonce[LST_THREEMA_NONCE_SIZE], const uint8_t *box,
                            size_t box_len, struct lst_buf *plain);

/* A bounded, thread-safe cache of shared keys for one own private key, keyed by the peer's
 * public key, least recently used evicted. Saves one X25519 per message. */
struct lst_threema_keycache;

/* capacity >= 1. The private key is copied (and wiped on destroy). */
lst_err lst_threema_keycache_create(const uint8_t our_sk[LST_THREEMA_KEY_SIZE], size_t capacity,
                                    struct lst_threema_keycache **out);
void lst_threema_keycache_destroy(struct lst_threema_keycache *c);
/* Copies the shared key for their_pk into out (computing and caching it on a miss); the
 * caller owns the copy and calls lst_threema_shared_cleanup on it. */
lst_err lst_threema_keycache_get(struct lst_threema_keycache *c,
                                 const uint8_t their_pk[LST_THREEMA_KEY_SIZE],
                                 struct lst_threema_shared *out);
/* Entries now cached; hits and misses since creation (for metrics). */
void lst_threema_keycache_stats(struct lst_threema_keycache *c, size_t *size, uint64_t *hits,
                                uint64_t *misses);

/* ---- blobs ----------------------------------------------------------------------------- */

enum lst_threema_blob_kind {
    LST_THREEMA_BLOB_FILE = 1,      /* nonce: 23 zero bytes then 0x01 */
    LST_THREEMA_BLOB_THUMBNAIL = 2, /* nonce: 23 zero bytes then 0x02 */
};

/* A fresh random blob key (one per file message, shared by its file and thumbnail). */
void lst_threema_blob_keygen(uint8_t key[LST_THREEMA_KEY_SIZE]);
/* secretbox with the fixed nonce of kind; out is what upload_blob takes: tag then ciphertext,
 * without the nonce. */
lst_err lst_threema_blob_encrypt(const uint8_t key[LST_THREEMA_KEY_SIZE],
                                 enum lst_threema_blob_kind kind, const uint8_t *plain, size_t len,
                                 struct lst_buf *out);
/* Opens a downloaded blob. LST_ERR_INVALID when shorter than the tag, LST_ERR_CRYPTO when it
 * does not authenticate. */
lst_err lst_threema_blob_decrypt(const uint8_t key[LST_THREEMA_KEY_SIZE],
                                 enum lst_threema_blob_kind kind, const uint8_t *box, size_t len,
                                 struct lst_buf *out);

/* ---- containers ----------------------------------------------------------------------- */

/* Frames type | body | padding into out. padding 0 picks P uniformly in 1..255 from the
 * CSPRNG; any other value is used as P. Either way P is raised so that body_len + P >= 32
 * (the type byte does not count, as in the official SDK). body_len above
 * LST_THREEMA_IN_BOX_MAX is LST_ERR_TOO_LARGE. */
lst_err lst_threema_pad(uint8_t type, const uint8_t *body, size_t body_len, uint8_t padding,
                        struct lst_buf *out);
/* Splits a decrypted container: type, and body[0..body_len) borrowed from data. Accepts any
 * P in [1, len - 1]; P = 0, P >= len or a padding byte that differs from P is
 * LST_ERR_INVALID. */
lst_err lst_threema_unpad(const uint8_t *data, size_t len, uint8_t *type, const uint8_t **body,
                          size_t *body_len, struct lst_buf *why);

enum lst_threema_msg_kind {
    LST_THREEMA_MSG_TEXT = 0,
    LST_THREEMA_MSG_IMAGE, /* legacy 0x02, decode only */
    LST_THREEMA_MSG_LOCATION,
    LST_THREEMA_MSG_FILE,
    LST_THREEMA_MSG_RECEIPT,
    LST_THREEMA_MSG_TYPING,
    LST_THREEMA_MSG_UNSUPPORTED, /* any other type: type and body_len say what it was */
};

/* "text", "image", "location", "file", "receipt", "typing", "unsupported". */
const char *lst_threema_msg_kind_name(enum lst_threema_msg_kind kind);

/* File message JSON. blob_id/thumbnail_blob_id are lowercase hex ("" when absent); strings
 * are owned (NULL when absent). */
struct lst_threema_file {
    char blob_id[LST_THREEMA_BLOB_ID_HEX + 1];           /* b, required */
    uint8_t key[LST_THREEMA_KEY_SIZE];                   /* k, required (wiped by cleanup) */
    char *mime;                                          /* m, required, non-empty */
    int64_t size;                                        /* s, required, >= 0 */
    char *name;                                          /* n */
    char thumbnail_blob_id[LST_THREEMA_BLOB_ID_HEX + 1]; /* t */
    char *thumbnail_mime;                                /* p */
    char *caption;                                       /* d */
    bool has_rendering;
    int rendering; /* j: 0 file, 1 media, 2 sticker; other values kept on decode */
    bool has_legacy;
    int legacy; /* i: 1 media else 0 (only meaningful without j) */
    /* x: metadata; has_meta says whether "x" is present at all */
    bool has_meta;
    bool has_width, has_height, has_duration, has_animated;
    int64_t width, height; /* pixels */
    double duration;       /* seconds */
    bool animated;
};

/* Location: "lat,lon[,accuracy]" then optionally lines. On decode, two lines mean the second
 * is the address, three mean name then address (as the apps write them); a literal "\n" in
 * the address is unescaped. On encode, newlines in the address are escaped, a name without an
 * address is written with an empty address line. */
struct lst_threema_location {
    double lat; /* -90..90 */
    double lon; /* -180..180 */
    bool has_accuracy;
    double accuracy; /* metres, >= 0 */
    char *name;      /* owned, NULL when absent; no newlines */
    char *address;   /* owned, NULL when absent */
};

struct lst_threema_receipt {
    uint8_t status; /* enum lst_threema_receipt_status, unknown values kept */
    size_t count;   /* >= 1 */
    uint8_t (*ids)[LST_THREEMA_MSGID_SIZE]; /* owned array of count IDs, in container order */
};

/* Legacy image (0x02): the blob is a crypto_box of the image with this nonce and the same
 * key pair as the message. */
struct lst_threema_image {
    char blob_id[LST_THREEMA_BLOB_ID_HEX + 1];
    uint32_t size;
    uint8_t nonce[LST_THREEMA_NONCE_SIZE];
};

/* A decoded (or to-be-encoded) message. Only the member for kind is meaningful; all owned
 * pointers are freed by lst_threema_msg_cleanup, which is safe on a zeroed struct and twice. */
struct lst_threema_msg {
    enum lst_threema_msg_kind kind;
    uint8_t type;    /* the container type byte (set by decode; encode derives it from kind) */
    size_t body_len; /* decode: bytes between type and padding */
    char *text;      /* text: owned, NUL-terminated */
    size_t text_len;
    struct lst_threema_file file;
    struct lst_threema_location location;
    struct lst_threema_receipt receipt;
    bool typing; /* typing: body byte != 0 */
    struct lst_threema_image image;
};

void lst_threema_msg_cleanup(struct lst_threema_msg *m);

/* Helpers to fill a message for encoding (m is cleaned up first; strings copied). */
lst_err lst_threema_msg_set_text(struct lst_threema_msg *m, const char *text, size_t len);
/* ids: count * 8 bytes. */
lst_err lst_threema_msg_set_receipt(struct lst_threema_msg *m, uint8_t status, const uint8_t *ids,
                                    size_t count);

/* Validates m and writes its body (no type, no padding) into out. Limits: text UTF-8 and
 * <= LST_THREEMA_TEXT_MAX; file: blob ID 32 hex, mime non-empty, size >= 0, strings UTF-8;
 * location ranges; receipt 1..LST_THREEMA_RECEIPT_IDS_MAX IDs. IMAGE and UNSUPPORTED cannot
 * be encoded (LST_ERR_INVALID). File JSON is compact, keys in the order b,k,m,s,n,t,p,d,j,i,x. */
lst_err lst_threema_msg_encode_body(const struct lst_threema_msg *m, struct lst_buf *out,
                                    struct lst_buf *why);
/* encode_body then lst_threema_pad (padding as there: 0 = random). */
lst_err lst_threema_msg_encode(const struct lst_threema_msg *m, uint8_t padding,
                               struct lst_buf *out, struct lst_buf *why);
/* Decodes the body of a container of the given type (after unpad) into m (overwritten; need
 * not be initialised; zeroed and nothing to free on failure). Unknown types give kind
 * UNSUPPORTED and LST_OK. File JSON: required b, k, m, s; unknown keys ignored; optional keys
 * of the wrong JSON type are ignored. */
lst_err lst_threema_msg_decode_body(uint8_t type, const uint8_t *body, size_t len,
                                    struct lst_threema_msg *m, struct lst_buf *why);
/* lst_threema_unpad then lst_threema_msg_decode_body. */
lst_err lst_threema_msg_decode(const uint8_t *data, size_t len, struct lst_threema_msg *m,
                               struct lst_buf *why);

/* Encode, pad (random) and encrypt with a fresh nonce: what send_e2e takes. */
lst_err lst_threema_msg_seal(const struct lst_threema_msg *m, const struct lst_threema_shared *s,
                             uint8_t nonce[LST_THREEMA_NONCE_SIZE], struct lst_buf *box,
                             struct lst_buf *why);
/* Decrypt and decode. LST_ERR_CRYPTO when the box does not open; decoding errors as above. */
lst_err lst_threema_msg_open(const struct lst_threema_shared *s,
                             const uint8_t nonce[LST_THREEMA_NONCE_SIZE], const uint8_t *box,
                             size_t box_len, struct lst_threema_msg *m, struct lst_buf *why);

/* ---- incoming callback --------------------------------------------------------------------- */

/* The fields of one callback. Owned: box, nickname. */
struct lst_threema_callback {
    char from[LST_THREEMA_ID_SIZE + 1];         /* sender's Threema ID */
    char to[LST_THREEMA_ID_SIZE + 1];           /* our Gateway ID */
    char message_id[LST_THREEMA_MSGID_HEX + 1]; /* lowercase hex */
    uint8_t message_id_bytes[LST_THREEMA_MSGID_SIZE];
    int64_t date; /* UNIX seconds */
    uint8_t nonce[LST_THREEMA_NONCE_SIZE];
    uint8_t *box; /* box_len bytes, owned */
    size_t box_len;
    uint8_t mac[LST_THREEMA_MAC_SIZE]; /* parse: as received; build: ignored (computed) */
    char *nickname;                    /* owned UTF-8, NULL when absent */
};

/* Parses an application/x-www-form-urlencoded callback body and verifies it:
 *   1. split on '&', URL-decode names and values ('+' and %XX); an unknown name is ignored,
 *      a duplicate or missing field (from, to, messageId, date, nonce, box, mac) is
 *      LST_ERR_INVALID;
 *   2. mac must be 64 hex; the HMAC-SHA256 with secret over the decoded
 *      from|to|messageId|date|nonce|box strings is compared in constant time: a mismatch is
 *      LST_ERR_CRYPTO, before anything else is looked at;
 *   3. then field formats: from/to Threema IDs, messageId 16 hex, date decimal >= 0, nonce 48
 *      hex, box even hex of LST_THREEMA_BOX_MIN..LST_THREEMA_IN_BOX_MAX bytes, nickname UTF-8
 *      (LST_ERR_INVALID / LST_ERR_TOO_LARGE / LST_ERR_UTF8).
 * out is overwritten (zeroed on failure). In builds with LST_FUZZING defined the MAC
 * comparison result is ignored so that fuzzers reach step 3; never ship such a build. */
lst_err lst_threema_callback_parse(const char *body, size_t len, const char *secret,
                                   struct lst_threema_callback *out, struct lst_buf *why);
void lst_threema_callback_cleanup(struct lst_threema_callback *cb);
/* Steps 1 and 2 of lst_threema_callback_parse only: LST_OK when the form is complete and the
 * MAC is right, LST_ERR_CRYPTO for a wrong MAC, LST_ERR_INVALID for a form too broken to
 * check. A caller that must tell "authentic but malformed" (answer 200, record it) from "not
 * authentic" (reject) calls this first, then parse. Not affected by LST_FUZZING. */
lst_err lst_threema_callback_verify(const char *body, size_t len, const char *secret,
                                    struct lst_buf *why);

/* The MAC over the six strings exactly as they are (not re-encoded). */
void lst_threema_callback_mac(const char *secret, const char *from, const char *to,
                              const char *message_id, const char *date, const char *nonce_hex,
                              const char *box_hex, uint8_t mac[LST_THREEMA_MAC_SIZE]);

/* Builds a signed form body from cb (from, to, message_id, date, nonce, box, nickname; the
 * mac member is ignored and computed). Hex is lowercase, values URL-encoded where needed
 * ('*' as %2A). */
lst_err lst_threema_callback_build(const struct lst_threema_callback *cb, const char *secret,
                                   struct lst_buf *body, struct lst_buf *why);

/* URL-encodes s[0..len) into out (appended): unreserved chars as they are, everything else
 * %XX (uppercase), so '*' becomes %2A and ' ' %20. */
lst_err lst_threema_url_encode(const char *s, size_t len, struct lst_buf *out);

/* ---- lookup hashes ------------------------------------------------------------------------- */

/* E-mail: trim surrounding whitespace, ASCII-lowercase; empty or > 254 bytes is invalid. */
lst_err lst_threema_normalize_email(const char *email, struct lst_buf *out);
/* Phone: digits only (spaces and + - ( ) . / are dropped, anything else is invalid), 1..15
 * digits (E.164 without '+'). */
lst_err lst_threema_normalize_phone(const char *phone, struct lst_buf *out);
/* HMAC-SHA256 with the Gateway's fixed keys over the normalised value, 64 lowercase hex. */
lst_err lst_threema_hash_email(const char *email, char out[LST_THREEMA_HASH_HEX + 1]);
lst_err lst_threema_hash_phone(const char *phone, char out[LST_THREEMA_HASH_HEX + 1]);

#endif
