/*
 * libFuzzer harnesses for kexec-py's C parsers (issue 11). One file, one target per
 * FUZZ_* macro (tests/fuzz/run.py builds each with clang -fsanitize=fuzzer,address,
 * undefined and the library's sources):
 *
 *   FUZZ_DUMP   the reader behind kexec_py.vmcore.open and --verify: any input (ELF
 *               vmcore, QEMU guest dump, PN_XNUM, Xen xc_core, kdump-compressed with
 *               every codec, flattened), its notes, VMCOREINFO, runs, pages, and the
 *               x86_64 page-table walk on a hostile VMCOREINFO
 *   FUZZ_COPY   vmcore-copy at -d 31 (page classification on hostile mem_section and
 *               struct pages) into kdump-compressed, and -E into ELF, size-limited;
 *               then --mem-usage's classification, sampling and prediction
 *   FUZZ_DMESG  vmcore-dmesg: the three printk ring layouts
 *   FUZZ_FLAT   -R: rearranging a flattened stream
 *   FUZZ_ZSTD   the zstd decompressor kexec uses for compressed kernels
 *
 * The input is put in a memfd (the library reads file descriptors); outputs go to
 * memfds too. Every call must return, whatever the bytes: a crash, a sanitizer report,
 * a timeout or an out-of-memory is a finding.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kexecpy.h"

static int memfd_with(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-in", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	if (size && kpy_write_full(fd, data, size))
		abort();
	lseek(fd, 0, SEEK_SET);
	return fd;
}

#if defined(FUZZ_DUMP) || defined(FUZZ_DMESG)
static void read_dump(int fd)
{
	struct kpy_dump *d = NULL;
	struct kpy_dump_info info;
	unsigned char page[65536], buf[4096];
	uint64_t pfn = 0, start, count, paddr;
	int runs = 0;

	if (kpy_dump_open(fd, &d, &info))
		return;
#ifdef FUZZ_DUMP
	kpy_dump_notes(d, buf, sizeof(buf));
	kpy_dump_vmcoreinfo(d, buf, sizeof(buf));
	while (runs++ < 64 && kpy_dump_next_run(d, pfn, &start, &count) == 0) {
		if (info.page_size <= sizeof(page)) {
			kpy_dump_read_page(d, start, page);
			kpy_dump_read_page(d, start + count - 1, page);
		}
		pfn = start + count;
	}
	kpy_dump_read_phys(d, 0x1000, buf, 64);
	if (kpy_dump_vtop(d, 0xffffffff81000000ull, &paddr) == 0)
		kpy_dump_read_virt(d, 0xffffffff81000000ull, buf, 64);
	kpy_dump_read_virt(d, 0xffff888000000000ull, buf, 64);
	kpy_dump_read_virt(d, 0xffffea0000000000ull, buf, 64);
#else
	char *text = NULL;
	size_t len = 0;
	if (kpy_dump_dmesg(d, &text, &len) == 0)
		kpy_free(text);
#endif
	kpy_dump_close(d);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int in = memfd_with(data, size);

#if defined(FUZZ_DUMP) || defined(FUZZ_DMESG)
	read_dump(in);
#elif defined(FUZZ_COPY)
	for (int elf = 0; elf < 2; elf++) {
		struct kpy_copy_opts o = { 0 };
		struct kpy_copy_stats st;
		int out = memfd_create("fuzz-out", MFD_CLOEXEC);
		if (out < 0)
			abort();
		o.format = elf ? KPY_FMT_ELF : KPY_FMT_KDUMP;
		o.codec = elf ? KPY_CODEC_NONE : KPY_CODEC_LZO;
		o.dump_level = elf ? 1 : 31;
		o.size_limit = 64u << 20;
		o.filter_window = elf ? 0 : 64;
		memset(&st, 0, sizeof(st));
		kpy_vmcore_copy(in, out, &o, &st);
		close(out);
		lseek(in, 0, SEEK_SET);
	}
	{
		struct kpy_usage_opts uo = { KPY_CODEC_LZO, 64, NULL, 0 };
		struct kpy_usage_stats us;
		if (kpy_vmcore_mem_usage(in, &uo, &us) == 0)
			for (int lvl = 0; lvl < 32; lvl += 15)
				kpy_usage_predict(&us, lvl, lvl & 1 ? KPY_FMT_ELF : KPY_FMT_KDUMP,
						  KPY_CODEC_LZO);
	}
#elif defined(FUZZ_FLAT)
	{
		struct kpy_flat_stats st;
		int out = memfd_create("fuzz-out", MFD_CLOEXEC);
		if (out < 0)
			abort();
		memset(&st, 0, sizeof(st));
		kpy_flat_rearrange(in, out, &st);
		close(out);
	}
#elif defined(FUZZ_ZSTD)
	{
		int out = memfd_create("fuzz-out", MFD_CLOEXEC);
		if (out < 0)
			abort();
		kpy_zstd_decompress_fd(in, out, 16u << 20);
		close(out);
	}
#else
#error "define one FUZZ_* target"
#endif
	close(in);
	return 0;
}
