/* moai's version, for --version and plan manifests. */
#ifndef MOAI_VERSION_H
#define MOAI_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

/* "0.1.0": the release this library was built from. */
const char *moai_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_VERSION_H */
