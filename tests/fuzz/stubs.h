/*
 * stubs.h - what tinyd's codec needs from the rest of tinyd, for fuzz
 * targets that link tinyd/codec.c alone: memory accounting against a limit
 * like --max-memory, so that the -ENOMEM paths run too.
 */
#ifndef FUZZ_STUBS_H
#define FUZZ_STUBS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

static uint64_t fuzz_mem_used, fuzz_mem_max = 4u << 20;

int mem_reserve(uint64_t n)
{
    if (n > fuzz_mem_max || fuzz_mem_used > fuzz_mem_max - n)
        return -ENOMEM;
    fuzz_mem_used += n;
    return 0;
}

void mem_release(uint64_t n)
{
    if (n > fuzz_mem_used) {
        fprintf(stderr, "memory accounting underflow: release %llu of %llu\n",
                (unsigned long long)n, (unsigned long long)fuzz_mem_used);
        abort();
    }
    fuzz_mem_used -= n;
}

#endif
