/*
 * uts.c - the dumped kernel's utsname for the kdump header (crash checks machine; other
 * readers take the architecture from it).
 *
 * Best source: the kernel's own init_uts_ns, found through VMCOREINFO
 * (SYMBOL(init_uts_ns) + OFFSET(uts_namespace.name)) and the kernel-text PT_LOAD.
 * Otherwise: "Linux", OSRELEASE from VMCOREINFO and the machine from e_machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmcore.h"

#define UTS_LEN 65

const char *kpy_machine_name(uint16_t em)
{
	switch (em) {
	case 62: return "x86_64";
	case 183: return "aarch64";
	case 21: return "ppc64le";
	case 22: return "s390x";
	case 243: return "riscv64";
	case 258: return "loongarch64";
	case 3: return "i686";
	default: return "unknown";
	}
}

static int plausible(const unsigned char *uts)
{
	for (int f = 0; f < 6; f++) {
		const unsigned char *s = uts + f * UTS_LEN;
		if (memchr(s, 0, UTS_LEN) == NULL)
			return 0;
		for (const unsigned char *p = s; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				return 0;
	}
	return memcmp(uts, "Linux", 6) == 0;
}

static int from_memory(struct kpy_elf *e, unsigned char *uts)
{
	uint64_t sym, off = 4;   /* uts_namespace.name follows a 4-byte kref on old kernels */

	if (kpy_vmcoreinfo_u64(&e->notes, "SYMBOL(init_uts_ns)", 16, &sym))
		return -1;
	kpy_vmcoreinfo_u64(&e->notes, "OFFSET(uts_namespace.name)", 10, &off);
	if (kpy_elf_read_vaddr(e, sym + off, uts, 6 * UTS_LEN))
		return -1;
	return plausible(uts) ? 0 : -1;
}

void kpy_fill_utsname(struct kpy_elf *e, unsigned char uts[390])
{
	char release[UTS_LEN] = "";
	const char *machine = kpy_machine_name(e->machine);

	if (from_memory(e, uts) == 0)
		return;
	memset(uts, 0, 6 * UTS_LEN);
	kpy_vmcoreinfo_get(&e->notes, "OSRELEASE", release, sizeof(release));
	memcpy(uts, "Linux", 5);
	memcpy(uts + 2 * UTS_LEN, release, strlen(release));
	memcpy(uts + 3 * UTS_LEN, "unknown", 7);   /* readers want a non-empty version */
	memcpy(uts + 4 * UTS_LEN, machine, strlen(machine));
}
