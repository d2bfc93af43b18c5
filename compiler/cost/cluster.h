/* Cluster description for the cost model: how many devices, how fast they
 * compute and how fast they talk (docs/cost-model.md, "Cluster files").
 *
 * A cluster is plain numbers; nothing here allocates. */
#ifndef MOAI_COST_CLUSTER_H
#define MOAI_COST_CLUSTER_H

#include <stdint.h>

#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_cluster_t {
  char name[64];
  int64_t nodes;
  int64_t devices_per_node;
  double memory_bytes;           /* per device */
  double memory_usable_fraction; /* of memory_bytes the planner may fill */
  double peak_flops_f32, peak_flops_bf16, peak_flops_f16; /* per device */
  double memory_bandwidth;       /* bytes/s per device */
  double intra_bandwidth;        /* bytes/s per device, one direction, inside a node */
  double intra_latency;          /* seconds per message inside a node */
  double inter_bandwidth;        /* bytes/s per device, one direction, between nodes */
  double inter_latency;          /* seconds per message between nodes */
} moai_cluster_t;

/* Reads a cluster JSON file (examples/clusters/). Strict: a missing or
 * unknown field, or a non-positive number, fails with a message naming the
 * file and the field. *out is untouched on failure. */
moai_status_t moai_cluster_load(const char *path,
                                moai_cluster_t *out) MOAI_MUST_USE;

/* Same, from JSON text; `name` (the file) is used in messages. */
moai_status_t moai_cluster_parse(const char *json, const char *name,
                                 moai_cluster_t *out) MOAI_MUST_USE;

/* This machine as `devices` devices sharing its cores and memory: peak
 * FLOP/s = cores x MOAI_CLUSTER_HOST_FLOPS_PER_CORE / devices, memory =
 * physical RAM / devices x 0.8, links = MOAI_CLUSTER_HOST_MEMORY_BANDWIDTH
 * shared by all devices. */
moai_status_t moai_cluster_from_host(int64_t devices,
                                     moai_cluster_t *out) MOAI_MUST_USE;

/* Per-core f32 FLOP/s assumed for a host CPU: one AVX2 core at ~2.5 GHz
 * issues 2 FMA x 8 lanes = 32 FLOP/cycle (80 GFLOP/s); moai's GEMM reaches
 * about half of that, and the cost model applies its own efficiency on top,
 * so the figure is the hardware peak. */
#define MOAI_CLUSTER_HOST_FLOPS_PER_CORE 80e9
/* Shared DRAM bandwidth assumed for a host (bytes/s): a dual-channel
 * DDR4/DDR5 server slice; used for both memory and "links". */
#define MOAI_CLUSTER_HOST_MEMORY_BANDWIDTH 20e9

/* Total devices (nodes x devices_per_node). */
static inline int64_t moai_cluster_device_count(const moai_cluster_t *c) {
  return c->nodes * c->devices_per_node;
}

/* Peak FLOP/s of one device for an element size (2: bf16, 4: f32). */
static inline double moai_cluster_peak_flops(const moai_cluster_t *c,
                                             int dtype_bytes) {
  return dtype_bytes == 2 ? c->peak_flops_bf16 : c->peak_flops_f32;
}

#ifdef __cplusplus
}
#endif

#endif /* MOAI_COST_CLUSTER_H */
