/* Training data for moai-run: one array per graph input, whose first
 * dimension counts examples (docs/training.md, "Running training").
 *
 * `path` is a .safetensors file (each input the tensor of its name) or a
 * directory of <input>.npy files. Every plan input must have an array of the
 * plan's dtype whose dims after the first equal the plan input's dims after
 * its first (the plan's dim 0 is the micro-batch size); all arrays must hold
 * the same number of examples. Arrays that no input uses are reported as a
 * warning (a misspelt name also shows up as a missing input, which is an
 * error). Files are mapped read-only once; a batch copies only its rows. */
#ifndef MOAI_TRAIN_DATASET_H
#define MOAI_TRAIN_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/allocator.h"
#include "base/log.h"
#include "base/status.h"
#include "loader/manifest.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_dataset_t moai_dataset_t;

/* Opens `path` for the plan inputs inputs[0..input_count-1] (borrowed during
 * the call) and checks it. Errors name the file, the array and what differs:
 * "data.safetensors: array 'labels' is int32, the plan's input 'labels' is
 * int64". Warnings go to `log` (NULL: dropped). The dataset keeps
 * `allocator`; *out is untouched on failure. */
moai_status_t moai_dataset_open(const char *path, const moai_tensor_desc_t *inputs,
                                size_t input_count, const moai_log_sink_t *log,
                                moai_allocator_t allocator, moai_dataset_t **out) MOAI_MUST_USE;

/* Closes the files and frees (NULL is fine). */
void moai_dataset_close(moai_dataset_t *dataset);

/* Examples in every array. */
uint64_t moai_dataset_example_count(const moai_dataset_t *dataset);
/* The plan inputs' dim 0: examples per micro-batch. */
uint64_t moai_dataset_micro_batch_size(const moai_dataset_t *dataset);
/* Bytes of one example of input i. */
uint64_t moai_dataset_row_bytes(const moai_dataset_t *dataset, size_t input);

/* Makes filler rows possible (--no-drop-last): rows past a batch's real
 * ones get `ignore_index` in every element of the input `labels_input` and
 * a copy of a real row elsewhere, which is exact only when the loss weight
 * counts non-ignored labels. FAILED_PRECONDITION when loss_weight_kind is
 * not "tokens"; INVALID_ARGUMENT when labels_input is not an integer input
 * or ignore_index does not fit its dtype. */
moai_status_t moai_dataset_enable_filler(moai_dataset_t *dataset, const char *loss_weight_kind,
                                         const char *labels_input,
                                         int64_t ignore_index) MOAI_MUST_USE;

/* Copies the rows of input `input` for examples indices[0..rows-1] into dst
 * (rows * row_bytes bytes, C order). Rows from real_rows on are filler: the
 * labels input gets ignore_index (FAILED_PRECONDITION unless filler is
 * enabled and real_rows >= 1), other inputs the row of indices[i] as given
 * (the sampler passes the step's first example). */
moai_status_t moai_dataset_gather(const moai_dataset_t *dataset, size_t input,
                                  const uint64_t *indices, uint64_t rows, uint64_t real_rows,
                                  void *dst) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_TRAIN_DATASET_H */
