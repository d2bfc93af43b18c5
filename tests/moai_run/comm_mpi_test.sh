#!/bin/sh
# Runs comm_mpi (comm_mpi.c) under `mpirun -np 4`:
#   comm_mpi_test.sh COMM_MPI LIBMOAI_MPI run    the checks pass on every rank
#   comm_mpi_test.sh COMM_MPI LIBMOAI_MPI abort  rank 3's abort ends the job
#                                                (no rank stays blocked)
# As training.dp.mpi, a missing mpirun is a failure, never a skipped test.
set -u
prog=$1 lib=$2 mode=$3
if ! command -v mpirun >/dev/null 2>&1; then
  echo "comm_mpi: no mpirun: run scripts/setup.sh (libopenmpi-dev openmpi-bin)" >&2
  exit 1
fi
# Open MPI refuses root unless told (containers). Under the ASan build,
# LeakSanitizer would report Open MPI's own allocations, never freed.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
asan="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
args=
[ "$mode" = abort ] && args=abort
out=$(timeout 120 mpirun --allow-run-as-root --oversubscribe -x ASAN_OPTIONS="$asan" -np 4 \
      "$prog" "$lib" $args 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$mode" = run ]; then
  if [ $rc -ne 0 ] || ! printf '%s\n' "$out" | grep -q "comm_mpi: ok"; then
    echo "comm_mpi_test: FAILED: mpirun exited with $rc" >&2
    exit 1
  fi
else
  # (Open MPI's own "MPI_ABORT was invoked" notice is not always printed.)
  if [ $rc -eq 0 ] || [ $rc -eq 124 ] || ! printf '%s\n' "$out" | grep -q "rank 3 aborts"; then
    echo "comm_mpi_test: FAILED: expected rank 3's MPI_Abort to end the job, mpirun exited" \
         "with $rc (124: timed out, a rank stayed blocked)" >&2
    exit 1
  fi
fi
echo "comm_mpi_test: $mode: passed"
