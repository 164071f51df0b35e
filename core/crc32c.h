/*
 * crc32c.h — CRC-32C (Castagnoli), the checksum of Kafka record batch v2.
 *
 * crc32c() uses the SSE4.2 crc32 instruction when the CPU has it (checked
 * once at start-up) and the portable table version otherwise; both give the
 * same result, which the unit tests verify on every length and alignment.
 * `crc` is the running value: start with 0, feed the previous result to
 * continue over more bytes.
 */
#ifndef SL_CRC32C_H
#define SL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len);
/* 1 when crc32c() uses the hardware instruction. */
int crc32c_hw_available(void);

#endif
