// The CPU backend for any x86-64 (or other) CPU: baseline instructions, scalar matrix kernel.
#include "kernels.h"

#define LK_CPU_VARIANT generic
#include "cpu_backend.inl"
