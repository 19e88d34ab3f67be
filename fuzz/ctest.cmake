# Fuzzing in the main test suite: each fuzzer runs for 30 s (label "fuzz"), after one test
# builds them all with clang in build/fuzz. Included by the top-level CMakeLists.txt of the
# ordinary (gcc) build; registers nothing where clang's libFuzzer runtime is missing.
include(${CMAKE_CURRENT_LIST_DIR}/targets.cmake)

find_program(SLUICE_CLANGXX clang++)
if(SLUICE_CLANGXX)
  execute_process(COMMAND ${SLUICE_CLANGXX} -print-runtime-dir OUTPUT_VARIABLE SLUICE_CLANG_RT_DIR
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()
if(NOT SLUICE_CLANGXX OR NOT EXISTS "${SLUICE_CLANG_RT_DIR}/libclang_rt.fuzzer-${CMAKE_SYSTEM_PROCESSOR}.a")
  message(STATUS "fuzz tests: off (needs clang++ and libclang_rt.fuzzer; scripts/setup.sh installs them)")
  return()
endif()

set(SLUICE_FUZZ_SCRIPT ${PROJECT_SOURCE_DIR}/scripts/fuzz.sh)
add_test(NAME fuzz_build COMMAND ${SLUICE_FUZZ_SCRIPT} build)
set_tests_properties(fuzz_build PROPERTIES FIXTURES_SETUP fuzz LABELS fuzz TIMEOUT 1200
  ENVIRONMENT "FUZZ_CXX=${SLUICE_CLANGXX}")
foreach(name IN LISTS SLUICE_FUZZ_TARGETS)
  set(seconds 30)
  foreach(override IN LISTS SLUICE_FUZZ_SECONDS)
    if(override MATCHES "^${name}:([0-9]+)$")
      set(seconds ${CMAKE_MATCH_1})
    endif()
  endforeach()
  add_test(NAME fuzz_${name} COMMAND ${SLUICE_FUZZ_SCRIPT} ${name} ${seconds})
  set_tests_properties(fuzz_${name} PROPERTIES FIXTURES_REQUIRED fuzz LABELS fuzz TIMEOUT 300
    ENVIRONMENT "FUZZ_CXX=${SLUICE_CLANGXX}")
endforeach()
