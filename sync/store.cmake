# The device-side local store (SQLite): included by sync/CMakeLists.txt after sqlite.cmake. The
# SQLite wrappers are kith_sqlite (sqlite.cmake); the schema in src/sqlite/ is private, and SQLite
# is linked PRIVATE (local_store.cpp calls it directly): no public header includes <sqlite3.h>.
find_package(SQLite3 REQUIRED)
target_sources(kith_sync PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/src/local_store.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/sqlite/store_schema.cpp
)
target_link_libraries(kith_sync PRIVATE kith_sqlite SQLite::SQLite3)
