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
