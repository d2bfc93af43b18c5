/* Shared main for CUnit test executables: each test file defines
 * moai_test_register() adding its suites. CUnit's basic runner returns
 * success even when tests fail, so the exit code comes from the failure
 * count. */
#include <CUnit/Basic.h>
#include <stdio.h>

#include "moai_test.h"

int main(void) {
  if (CU_initialize_registry() != CUE_SUCCESS) {
    fprintf(stderr, "CUnit: cannot initialise the registry\n");
    return 2;
  }
  moai_test_register();
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned failed = CU_get_number_of_tests_failed() +
                    CU_get_number_of_failures();
  unsigned ran = CU_get_number_of_tests_run();
  CU_cleanup_registry();
  if (ran == 0) {
    fprintf(stderr, "no test ran\n");
    return 1;
  }
  return failed ? 1 : 0;
}
