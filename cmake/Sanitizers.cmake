# KITH_SANITIZE=ON builds everything with AddressSanitizer and UndefinedBehaviorSanitizer.
# Applied globally (not per target) so that every object, including test code, is instrumented.
option(KITH_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)

if(KITH_SANITIZE)
  set(_kith_san_flags -fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_compile_options(${_kith_san_flags})
  add_link_options(${_kith_san_flags})
endif()
