/* version.h - the version string reported by --version and GET /version. */
#ifndef GR_VERSION_H
#define GR_VERSION_H
#define GR_VERSION "0.1.0"
#endif
