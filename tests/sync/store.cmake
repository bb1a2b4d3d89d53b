# Local store tests. They build older and foreign fixture files with raw SQL, so they link SQLite
# themselves (the store's own wrappers are private to kith_sync). Shared helpers:
# local_store_fixtures.hpp.
find_package(SQLite3 REQUIRED)
target_sources(kith_sync_tests PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/invite_test.cpp  # a joining engine on a real store
  ${CMAKE_CURRENT_SOURCE_DIR}/local_store_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/local_store_at_rest_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/local_store_migration_test.cpp
)
target_link_libraries(kith_sync_tests PRIVATE SQLite::SQLite3)
