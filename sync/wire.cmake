# The sync wire schema (proto/kith/v1/sync.proto) and its codec (src/wire.cpp).
#
# kith_wire is the protoc-generated code alone, built without kith's warning set: it is not
# ours to fix, and -Wshadow/-Wconversion flag it. Its headers are a SYSTEM include directory so
# that our own sources, which include kith/v1/sync.pb.h, keep -Werror without tripping on them.
find_package(Protobuf 3.21 REQUIRED)
# FindProtobuf makes directory-scoped imported targets; kith_sync links protobuf publicly, so
# the tests, the server and the clients (other directories) must see the target too.
foreach(_kith_pb_target protobuf::libprotobuf protobuf::protoc)
  get_target_property(_kith_pb_global ${_kith_pb_target} IMPORTED_GLOBAL)
  if(NOT _kith_pb_global)
    set_target_properties(${_kith_pb_target} PROPERTIES IMPORTED_GLOBAL TRUE)
  endif()
endforeach()

set(_kith_wire_proto_dir ${CMAKE_CURRENT_SOURCE_DIR}/proto)
set(_kith_wire_gen_dir ${CMAKE_CURRENT_BINARY_DIR}/proto)
set(_kith_wire_proto ${_kith_wire_proto_dir}/kith/v1/sync.proto)
set(_kith_wire_srcs ${_kith_wire_gen_dir}/kith/v1/sync.pb.cc ${_kith_wire_gen_dir}/kith/v1/sync.pb.h)

# A plain custom command rather than protobuf_generate: CMake 3.25's protobuf_generate roots the
# import path at the source directory, which would make the include "proto/kith/v1/...".
add_custom_command(
  OUTPUT ${_kith_wire_srcs}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_kith_wire_gen_dir}
  COMMAND protobuf::protoc --cpp_out=${_kith_wire_gen_dir} -I ${_kith_wire_proto_dir}
          ${_kith_wire_proto}
  DEPENDS ${_kith_wire_proto} protobuf::protoc
  COMMENT "protoc: kith/v1/sync.proto"
  VERBATIM)

add_library(kith_wire STATIC ${_kith_wire_srcs})
add_library(kith::wire ALIAS kith_wire)
target_include_directories(kith_wire SYSTEM PUBLIC ${_kith_wire_gen_dir})
target_link_libraries(kith_wire PUBLIC protobuf::libprotobuf)
# libkith (the C ABI) is a shared library that links kith_sync and so this archive.
set_target_properties(kith_wire PROPERTIES POSITION_INDEPENDENT_CODE ON)

target_link_libraries(kith_sync PUBLIC kith_wire)
target_sources(kith_sync PRIVATE src/wire.cpp)
