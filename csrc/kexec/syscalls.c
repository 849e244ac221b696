/*
 * syscalls.c - the kexec system calls, errno preserved as a negative return.
 *
 * glibc has no wrappers for kexec_load/kexec_file_load, so they go through syscall(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/reboot.h>
#include <linux/reboot.h>

#include "kexecpy.h"

#ifndef __NR_kexec_file_load
# if defined(__x86_64__)
#  define __NR_kexec_file_load 320
# endif
#endif

int kpy_kexec_file_load(int kernel_fd, int initrd_fd, const char *cmdline,
			unsigned long cmdline_len, unsigned long flags)
{
#ifdef __NR_kexec_file_load
	if (syscall(__NR_kexec_file_load, kernel_fd, initrd_fd, cmdline_len, cmdline, flags) != 0)
		return -errno;
	return 0;
#else
	(void)kernel_fd; (void)initrd_fd; (void)cmdline; (void)cmdline_len; (void)flags;
	return -ENOSYS;
#endif
}

int kpy_kexec_load(unsigned long entry, unsigned long nr_segments,
		   const struct kpy_segment *segments, unsigned long flags)
{
	if (nr_segments > KPY_KEXEC_SEGMENT_MAX)
		return -E2BIG;
	if (syscall(__NR_kexec_load, entry, nr_segments, segments, flags) != 0)
		return -errno;
	return 0;
}

int kpy_reboot_kexec(void)
{
	/* The libc wrapper passes the magic numbers itself. */
	if (reboot(LINUX_REBOOT_CMD_KEXEC) != 0)
		return -errno;
	return 0;
}
