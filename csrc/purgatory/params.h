/*
 * params.h - the block Python patches into the purgatory blob at load time.
 *
 * The blob starts with a 32-byte jump stub; this block follows at offset 32
 * (PURGATORY_PARAMS_OFFSET). kexec_py/load/purgatory.py mirrors the layout with a
 * struct.Struct; docs/formats/purgatory.md has the table. Keep all three in step.
 */
#ifndef KPY_PURGATORY_PARAMS_H
#define KPY_PURGATORY_PARAMS_H

#include <stdint.h>

#define PURGATORY_PARAMS_OFFSET 32
#define PURGATORY_MAGIC 0x314752555059504bULL /* "KPYPURG1" little-endian */
#define PURGATORY_MAX_REGIONS 16

struct purgatory_region {
	uint64_t start;
	uint64_t len;
};

struct purgatory_params {
	uint64_t magic;          /*   0: PURGATORY_MAGIC, checked by the loader */
	uint64_t entry;          /*   8: the kernel's 64-bit entry point */
	uint64_t boot_params;    /*  16: loaded into %rsi */
	uint16_t serial_port;    /*  24: 8250 UART I/O port for messages, 0 = silent */
	uint8_t no_checks;       /*  26: 1 = skip the SHA-256 check (kexec -i) */
	uint8_t nr_regions;      /*  27: used entries of regions[] */
	uint32_t reserved;       /*  28 */
	uint8_t digest[32];      /*  32: SHA-256 over the regions, in order */
	struct purgatory_region regions[PURGATORY_MAX_REGIONS]; /* 64 .. 320 */
};

#endif
