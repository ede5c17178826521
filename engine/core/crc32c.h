/* CRC32C (Castagnoli), the checksum of every tensor in a workspace. Uses the SSE4.2
 * crc32 instruction when the CPU has it (about 20 GB/s, so verifying a 14 GB model costs
 * well under a second per core), a slicing table otherwise; both give identical values. */
#ifndef IG_CRC32C_H
#define IG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: start with crc = 0; ig_crc32c(ig_crc32c(0, a, n), b, m) equals the CRC
 * of a followed by b. */
uint32_t ig_crc32c(uint32_t crc, const void *data, size_t n);
/* The table implementation alone (tests compare it with the hardware path). */
uint32_t ig_crc32c_portable(uint32_t crc, const void *data, size_t n);

#endif
