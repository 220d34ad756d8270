/* status.c - names of the status codes. */
#include "common/status.h"

const char *st_str(int rc)
{
	switch (rc) {
	case ST_OK:       return "ok";
	case ST_EINVAL:   return "invalid argument";
	case ST_ENOMEM:   return "out of memory";
	case ST_EIO:      return "i/o error";
	case ST_ENET:     return "network error";
	case ST_ECUDA:    return "cuda error";
	case ST_EAUTH:    return "authentication failed";
	case ST_ECANCEL:  return "cancelled";
	case ST_ENOENT:   return "not found";
	case ST_EFORMAT:  return "bad format";
	case ST_ETIMEOUT: return "timed out";
	case ST_EFULL:    return "full";
	case ST_ENOSYS:   return "not built";
	case ST_ERANGE:   return "out of range";
	case ST_ECRC:     return "checksum mismatch";
	default:          return "unknown error";
	}
}
