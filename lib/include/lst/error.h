/* Project error codes. Every module returns an lst_err; library codes (rd_kafka_resp_err_t,
 * hiredis err, CURLcode, MHD results) are mapped to these at the wrapper that calls them. */
#ifndef LST_ERROR_H
#define LST_ERROR_H

typedef enum lst_err {
    LST_OK = 0,
    LST_ERR_NOMEM,       /* allocation failed */
    LST_ERR_INVALID,     /* malformed input: the caller's data is wrong */
    LST_ERR_RANGE,       /* a number outside its bounds */
    LST_ERR_TOO_LARGE,   /* a string, body or record above its size limit */
    LST_ERR_UTF8,        /* text that is not valid UTF-8 */
    LST_ERR_VERSION,     /* a record with a schema version we do not know */
    LST_ERR_NOT_FOUND,   /* a key, file or entry that does not exist */
    LST_ERR_IO,          /* a file or socket operation failed */
    LST_ERR_TIMEOUT,     /* a bounded wait ran out */
    LST_ERR_CONFIG,      /* a configuration value is missing or wrong */
    LST_ERR_KAFKA,       /* a Kafka operation failed; retrying may help */
    LST_ERR_KAFKA_FATAL, /* the producer hit a fatal error: it must be recreated */
    LST_ERR_REDIS,       /* a Redis command or connection failed */
    LST_ERR_HTTP,        /* an HTTP server or client failure */
    LST_ERR_CRYPTO,      /* authentication or decryption failed */
    LST_ERR_STATE,       /* the operation is not valid in the current state */
    LST_ERR_SHUTDOWN,    /* the component is shutting down and accepts no more work */
    LST_ERR__COUNT
} lst_err;

/* A short, stable, lowercase description. Never NULL; static storage. */
const char *lst_strerror(lst_err err);

/* A stable identifier such as "invalid" for JSON error replies and log fields. */
const char *lst_err_name(lst_err err);

#endif
