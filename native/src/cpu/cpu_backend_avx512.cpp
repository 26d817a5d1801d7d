// The CPU backend for CPUs with AVX-512 (F, BW, VL) besides AVX2, FMA and F16C (compiled with those
// enabled; runs only after cpu_backend.cpp checked the CPU).
#include "kernels.h"

#define LK_CPU_VARIANT avx512
// The best AVX-512 kernel: with or without the BF16 dot product, as the CPU (and LK_CPU_KERNEL) allow.
#define LK_CPU_MATMUL cpu::best_matmul_kernel()
#include "cpu_backend.inl"
