// The CPU backend for CPUs with AVX-512 (F, BW, VL) besides AVX2, FMA and F16C (compiled with those
// enabled; runs only after cpu_backend.cpp checked the CPU).
#include "kernels.h"

#define LK_CPU_VARIANT avx512
#include "cpu_backend.inl"
