# The device-side local store (SQLite): included by sync/CMakeLists.txt. The SQLite wrappers in
# src/sqlite/ are private, and SQLite is linked PRIVATE: no public header includes <sqlite3.h>.
find_package(SQLite3 REQUIRED)
target_sources(kith_sync PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/src/local_store.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/sqlite/database.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/sqlite/statement.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/sqlite/store_schema.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/sqlite/transaction.cpp
)
target_link_libraries(kith_sync PRIVATE SQLite::SQLite3)
