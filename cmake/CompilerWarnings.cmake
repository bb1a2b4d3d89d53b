# kith_set_warnings(target): the project's warning set. Warnings are errors unless
# KITH_WARNINGS_AS_ERRORS is OFF (useful when trying a newer compiler locally).
option(KITH_WARNINGS_AS_ERRORS "Treat compiler warnings as errors" ON)

function(kith_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion -Wnon-virtual-dtor)
  if(KITH_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
