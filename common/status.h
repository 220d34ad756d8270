/*
 * status.h - the status codes every library function returns.
 *
 * Library code returns int: 0 on success or a negative enum status.
 * Only main() and tests exit. st_str() names a code for messages.
 */
#ifndef GR_STATUS_H
#define GR_STATUS_H

enum status {
	ST_OK       = 0,
	ST_EINVAL   = -1,	/* bad argument or malformed input */
	ST_ENOMEM   = -2,	/* allocation failed */
	ST_EIO      = -3,	/* file or stream error */
	ST_ENET     = -4,	/* network error (may be retryable) */
	ST_ECUDA    = -5,	/* CUDA or cuBLAS error */
	ST_EAUTH    = -6,	/* authentication or authorisation failed */
	ST_ECANCEL  = -7,	/* cancelled by the caller */
	ST_ENOENT   = -8,	/* no such file, object or tensor */
	ST_EFORMAT  = -9,	/* data does not follow its format */
	ST_ETIMEOUT = -10,	/* deadline passed */
	ST_EFULL    = -11,	/* queue or pool full */
	ST_ENOSYS   = -12,	/* not built into this binary */
	ST_ERANGE   = -13,	/* value out of range */
	ST_ECRC     = -14,	/* checksum mismatch */
};

/* Short lowercase name of a status code ("einval"); never NULL. */
const char *st_str(int rc);

#endif
