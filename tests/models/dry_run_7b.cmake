# Runs moaicc --dry-run on a decoder-shaped export (the 7B one by default);
# fails if it errs, prints no strategy for the expected model, or takes LIMIT
# seconds (default 10) or more. EXTRA: one more moaicc option.
if(NOT DEFINED LIMIT)
  set(LIMIT 10)
endif()
if(NOT DEFINED EXPECT)
  set(EXPECT "32 layers, hidden 4096, 32 heads \\(8 kv\\)")
endif()
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${MOAICC} ${MODEL} --train --dry-run --explain --cluster ${CLUSTER} ${EXTRA}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(TIMESTAMP t1 "%s")
math(EXPR secs "${t1} - ${t0}")
message("${out}${err}moaicc --dry-run took about ${secs} s")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "moaicc --dry-run failed (${rc})")
endif()
if(NOT out MATCHES "strategy: dp=[0-9]+,tp=[0-9]+,pp=[0-9]+" OR NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "moaicc --dry-run printed no plan for the expected decoder (${EXPECT})")
endif()
if(secs GREATER_EQUAL ${LIMIT})
  message(FATAL_ERROR "moaicc --dry-run took ${secs} s (limit ${LIMIT} s)")
endif()
