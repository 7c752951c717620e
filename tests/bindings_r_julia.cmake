# The R and Julia bindings over libpvengine (bindings_c/r, bindings_c/julia), included by
# tests/CMakeLists.txt. Each test exits 77 (skipped) when its language is not installed. Not under
# the sanitizers: a plain R or Julia cannot load an ASan-instrumented library.
if(PV_SANITIZE)
  return()
endif()

set(pv_r_package ${PROJECT_SOURCE_DIR}/bindings_c/r/pvengine)

# A test that prints why it is skipped and exits 77.
function(pv_add_skipped_test name reason)
  add_test(NAME ${name} COMMAND sh -c "echo '${reason}'; exit 77")
  set_tests_properties(${name} PROPERTIES LABELS cpu SKIP_RETURN_CODE 77)
endfunction()

# ---- R ------------------------------------------------------------------------------------------
# r_binding: the package's C glue built here by CMake (R's headers only: no make, no R CMD INSTALL)
# as pvengine.so, loaded with dyn.load by the test, which sources the package's R code. It runs
# wherever Rscript is installed (r-base-core ships the headers).
# r_package: the same package installed the way a user installs it, with R CMD INSTALL into a
# library under the build folder, then loaded with library(pvengine); it needs make as well, and
# is skipped without it.
find_program(PV_RSCRIPT Rscript)
if(PV_RSCRIPT)
  execute_process(COMMAND ${PV_RSCRIPT} -e "cat(R.home('include'))"
                  OUTPUT_VARIABLE pv_r_include OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()
if(PV_RSCRIPT AND EXISTS "${pv_r_include}/Rinternals.h")
  add_library(pvengine_r MODULE ${pv_r_package}/src/pvengine_r.c)
  target_include_directories(pvengine_r PRIVATE ${pv_r_include})
  target_link_libraries(pvengine_r PRIVATE pvengine)
  # R names a DLL after its file: the glue must be pvengine.so for R_init_pvengine and PACKAGE =
  # "pvengine" to match. Its own folder keeps it apart from libpvengine.
  set_target_properties(pvengine_r PROPERTIES PREFIX "" OUTPUT_NAME pvengine
                        LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/r_glue)
  # -Wno-cast-function-type: R's routine table stores every entry point as a DL_FUNC.
  target_compile_options(pvengine_r PRIVATE -Wall -Wextra -Wno-cast-function-type)

  add_test(NAME r_binding
           COMMAND ${PV_RSCRIPT} --vanilla ${CMAKE_CURRENT_SOURCE_DIR}/r/test_pvengine.R
                   --glue=$<TARGET_FILE:pvengine_r> --rdir=${pv_r_package}/R
                   $<$<BOOL:${PV_HDF5}>:--cli=$<TARGET_FILE:pvengine_cli>>)
  add_test(NAME r_package
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/r/install_and_test.sh ${pv_r_package}
                   ${PROJECT_SOURCE_DIR}/bindings_c/include $<TARGET_FILE_DIR:pvengine>
                   ${CMAKE_CURRENT_BINARY_DIR}/r_package ${CMAKE_CURRENT_SOURCE_DIR}/r/test_pvengine.R)
  set_tests_properties(r_binding r_package PROPERTIES LABELS cpu SKIP_RETURN_CODE 77 TIMEOUT 300)
  # Both fit models on 2 cores; running them side by side only slows each down.
  set_tests_properties(r_binding r_package PROPERTIES RESOURCE_LOCK pv_r_fit)
else()
  pv_add_skipped_test(r_binding "R is not installed (no Rscript with its headers): skipping the R binding test")
  pv_add_skipped_test(r_package "R is not installed (no Rscript with its headers): skipping the R package test")
endif()

# ---- Julia ----------------------------------------------------------------------------------------
# Looked for when the test runs, not at configure time, so installing Julia needs no reconfigure.
add_test(NAME julia_binding
         COMMAND sh -c "if ! command -v julia >/dev/null 2>&1; then echo 'Julia is not installed (no julia on PATH): skipping the Julia binding test'; exit 77; fi; exec julia --startup-file=no \"$0\" \"$1\""
                 ${PROJECT_SOURCE_DIR}/bindings_c/julia/example.jl $<TARGET_FILE:pvengine>)
set_tests_properties(julia_binding PROPERTIES LABELS cpu SKIP_RETURN_CODE 77 TIMEOUT 600)
