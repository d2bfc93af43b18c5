# Runs moaicc --dry-run on the 7B-shaped export; fails if it errs, prints no
# strategy, or takes 10 s or more.
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${MOAICC} ${MODEL} --train --dry-run --explain --cluster ${CLUSTER}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(TIMESTAMP t1 "%s")
math(EXPR secs "${t1} - ${t0}")
message("${out}${err}moaicc --dry-run took about ${secs} s")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "moaicc --dry-run failed (${rc})")
endif()
if(NOT out MATCHES "strategy: dp=[0-9]+,tp=[0-9]+,pp=[0-9]+" OR NOT out MATCHES "32 layers, hidden 4096, 32 heads \\(8 kv\\)")
  message(FATAL_ERROR "moaicc --dry-run printed no plan for the 32-layer decoder")
endif()
if(secs GREATER_EQUAL 10)
  message(FATAL_ERROR "moaicc --dry-run took ${secs} s (limit 10 s)")
endif()
