# kith_set_warnings(target): the project's warning set. Warnings are errors unless
# KITH_WARNINGS_AS_ERRORS is OFF (useful when trying a newer compiler locally).
option(KITH_WARNINGS_AS_ERRORS "Treat compiler warnings as errors" ON)

function(kith_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion -Wnon-virtual-dtor)
  # GCC 12 at -O3 reports false -Wrestrict positives inside std::string concatenation
  # (GCC bug 105329, fixed in GCC 13); the Release preset would otherwise not build.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(KITH_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
