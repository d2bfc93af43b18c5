#include "pass_util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct pass_data_t {
  const moai_external_pass_t *def;
  size_t options_size;
  unsigned char options[];
} pass_data_t;

static atomic_long g_live_passes;

static pass_data_t *data_copy(const moai_external_pass_t *def,
                              const void *options, size_t size) {
  pass_data_t *d = malloc(sizeof(pass_data_t) + size);
  if (!d) return NULL;
  d->def = def;
  d->options_size = size;
  if (size) memcpy(d->options, options, size);
  atomic_fetch_add(&g_live_passes, 1);
  return d;
}

static void cb_construct(void *user_data) { (void)user_data; }

static void cb_destruct(void *user_data) {
  free(user_data);
  atomic_fetch_sub(&g_live_passes, 1);
}

static MlirLogicalResult cb_initialize(MlirContext ctx, void *user_data) {
  (void)ctx;
  (void)user_data;
  return mlirLogicalResultSuccess();
}

static void *cb_clone(void *user_data) {
  pass_data_t *d = user_data;
  return data_copy(d->def, d->options, d->options_size);
}

static void cb_run(MlirOperation op, MlirExternalPass pass, void *user_data) {
  pass_data_t *d = user_data;
  d->def->run(op, pass, d->options);
}

MlirPass moai_external_pass_create(const moai_external_pass_t *def,
                                   const void *options, size_t options_size) {
  pass_data_t *d = data_copy(def, options, options_size);
  if (!d) return (MlirPass){NULL};
  MlirExternalPassCallbacks callbacks = {
      .construct = cb_construct,
      .destruct = cb_destruct,
      .initialize = cb_initialize,
      .clone = cb_clone,
      .run = cb_run,
  };
  return mlirCreateExternalPass(
      mlirTypeIDCreate(def->type_id_storage),
      mlirStringRefCreateFromCString(def->name),
      mlirStringRefCreateFromCString(def->argument),
      mlirStringRefCreateFromCString(def->description),
      mlirStringRefCreateFromCString(def->op_name), 0, NULL, callbacks, d);
}

long moai_external_pass_live_count(void) {
  return atomic_load(&g_live_passes);
}
