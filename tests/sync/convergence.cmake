# The convergence property test (convergence_test.cpp): seeded random schedules through
# ChainWriter, a simulated server, ChainVerifier and PlanState.
#
# The default run (gtest_discover_tests) plays 200 schedules. `sync_convergence_long` plays
# KITH_CONVERGENCE_LONG_SCHEDULES of them (default 5000, a few minutes). It is registered for
# the CTest configuration `Long` only, so a plain `ctest` / `ctest --preset default` (and so CI)
# does not run it; run it with
#   ctest --preset default -C Long -L long
# or directly: KITH_CONVERGENCE_SCHEDULES=5000 build/tests/sync/kith_sync_tests
#   --gtest_filter=Convergence.RandomSchedulesConverge
# The simulation is in convergence.hpp, convergence_simulation.cpp and convergence_authoring.cpp.
target_sources(kith_sync_tests PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/convergence_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/convergence_simulation.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/convergence_authoring.cpp
)

set(KITH_CONVERGENCE_LONG_SCHEDULES 5000 CACHE STRING
    "Schedules played by the sync_convergence_long test (ctest -C Long -L long)")
add_test(NAME sync_convergence_long
         COMMAND kith_sync_tests --gtest_filter=Convergence.RandomSchedulesConverge
         CONFIGURATIONS Long)
set_tests_properties(sync_convergence_long PROPERTIES
  ENVIRONMENT "KITH_CONVERGENCE_SCHEDULES=${KITH_CONVERGENCE_LONG_SCHEDULES}"
  LABELS long
  TIMEOUT 3600)
