# The fuzz targets, one fuzz/<name>_fuzzer.cc and one fuzz/corpus/<name>/ each. Read by
# fuzz/CMakeLists.txt (the clang build) and fuzz/ctest.cmake (the tests of the main build).
set(SLUICE_FUZZ_TARGETS
  config
  gateway_request
  http_request
  index_page
  path
  rpc_frame
  units
  xml
)
# Targets the suite runs longer than 30 s (name:seconds): the gateway parses requests from
# the network before any authentication.
set(SLUICE_FUZZ_SECONDS gateway_request:60)
