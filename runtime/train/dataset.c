#include "train/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io/dtype.h"
#include "io/file.h"
#include "io/npy.h"
#include "io/safetensors.h"

typedef struct dataset_array_t {
  const char *name; /* the plan input's (borrowed from the dataset's copy) */
  int32_t dtype;
  const unsigned char *data;
  uint64_t row_bytes;
  moai_npy_t *npy; /* directory form: owned */
} dataset_array_t;

struct moai_dataset_t {
  moai_allocator_t allocator;
  moai_safetensors_t *st; /* file form: owned */
  size_t count;
  dataset_array_t *arrays; /* one per plan input, in plan order */
  char **names;            /* copies of the input names */
  uint64_t examples, micro_batch;
  long labels; /* filler: the labels input, or -1 */
  int64_t ignore_index;
};

/* What one array looks like, wherever it came from. */
typedef struct array_view_t {
  int32_t dtype, rank;
  const int64_t *dims;
  const void *data;
} array_view_t;

/* Checks one array against its plan input; `file` names it in messages. */
static moai_status_t check_array(const char *file, const moai_tensor_desc_t *want,
                                 const array_view_t *have) {
  int32_t dtype = have->dtype;
  /* NumPy has no bfloat16: a <u2 array carries its bits (io/npy.h). */
  if (want->dtype == MOAI_ABI_BF16 && dtype == MOAI_ABI_U16) dtype = MOAI_ABI_BF16;
  if (dtype != want->dtype)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: array '%s' is %s, the plan's input '%s' is %s",
                       file, want->name, moai_abi_dtype_name(have->dtype), want->name,
                       moai_abi_dtype_name(want->dtype));
  char hs[160], ws[160], hr[160], wr[160];
  moai_shape_format(have->rank, have->dims, hs, sizeof(hs));
  moai_shape_format(want->rank, want->dims, ws, sizeof(ws));
  if (have->rank == 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: array '%s' is a scalar; it needs one example per index of its "
                       "first dimension (the plan's input is %s)", file, want->name, ws);
  bool same = have->rank == want->rank;
  for (int32_t d = 1; same && d < want->rank; ++d) same = have->dims[d] == want->dims[d];
  if (!same) {
    moai_shape_format(have->rank - 1, have->dims + 1, hr, sizeof(hr));
    moai_shape_format(want->rank - 1, want->dims + 1, wr, sizeof(wr));
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: array '%s' is %s (examples of shape %s), the plan's input '%s' is "
                       "%s (examples of shape %s)", file, want->name, hs, hr, want->name, ws, wr);
  }
  return moai_ok_status();
}

/* Checks the plan inputs: each has a batch dimension, all the same size. */
static moai_status_t check_plan_inputs(const moai_tensor_desc_t *inputs, size_t n) {
  if (n == 0) return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "the plan has no inputs to feed data to");
  for (size_t i = 0; i < n; ++i) {
    if (inputs[i].rank == 0 || inputs[i].dims[0] <= 0)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "the plan's input '%s' has no batch dimension (dim 0) to train over",
                         inputs[i].name);
    if (inputs[i].dims[0] != inputs[0].dims[0])
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "the plan's inputs '%s' (batch %lld) and '%s' (batch %lld) disagree on "
                         "dim 0, the micro-batch size", inputs[0].name,
                         (long long)inputs[0].dims[0], inputs[i].name,
                         (long long)inputs[i].dims[0]);
  }
  return moai_ok_status();
}

static bool is_input(const moai_tensor_desc_t *inputs, size_t n, const char *name) {
  for (size_t i = 0; i < n; ++i)
    if (strcmp(inputs[i].name, name) == 0) return true;
  return false;
}

/* The file form: every input a tensor of the .safetensors file. */
static moai_status_t open_safetensors(moai_dataset_t *ds, const char *path,
                                      const moai_tensor_desc_t *inputs,
                                      const moai_log_sink_t *log) {
  MOAI_RETURN_IF_ERROR(moai_safetensors_open(path, ds->allocator, &ds->st));
  const unsigned char *base = moai_safetensors_data(ds->st);
  for (size_t i = 0; i < ds->count; ++i) {
    const moai_safetensors_entry_t *e = moai_safetensors_find(ds->st, inputs[i].name);
    if (!e) {
      char others[512] = "";
      size_t len = 0;
      for (size_t k = 0; k < moai_safetensors_count(ds->st) && len + 8 < sizeof(others); ++k) {
        const char *n = moai_safetensors_entry(ds->st, k)->name;
        if (is_input(inputs, ds->count, n)) continue;
        int w = snprintf(others + len, sizeof(others) - len, "%s'%s'", len ? ", " : "", n);
        if (w > 0) len += (size_t)w;
      }
      if (len >= sizeof(others)) len = sizeof(others) - 1;
      return MOAI_STATUS(MOAI_NOT_FOUND, "%s: no array '%s' for the plan's input '%s'%s%s%s",
                         path, inputs[i].name, inputs[i].name,
                         len ? " (arrays no input uses: " : "", others, len ? ")" : "");
    }
    array_view_t v = {e->dtype, e->rank, e->dims, base ? base + e->offset : NULL};
    MOAI_RETURN_IF_ERROR(check_array(path, &inputs[i], &v));
    ds->arrays[i].data = v.data;
    ds->arrays[i].dtype = inputs[i].dtype;
  }
  for (size_t k = 0; k < moai_safetensors_count(ds->st); ++k) {
    const char *n = moai_safetensors_entry(ds->st, k)->name;
    if (!is_input(inputs, ds->count, n))
      MOAI_LOG(log, MOAI_LOG_LEVEL_WARNING, "%s: array '%s' is not an input of the plan; ignored",
               path, n);
  }
  return moai_ok_status();
}

/* The directory form: DIR/<input>.npy for every input. */
static moai_status_t open_npy_dir(moai_dataset_t *ds, const char *dir,
                                  const moai_tensor_desc_t *inputs, const moai_log_sink_t *log) {
  char file[PATH_MAX];
  for (size_t i = 0; i < ds->count; ++i) {
    if (strchr(inputs[i].name, '/'))
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "%s: the plan's input '%s' has a '/' in its name and cannot be a file "
                         "of a directory; give the data as a .safetensors file", dir,
                         inputs[i].name);
    if (snprintf(file, sizeof(file), "%s/%s.npy", dir, inputs[i].name) >= (int)sizeof(file))
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: path too long", dir);
    struct stat sb;
    if (stat(file, &sb) != 0)
      return MOAI_STATUS(MOAI_NOT_FOUND, "%s: no %s.npy for the plan's input '%s'", dir,
                         inputs[i].name, inputs[i].name);
    MOAI_RETURN_IF_ERROR(moai_npy_open(file, ds->allocator, &ds->arrays[i].npy));
    const moai_npy_header_t *h = moai_npy_header(ds->arrays[i].npy);
    array_view_t v = {h->dtype, h->rank, h->dims, moai_npy_data(ds->arrays[i].npy)};
    MOAI_RETURN_IF_ERROR(check_array(file, &inputs[i], &v));
    ds->arrays[i].data = v.data;
    ds->arrays[i].dtype = inputs[i].dtype;
  }
  DIR *d = opendir(dir);
  if (!d) return moai_ok_status(); /* the inputs were read; the warning is optional */
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    size_t len = strlen(e->d_name);
    if (len <= 4 || strcmp(e->d_name + len - 4, ".npy") != 0) continue;
    bool used = false;
    for (size_t i = 0; i < ds->count && !used; ++i)
      used = strlen(inputs[i].name) == len - 4 && memcmp(inputs[i].name, e->d_name, len - 4) == 0;
    if (!used)
      MOAI_LOG(log, MOAI_LOG_LEVEL_WARNING, "%s/%s: not an input of the plan; ignored", dir,
               e->d_name);
  }
  closedir(d);
  return moai_ok_status();
}

/* Every array holds the same number of examples, at least one. */
static moai_status_t check_counts(moai_dataset_t *ds, const char *path,
                                  const moai_tensor_desc_t *inputs) {
  int64_t first = -1;
  for (size_t i = 0; i < ds->count; ++i) {
    const int64_t *dims;
    if (ds->st) dims = moai_safetensors_find(ds->st, inputs[i].name)->dims;
    else dims = moai_npy_header(ds->arrays[i].npy)->dims;
    if (first < 0) first = dims[0];
    if (dims[0] != first)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: array '%s' has %lld examples, '%s' has %lld",
                         path, inputs[i].name, (long long)dims[0], inputs[0].name,
                         (long long)first);
  }
  if (first <= 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: the arrays hold no examples", path);
  ds->examples = (uint64_t)first;
  return moai_ok_status();
}

moai_status_t moai_dataset_open(const char *path, const moai_tensor_desc_t *inputs,
                                size_t input_count, const moai_log_sink_t *log,
                                moai_allocator_t allocator, moai_dataset_t **out) {
  MOAI_RETURN_IF_ERROR(check_plan_inputs(inputs, input_count));
  moai_dataset_t *ds = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(allocator, sizeof(*ds), (void **)&ds));
  ds->allocator = allocator;
  ds->count = input_count;
  ds->labels = -1;
  ds->micro_batch = (uint64_t)inputs[0].dims[0];
  moai_status_t status =
      moai_allocator_malloc(allocator, input_count * sizeof(*ds->arrays), (void **)&ds->arrays);
  if (!status)
    status = moai_allocator_malloc(allocator, input_count * sizeof(char *), (void **)&ds->names);
  for (size_t i = 0; !status && i < input_count; ++i) {
    status = moai_allocator_strdup(allocator, inputs[i].name, &ds->names[i]);
    if (status) break;
    ds->arrays[i].name = ds->names[i];
    moai_shape_nbytes(inputs[i].dtype, inputs[i].rank - 1, inputs[i].dims + 1,
                      &ds->arrays[i].row_bytes);
  }
  struct stat sb;
  if (!status && stat(path, &sb) != 0)
    status = MOAI_STATUS(MOAI_NOT_FOUND, "%s: %s", path, strerror(errno));
  if (!status)
    status = S_ISDIR(sb.st_mode) ? open_npy_dir(ds, path, inputs, log)
                                 : open_safetensors(ds, path, inputs, log);
  if (!status) status = check_counts(ds, path, inputs);
  if (status) {
    moai_dataset_close(ds);
    return status;
  }
  *out = ds;
  return moai_ok_status();
}

void moai_dataset_close(moai_dataset_t *ds) {
  if (!ds) return;
  for (size_t i = 0; ds->arrays && i < ds->count; ++i) moai_npy_close(ds->arrays[i].npy);
  for (size_t i = 0; ds->names && i < ds->count; ++i)
    moai_allocator_free(ds->allocator, ds->names[i]);
  moai_safetensors_close(ds->st);
  moai_allocator_free(ds->allocator, ds->arrays);
  moai_allocator_free(ds->allocator, ds->names);
  moai_allocator_free(ds->allocator, ds);
}

uint64_t moai_dataset_example_count(const moai_dataset_t *ds) { return ds->examples; }
uint64_t moai_dataset_micro_batch_size(const moai_dataset_t *ds) { return ds->micro_batch; }
uint64_t moai_dataset_row_bytes(const moai_dataset_t *ds, size_t input) {
  return input < ds->count ? ds->arrays[input].row_bytes : 0;
}

/* Whether `v` fits an integer dtype. */
static bool fits(int32_t dtype, int64_t v) {
  switch (dtype) {
    case MOAI_ABI_I64: return true;
    case MOAI_ABI_I32: return v >= INT32_MIN && v <= INT32_MAX;
    case MOAI_ABI_I16: return v >= INT16_MIN && v <= INT16_MAX;
    case MOAI_ABI_I8: return v >= INT8_MIN && v <= INT8_MAX;
    case MOAI_ABI_U8: return v >= 0 && v <= UINT8_MAX;
    case MOAI_ABI_U16: return v >= 0 && v <= UINT16_MAX;
    case MOAI_ABI_U32: return v >= 0 && v <= (int64_t)UINT32_MAX;
    case MOAI_ABI_U64: return v >= 0;
    default: return false;
  }
}

moai_status_t moai_dataset_enable_filler(moai_dataset_t *ds, const char *loss_weight_kind,
                                         const char *labels_input, int64_t ignore_index) {
  if (!loss_weight_kind || strcmp(loss_weight_kind, "tokens") != 0)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                       "--no-drop-last needs a plan whose loss weight counts labels "
                       "(loss_weight_kind \"tokens\"); this plan's is \"%s\", so filler rows "
                       "would change the loss: use --drop-last",
                       loss_weight_kind ? loss_weight_kind : "(none)");
  long found = -1;
  for (size_t i = 0; labels_input && i < ds->count; ++i)
    if (strcmp(ds->arrays[i].name, labels_input) == 0) found = (long)i;
  if (found < 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "the labels input '%s' is not an input of the plan",
                       labels_input ? labels_input : "(none)");
  int32_t dtype = ds->arrays[found].dtype;
  if (dtype == MOAI_ABI_BF16 || dtype == MOAI_ABI_F16 || dtype == MOAI_ABI_F32 ||
      dtype == MOAI_ABI_F64 || dtype == MOAI_ABI_BOOL)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "the labels input '%s' is %s, not an integer type",
                       labels_input, moai_abi_dtype_name(dtype));
  if (!fits(dtype, ignore_index))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "ignore_index %lld does not fit the labels input "
                       "'%s' (%s)", (long long)ignore_index, labels_input,
                       moai_abi_dtype_name(dtype));
  ds->labels = found;
  ds->ignore_index = ignore_index;
  return moai_ok_status();
}

/* Writes `v` into n elements of an integer dtype (fits() was checked). */
static void fill_int(int32_t dtype, int64_t v, void *dst, uint64_t n) {
  size_t size = moai_abi_dtype_size(dtype);
  unsigned char one[8];
  switch (size) {
    case 8: { int64_t x = v; memcpy(one, &x, 8); break; }
    case 4: { int32_t x = (int32_t)v; memcpy(one, &x, 4); break; }
    case 2: { int16_t x = (int16_t)v; memcpy(one, &x, 2); break; }
    default: { int8_t x = (int8_t)v; memcpy(one, &x, 1); break; }
  }
  for (uint64_t i = 0; i < n; ++i) memcpy((unsigned char *)dst + i * size, one, size);
}

moai_status_t moai_dataset_gather(const moai_dataset_t *ds, size_t input, const uint64_t *indices,
                                  uint64_t rows, uint64_t real_rows, void *dst) {
  if (input >= ds->count) return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "no input %zu", input);
  if (real_rows < rows && (ds->labels < 0 || real_rows == 0))
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "filler rows need moai_dataset_enable_filler "
                       "and at least one real row");
  const dataset_array_t *a = &ds->arrays[input];
  unsigned char *out = dst;
  for (uint64_t r = 0; r < rows; ++r) {
    if (indices[r] >= ds->examples)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "example %llu out of range (%llu examples)",
                         (unsigned long long)indices[r], (unsigned long long)ds->examples);
    unsigned char *row = out + r * a->row_bytes;
    if (r >= real_rows && (long)input == ds->labels)
      fill_int(a->dtype, ds->ignore_index, row, a->row_bytes / moai_abi_dtype_size(a->dtype));
    else if (a->row_bytes)
      memcpy(row, a->data + indices[r] * a->row_bytes, (size_t)a->row_bytes);
  }
  return moai_ok_status();
}
