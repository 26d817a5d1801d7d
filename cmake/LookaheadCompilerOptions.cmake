# Compiler settings shared by every native target.
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)

option(LK_WERROR "Treat compiler warnings as errors (turn off for an untested compiler version)" ON)

# lk_apply_warnings(target): strict warnings, as errors unless LK_WERROR is OFF.
function(lk_apply_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 $<$<BOOL:${LK_WERROR}>:/WX>)
  else()
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic>
                                             $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall>)
    if(LK_WERROR)
      target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror> $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
    endif()
  endif()
endfunction()

# True when the compiler targets x86-64, where the AVX2 kernels can be built.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$" AND NOT MSVC)
  set(LK_X86_64 ON)
else()
  set(LK_X86_64 OFF)
endif()

# Hardening builds (a separate build tree; build.sh test makes one with clang): every native target built with
# AddressSanitizer and UndefinedBehaviorSanitizer, any report fatal; LK_FUZZ adds the libFuzzer targets and
# coverage instrumentation of the library they drive.
option(LK_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer (reports are fatal)" OFF)
option(LK_FUZZ "Build the libFuzzer targets in tests/fuzz/native (clang; implies LK_SANITIZE)" OFF)
if(LK_FUZZ)
  set(LK_SANITIZE ON)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link>)
endif()
if(LK_SANITIZE)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined> $<$<COMPILE_LANGUAGE:CXX>:-fno-sanitize-recover=all>
                      $<$<COMPILE_LANGUAGE:CXX>:-fno-omit-frame-pointer>)
  add_link_options(-fsanitize=address,undefined)
endif()
