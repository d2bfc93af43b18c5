/* make_test_plan DEVICE_SO PLAN_DIR: writes the plan of the hand-built device
 * binary (test_device.c; see test_plan_builder.h) for moai-run's CLI tests. */
#include <stdio.h>

#include "test_plan_builder.h"

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: make_test_plan DEVICE_SO PLAN_DIR\n");
    return 2;
  }
  moai_status_t status = tp_write_plan(argv[2], argv[1]);
  if (status) {
    fprintf(stderr, "make_test_plan: ");
    moai_status_fprint(stderr, status, true);
    moai_status_free(status);
    return 1;
  }
  return 0;
}
