# The Python package pvengine (bindings_c/python) over libpvengine, run with Debian's /usr/bin/python3
# (numpy, scipy, anndata, pandas, pip, setuptools from scripts/install-deps.sh). Each test exits 77
# (skipped) when a Python module it needs is missing. Included by tests/CMakeLists.txt.
# (Not under the sanitizers: a plain Python cannot load an ASan-instrumented library.)
if(NOT PV_SANITIZE AND EXISTS /usr/bin/python3)
  set(pv_python /usr/bin/python3)
  set(pv_python_tests ${CMAKE_CURRENT_SOURCE_DIR}/python)
  set(pv_python_package ${PROJECT_SOURCE_DIR}/bindings_c/python)

  set(pv_python_test_names python_package python_pip_install)
  # Posterior keys and shapes, save/load, errors, statistics, utilities.
  add_test(NAME python_package COMMAND ${pv_python} ${pv_python_tests}/test_pvengine.py)
  # pip install of the package (copying the built library), then a fresh import from the install.
  add_test(NAME python_pip_install
           COMMAND ${pv_python} ${pv_python_tests}/test_pip_install.py ${pv_python_package} $<TARGET_FILE:pvengine>)
  # The seed's doctest walk-through (seed lines 66-120, imports renamed), run by doctest. It saves
  # and loads models, which are HDF5 files.
  if(PV_HDF5)
    add_test(NAME python_seed_walkthrough
             COMMAND ${pv_python} ${pv_python_tests}/run_seed_walkthrough.py ${pv_python_tests}/seed_walkthrough.txt
                     ${PROJECT_SOURCE_DIR}/../shared/seed/pyrovelocity-models-api.txt)
    list(APPEND pv_python_test_names python_seed_walkthrough)
  endif()

  set_tests_properties(${pv_python_test_names} PROPERTIES
    LABELS cpu SKIP_RETURN_CODE 77 TIMEOUT 300
    ENVIRONMENT "PVENGINE_LIBRARY=$<TARGET_FILE:pvengine>;PYTHONPATH=${pv_python_package};PYTHONDONTWRITEBYTECODE=1")
endif()
