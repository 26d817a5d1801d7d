// The CPU backend for CPUs with AVX2, FMA and F16C (this file is compiled with those enabled and only
// runs after cpu_backend.cpp checked the CPU).
#include "kernels.h"

#define LK_CPU_VARIANT avx2
#include "cpu_backend.inl"
