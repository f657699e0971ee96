/* Private helpers shared by the threema_*.c files; not part of the public API. */
#ifndef LST_THREEMA_INTERNAL_H
#define LST_THREEMA_INTERNAL_H

#include "lst/threema.h"

/* Replaces why's content with the formatted reason (when why is not NULL); returns err. */
lst_err lst_threema_fail(struct lst_buf *why, lst_err err, const char *fmt, ...) LST_PRINTF(3, 4);

/* File message JSON (threema_file.c). decode fills f (zeroed first; cleaned up on failure). */
lst_err lst_threema_file_encode(const struct lst_threema_file *f, struct lst_buf *out,
                                struct lst_buf *why);
lst_err lst_threema_file_decode(const uint8_t *body, size_t len, struct lst_threema_file *f,
                                struct lst_buf *why);
void lst_threema_file_cleanup(struct lst_threema_file *f);

#endif
