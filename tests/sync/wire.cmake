# The sync wire codec's tests (wire_test.cpp); vectors in tests/vectors/wire_messages.json.
target_sources(kith_sync_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/wire_test.cpp)
