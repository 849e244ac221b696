/*
 * kexecpy.h - the one public header of kexec-py's C library.
 *
 * Conventions: no globals, no printing, no exit(). Every function returns 0 (or a
 * non-negative count) on success and -errno on failure, so callers (the cffi module,
 * the executables) decide how to report.
 */
#ifndef KEXECPY_H
#define KEXECPY_H

#include <stddef.h>
#include <stdint.h>

/* kexec_file_load(2) flags, include/uapi/linux/kexec.h */
#define KPY_KEXEC_FILE_UNLOAD       0x00000001UL
#define KPY_KEXEC_FILE_ON_CRASH     0x00000002UL
#define KPY_KEXEC_FILE_NO_INITRAMFS 0x00000004UL
#define KPY_KEXEC_FILE_DEBUG        0x00000008UL

/* kexec_load(2) flags */
#define KPY_KEXEC_ON_CRASH          0x00000001UL
#define KPY_KEXEC_PRESERVE_CONTEXT  0x00000002UL
#define KPY_KEXEC_UPDATE_ELFCOREHDR 0x00000004UL
#define KPY_KEXEC_ARCH_X86_64       (62UL << 16)
#define KPY_KEXEC_SEGMENT_MAX       16

/* One kexec_load segment, the same layout as the kernel's struct kexec_segment. */
struct kpy_segment {
	const void *buf;
	size_t bufsz;
	unsigned long mem;
	size_t memsz;
};

int kpy_kexec_file_load(int kernel_fd, int initrd_fd, const char *cmdline,
			unsigned long cmdline_len, unsigned long flags);
int kpy_kexec_load(unsigned long entry, unsigned long nr_segments,
		   const struct kpy_segment *segments, unsigned long flags);
/* reboot(LINUX_REBOOT_CMD_KEXEC): only returns on failure. */
int kpy_reboot_kexec(void);

/*
 * Decompress a whole zstd stream from in_fd into out_fd (both positioned by the caller).
 * Returns 0, -errno for I/O errors, -EBADMSG for corrupt data, -EFBIG when the output
 * would exceed max_out bytes, -ENOTSUP when built without libzstd.
 */
int kpy_zstd_decompress_fd(int in_fd, int out_fd, uint64_t max_out);
/* 1 when built with libzstd, else 0. */
int kpy_have_zstd(void);

#endif
