/*
 * kdump-insmod - load kernel modules in kexec-py's capture initramfs, which has no kmod:
 * kmod brings libcrypto with it (4.7 MB on Debian 12), every byte of which would be
 * unpacked into the crash kernel's reserve. mkdumprd resolves the modules and their
 * order (modules.dep) in the first kernel; this tool only hands each file to the kernel.
 *
 *   kdump-insmod [-n] [-c CMDLINE] MODULE_FILE [PARAM=VALUE...]
 *
 * -n prints the module's name and the parameters it would be given, and loads nothing.
 * As modprobe does, the kernel command line's MODULE.PARAM[=VALUE] words are passed on to
 * MODULE (after the parameters given here); -c names the file read instead of
 * /proc/cmdline. A module the kernel already has counts as loaded. Compressed files
 * (.ko.xz, .ko.zst, .ko.gz) are left to the kernel to decompress
 * (MODULE_INIT_COMPRESSED_FILE); mkdumprd decompresses them when it builds the image.
 *
 * Exit status: 0 loaded (or already loaded); 1 bad usage or the kernel refused it, with
 * the reason on standard error.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

/* the module parameter string: a page is what the kernel copies (strndup_user, PAGE) */
#define PARAMS_MAX 4096
/* a kernel command line is at most COMMAND_LINE_SIZE (2048 on x86_64); be generous */
#define CMDLINE_MAX 65536
/* a module file larger than this is not a module (the biggest ones are tens of MB) */
#define MODULE_MAX (512UL << 20)

static const char *prog = "kdump-insmod";

static int usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: %s [-n] [-c CMDLINE_FILE] MODULE_FILE [PARAM=VALUE...]\n", prog);
	return rc;
}

/* the module's name from its file: the base name up to ".ko", with '-' as '_' */
static int module_name(const char *path, char *name, size_t size)
{
	const char *base = strrchr(path, '/');
	const char *ko;
	size_t len, i;

	base = base ? base + 1 : path;
	ko = strstr(base, ".ko");
	len = ko ? (size_t)(ko - base) : strlen(base);
	if (len == 0 || len >= size)
		return -1;
	for (i = 0; i < len; i++)
		name[i] = base[i] == '-' ? '_' : base[i];
	name[len] = '\0';
	return 0;
}

static int append(char *buf, size_t *used, const char *word, size_t len)
{
	if (*used + (*used ? 1 : 0) + len + 1 > PARAMS_MAX)
		return -1;
	if (*used)
		buf[(*used)++] = ' ';
	memcpy(buf + *used, word, len);
	*used += len;
	buf[*used] = '\0';
	return 0;
}

/* MODULE.PARAM=VALUE words of the command line, appended as PARAM=VALUE */
static int cmdline_params(const char *file, const char *name, char *buf, size_t *used)
{
	char *text, *p;
	size_t nlen = strlen(name), got = 0;
	ssize_t n;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;	/* no /proc: nothing to add */
	text = malloc(CMDLINE_MAX + 1);
	if (!text) {
		close(fd);
		return -1;
	}
	while (got < CMDLINE_MAX && (n = read(fd, text + got, CMDLINE_MAX - got)) > 0)
		got += (size_t)n;
	close(fd);
	text[got] = '\0';
	for (p = text; *p;) {
		char *word, *dot;
		size_t wlen, i;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		word = p;
		/* a quoted value ("a b") stays one word, as the kernel parses it */
		for (i = 0; word[i] && (word[i] != ' ' && word[i] != '\t' && word[i] != '\n');) {
			if (word[i] == '"') {
				char *close_q = strchr(word + i + 1, '"');
				i = close_q ? (size_t)(close_q - word) + 1 : strlen(word);
			} else {
				i++;
			}
		}
		wlen = i;
		p = word + wlen;
		if (wlen <= nlen + 1 || word[nlen] != '.')
			continue;
		dot = word + nlen;
		for (i = 0; i < nlen; i++) {
			char c = word[i] == '-' ? '_' : word[i];
			if (c != name[i])
				break;
		}
		if (i != nlen)
			continue;
		if (append(buf, used, dot + 1, wlen - nlen - 1)) {
			free(text);
			return -1;
		}
	}
	free(text);
	return 0;
}

static long load_by_read(int fd, const char *params)
{
	struct stat st;
	char *image;
	size_t got = 0;
	long rc;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	if (st.st_size <= 0 || (unsigned long long)st.st_size > MODULE_MAX) {
		errno = EFBIG;
		return -1;
	}
	image = malloc((size_t)st.st_size);
	if (!image)
		return -1;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, image + got, (size_t)st.st_size - got, (off_t)got);
		if (n <= 0) {
			free(image);
			if (n == 0)
				errno = EIO;	/* the file shrank under us */
			return -1;
		}
		got += (size_t)n;
	}
	rc = syscall(SYS_init_module, image, got, params);
	free(image);
	return rc;
}

static int compressed(const char *path)
{
	size_t len = strlen(path);
	static const char *const ext[] = { ".ko.xz", ".ko.zst", ".ko.gz" };
	size_t i;

	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		size_t e = strlen(ext[i]);
		if (len > e && !strcmp(path + len - e, ext[i]))
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmdline = "/proc/cmdline", *path;
	char name[256], params[PARAMS_MAX];
	size_t used = 0;
	long rc;
	int i, fd, dry_run = 0;

	while (argc > 1 && argv[1][0] == '-') {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
			return usage(0);
		if (!strcmp(argv[1], "-n")) {
			dry_run = 1;
			argv++;
			argc--;
			continue;
		}
		if (!strcmp(argv[1], "-c") && argc > 2) {
			cmdline = argv[2];
			argv += 2;
			argc -= 2;
			continue;
		}
		return usage(1);
	}
	if (argc < 2)
		return usage(1);
	path = argv[1];
	if (module_name(path, name, sizeof(name))) {
		fprintf(stderr, "%s: %s: not a module file name\n", prog, path);
		return 1;
	}
	params[0] = '\0';
	for (i = 2; i < argc; i++) {
		if (append(params, &used, argv[i], strlen(argv[i]))) {
			fprintf(stderr, "%s: %s: the parameters are longer than %d bytes\n",
				prog, name, PARAMS_MAX - 1);
			return 1;
		}
	}
	if (cmdline_params(cmdline, name, params, &used)) {
		fprintf(stderr, "%s: %s: the parameters are longer than %d bytes\n",
			prog, name, PARAMS_MAX - 1);
		return 1;
	}
	if (dry_run) {
		printf("%s %s\n", name, params);
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return 1;
	}
	rc = syscall(SYS_finit_module, fd, params,
		     compressed(path) ? MODULE_INIT_COMPRESSED_FILE : 0);
	if (rc && errno == ENOSYS && !compressed(path))
		rc = load_by_read(fd, params);
	if (rc && errno == EEXIST)
		rc = 0;		/* built in or loaded before: what we wanted */
	if (rc) {
		int err = errno;
		const char *why = strerror(err);

		if (err == EINVAL && compressed(path))
			why = "this kernel cannot decompress modules itself";
		else if (err == ENOEXEC)
			why = "not a module for this kernel (bad ELF, or another version)";
		else if (err == EPERM)
			why = "not permitted (only root loads modules; or modules are locked)";
		else if (err == ENOENT)
			why = "unknown symbol or a missing dependency (see dmesg)";
		fprintf(stderr, "%s: %s: %s\n", prog, path, why);
		close(fd);
		return 1;
	}
	close(fd);
	return 0;
}
