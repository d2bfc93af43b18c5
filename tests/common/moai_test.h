/* Helpers for moai's CUnit tests. */
#ifndef MOAI_TEST_H
#define MOAI_TEST_H

#include <CUnit/CUnit.h>
#include <stdlib.h>

/* Defined by each test file: adds its suites to the registry. */
void moai_test_register(void);

/* Adds a suite with the given tests ({name, fn} pairs ending in {NULL,NULL}). */
static inline void moai_test_add_suite(const char *name, CU_TestInfo *tests) {
  CU_pSuite suite = CU_add_suite(name, NULL, NULL);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}

/* The source tree (MOAI_SOURCE_DIR, set by ctest), or "." */
static inline const char *moai_test_source_dir(void) {
  const char *d = getenv("MOAI_SOURCE_DIR");
  return d ? d : ".";
}

static inline const char *moai_test_binary_dir(void) {
  const char *d = getenv("MOAI_BINARY_DIR");
  return d ? d : ".";
}

#endif /* MOAI_TEST_H */
