# kith_sqlite: the RAII wrappers over the SQLite C API, shared by the device's local store
# (kith_sync, store.cmake) and kithd's database (kith_server). Included by sync/CMakeLists.txt
# before store.cmake. SQLite is linked PRIVATE: no header here includes <sqlite3.h>.
#
# Its errors are SyncErrors (code kStore), so that the local store's failures keep the type and
# code its callers see; SyncError is header-only, so kith_sqlite needs kith_sync's include
# directory but not the library (kith_sync links kith_sqlite, not the other way round).
find_package(SQLite3 REQUIRED)
add_library(kith_sqlite STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/sqlite/src/database.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/sqlite/src/statement.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/sqlite/src/transaction.cpp
)
add_library(kith::sqlite ALIAS kith_sqlite)
target_include_directories(kith_sqlite
  PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/sqlite/include
         ${CMAKE_CURRENT_SOURCE_DIR}/include)  # kith/sync/error.hpp
target_link_libraries(kith_sqlite PUBLIC kith_crypto PRIVATE SQLite::SQLite3)
# libkith (the C ABI) is a shared library that links kith_sync and so this archive.
set_target_properties(kith_sqlite PROPERTIES POSITION_INDEPENDENT_CODE ON)
kith_set_warnings(kith_sqlite)
