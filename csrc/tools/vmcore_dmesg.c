/*
 * vmcore-dmesg - print the kernel log held in a dump: an ELF vmcore (/proc/vmcore or a
 * saved copy) or a kdump-compressed file, flattened or not. The output matches
 * kexec-tools' vmcore-dmesg line for line.
 *
 * --vmcoreinfo FILE supplies the VMCOREINFO an ELF dump lacks (a QEMU guest dump taken
 * without -device vmcoreinfo), in makedumpfile -g's KEY=VALUE text.
 *
 * Exit status: 0 printed; 1 bad usage, unreadable dump or no log found.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kexecpy.h"

static int usage(int rc)
{
	fprintf(rc ? stderr : stdout, "usage: vmcore-dmesg [--vmcoreinfo FILE] DUMPFILE\n");
	return rc;
}

static int print_log(const char *path, int fd, const char *info, size_t info_len)
{
	struct kpy_dump_info di;
	struct kpy_dump *d;
	char *text;
	size_t len;
	int ret = kpy_dump_open_info(fd, info, info_len, &d, &di);

	if (ret) {
		fprintf(stderr, "vmcore-dmesg: %s: %s\n", path,
			di.message[0] ? di.message : strerror(-ret));
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
	static const struct option longopts[] = {
		{ "vmcoreinfo", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *info_path = NULL;
	char *info = NULL;
	size_t info_len = 0;
	int c, ret;

	while ((c = getopt_long(argc, argv, "i:h", longopts, NULL)) != -1) {
		if (c == 'h')
			return usage(0);
		if (c != 'i')
			return usage(1);
		info_path = optarg;
	}
	if (argc - optind != 1)
		return usage(1);
	if (info_path && (ret = kpy_read_file(info_path, KPY_VMCOREINFO_MAX, &info, &info_len))) {
		fprintf(stderr, "vmcore-dmesg: cannot read the VMCOREINFO file %s: %s\n", info_path,
			ret == -EFBIG ? "bigger than 1 MiB" : strerror(-ret));
		return 1;
	}
	int fd = open(argv[optind], O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "vmcore-dmesg: %s: %s\n", argv[optind], strerror(errno));
		kpy_free(info);
		return 1;
	}
	int rc = print_log(argv[optind], fd, info, info_len);
	close(fd);
	kpy_free(info);
	return rc;
}
