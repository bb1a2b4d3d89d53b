# Use ccache when it is installed: Boost-heavy translation units are slow to rebuild on 2 cores.
find_program(KITH_CCACHE ccache)
if(KITH_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_C_COMPILER_LAUNCHER ${KITH_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${KITH_CCACHE})
endif()
