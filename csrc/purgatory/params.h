/*
 * params.h - the block Python patches into the purgatory blob at load time.
 *
 * The blob starts with a 32-byte jump stub; this block follows at offset 32
 * (PURGATORY_PARAMS_OFFSET). The offsets below are the one statement of the layout:
 * the static asserts hold the struct to them, entry.S reads fields through them, the
 * cffi module exports them, and kexec_py/load/purgatory.py checks its struct.Struct
 * against them when it is imported; build_tools.py reads the offset and magic from here.
 */
#ifndef KPY_PURGATORY_PARAMS_H
#define KPY_PURGATORY_PARAMS_H

#define PURGATORY_PARAMS_OFFSET 32
#define PURGATORY_MAGIC 0x314752555059504bULL /* "KPYPURG1" little-endian */
#define PURGATORY_MAX_REGIONS 16

#define PP_OFF_MAGIC 0
#define PP_OFF_ENTRY 8
#define PP_OFF_BOOT_PARAMS 16
#define PP_OFF_SERIAL_PORT 24
#define PP_OFF_NO_CHECKS 26
#define PP_OFF_NR_REGIONS 27
#define PP_OFF_DIGEST 32
#define PP_OFF_REGIONS 64
#define PURGATORY_PARAMS_SIZE 320

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

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

_Static_assert(offsetof(struct purgatory_params, magic) == PP_OFF_MAGIC, "magic");
_Static_assert(offsetof(struct purgatory_params, entry) == PP_OFF_ENTRY, "entry");
_Static_assert(offsetof(struct purgatory_params, boot_params) == PP_OFF_BOOT_PARAMS, "bp");
_Static_assert(offsetof(struct purgatory_params, serial_port) == PP_OFF_SERIAL_PORT, "port");
_Static_assert(offsetof(struct purgatory_params, no_checks) == PP_OFF_NO_CHECKS, "checks");
_Static_assert(offsetof(struct purgatory_params, nr_regions) == PP_OFF_NR_REGIONS, "nr");
_Static_assert(offsetof(struct purgatory_params, digest) == PP_OFF_DIGEST, "digest");
_Static_assert(offsetof(struct purgatory_params, regions) == PP_OFF_REGIONS, "regions");
_Static_assert(sizeof(struct purgatory_params) == PURGATORY_PARAMS_SIZE, "size");
#endif /* __ASSEMBLER__ */

#endif
