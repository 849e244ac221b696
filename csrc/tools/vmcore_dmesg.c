/*
 * vmcore-dmesg - print the kernel log held in a dump: an ELF vmcore (/proc/vmcore or a
 * saved copy) or a kdump-compressed file, flattened or not. The output matches
 * kexec-tools' vmcore-dmesg line for line.
 *
 * Exit status: 0 printed; 1 bad usage, unreadable dump or no log found.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kexecpy.h"

static int usage(void)
{
	fprintf(stderr, "usage: vmcore-dmesg DUMPFILE\n");
	return 1;
}

static int print_log(const char *path, int fd)
{
	struct kpy_dump_info info;
	struct kpy_dump *d;
	char *text;
	size_t len;
	int ret = kpy_dump_open(fd, &d, &info);

	if (ret) {
		fprintf(stderr, "vmcore-dmesg: %s: %s\n", path,
			info.message[0] ? info.message : strerror(-ret));
		return 1;
	}
	ret = kpy_dump_dmesg(d, &text, &len);
	if (ret) {
		const char *m = kpy_dump_error_message(d);
		fprintf(stderr, "vmcore-dmesg: %s: %s\n", path, m[0] ? m : strerror(-ret));
		kpy_dump_close(d);
		return 1;
	}
	ret = kpy_write_full(STDOUT_FILENO, text, len);
	kpy_free(text);
	kpy_dump_close(d);
	if (ret) {
		fprintf(stderr, "vmcore-dmesg: writing the log: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return usage();
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "vmcore-dmesg: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	int rc = print_log(argv[1], fd);
	close(fd);
	return rc;
}
