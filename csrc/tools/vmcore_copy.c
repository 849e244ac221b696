/*
 * vmcore-copy - save /proc/vmcore (or any ELF vmcore) as a kdump-compressed, ELF or
 * flattened dump. Options follow makedumpfile's where they overlap; runs without Python
 * in the capture initramfs.
 *
 * Exit status: 0 done; 1 failed (nothing usable, or a bad argument); 2 an incomplete but
 * readable dump was written (no space left, -L reached, input error part way).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "kexecpy.h"

#define EXIT_DONE 0
#define EXIT_FAILED 1
#ifndef KPY_VERSION
#define KPY_VERSION "unknown"     /* build_tools.py passes kexec-tools.spec's */
#endif
#define EXIT_INCOMPLETE 2

#define ML_PROGRESS 1
#define ML_COMMON 2
#define ML_ERROR 4
#define ML_REPORT 16

enum { OPT_THREADS = 256, OPT_MSGLEVEL, OPT_VERIFY, OPT_JSON, OPT_NONMMAP, OPT_MEMUSAGE };

struct args {
	struct kpy_copy_opts o;
	int rearrange, verify, json, force, msglevel, mem_usage, level_given;
	const char *in, *out, *vmcoreinfo_path;
};

struct progress {
	int tty, level;
	const char *what;
	uint32_t page_size;
	double t0, last;
	int last_decile;
};

static const char usage_text[] =
	"Usage: vmcore-copy [-c|-l|-z|-p] [-E] [-d LEVEL] [--num-threads N] [-L SIZE]\n"
	"                   [--message-level N] [-f] [--non-mmap] [--json]\n"
	"                   [--vmcoreinfo FILE] VMCORE DUMPFILE\n"
	"       vmcore-copy -F [-c|-l|-z|-p|-E] [-d LEVEL] ... VMCORE > STREAM\n"
	"       vmcore-copy -R DUMPFILE < STREAM\n"
	"       vmcore-copy --verify DUMPFILE\n"
	"       vmcore-copy --mem-usage [-c|-l|-z|-p] [-E] [-d LEVEL] [--json] /proc/kcore\n"
	"\n"
	"Copy a vmcore (/proc/vmcore, a saved ELF vmcore, a QEMU guest dump, a Xen domain dump\n"
	"(xc_core), or a kdump-compressed dump, flattened or not: re-filter, re-compress,\n"
	"convert) into a dump file.\n"
	"  -c, -l, -z, -p   compress each page with zlib, lzo, zstd or snappy\n"
	"                   (kdump-compressed format; default: no compression)\n"
	"  -E               write an ELF dump instead of kdump-compressed\n"
	"  -F               write the flattened format to standard output\n"
	"  -R DUMPFILE      rebuild DUMPFILE from a flattened stream on standard input\n"
	"  -d LEVEL         dump level, bits: 1 zero pages, 2 page cache, 4 page cache\n"
	"                   and private, 8 user pages, 16 free pages\n"
	"  --num-threads N  compress on N worker threads (default: the calling thread)\n"
	"  -L SIZE          stop at SIZE bytes (K, M, G suffixes): an incomplete dump\n"
	"  --message-level N  1 progress, 2 messages, 4 errors, 16 report (default 7)\n"
	"  -f               overwrite DUMPFILE if it exists\n"
	"  --non-mmap       read the vmcore with read() instead of mmap()\n"
	"  --verify DUMPFILE  decode every page of a dump and report\n"
	"  --mem-usage      count the pages each dump level keeps (makedumpfile's table) of\n"
	"                   the running system (/proc/kcore, as root; Linux 4.19 or later)\n"
	"                   or of a vmcore, and predict the dump's size at levels 0, 1, 31\n"
	"                   and -d LEVEL, from compressing a sample (with the -c/-l/-z/-p\n"
	"                   codec given, else every codec)\n"
	"  --json           print statistics as JSON at the end\n"
	"  -i, --vmcoreinfo FILE  VMCORE's VMCOREINFO from FILE (makedumpfile -g's KEY=VALUE\n"
	"                   text of the same kernel), for dumps without one (a QEMU guest\n"
	"                   dump taken without -device vmcoreinfo, any Xen xc_core dump)\n"
	"                   or to replace it\n"
	"Exit status: 0 done, 1 failed, 2 incomplete dump written.\n";

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void msg(const struct args *a, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void msg(const struct args *a, int level, const char *fmt, ...)
{
	va_list ap;

	if (!(a->msglevel & level))
		return;
	va_start(ap, fmt);
	fputs("vmcore-copy: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end && strcmp(end, "B") && strcmp(end, "iB"))
		return -1;
	*out = v;
	return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int set_codec(struct args *a, int codec)
{
	if (a->o.codec && a->o.codec != codec)
		return -1;
	a->o.codec = codec;
	return 0;
}

static int parse_opt(struct args *a, int c, const char *arg)
{
	switch (c) {
	case 'c': return set_codec(a, KPY_CODEC_ZLIB);
	case 'l': return set_codec(a, KPY_CODEC_LZO);
	case 'z': return set_codec(a, KPY_CODEC_ZSTD);
	case 'p': return set_codec(a, KPY_CODEC_SNAPPY);
	case 'E': a->o.format = KPY_FMT_ELF; return 0;
	case 'F': a->o.flattened = 1; return 0;
	case 'f': a->force = 1; return 0;
	case 'R': a->rearrange = 1; a->out = arg; return 0;
	case 'd': a->level_given = 1; return parse_int(arg, 0, 31, &a->o.dump_level);
	case 'L': return parse_size(arg, &a->o.size_limit) || !a->o.size_limit ? -1 : 0;
	case OPT_THREADS: return parse_int(arg, 0, 256, &a->o.threads);
	case OPT_MSGLEVEL: return parse_int(arg, 0, 31, &a->msglevel);
	case OPT_VERIFY: a->verify = 1; a->in = arg; return 0;
	case OPT_JSON: a->json = 1; return 0;
	case OPT_NONMMAP: a->o.no_mmap = 1; return 0;
	case OPT_MEMUSAGE: a->mem_usage = 1; return 0;
	case 'i': a->vmcoreinfo_path = arg; return 0;
	default: return -1;
	}
}

static int parse_args(struct args *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "num-threads", required_argument, NULL, OPT_THREADS },
		{ "message-level", required_argument, NULL, OPT_MSGLEVEL },
		{ "verify", required_argument, NULL, OPT_VERIFY },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "non-mmap", no_argument, NULL, OPT_NONMMAP },
		{ "mem-usage", no_argument, NULL, OPT_MEMUSAGE },
		{ "vmcoreinfo", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	a->msglevel = ML_PROGRESS | ML_COMMON | ML_ERROR;
	while ((c = getopt_long(argc, argv, "clzpEFfR:d:L:i:hv", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			exit(EXIT_DONE);
		}
		if (c == 'v') {
			printf("vmcore-copy (kexec-py) %s\n", KPY_VERSION);
			exit(EXIT_DONE);
		}
		if (parse_opt(a, c, optarg)) {
			if (c != '?')
				fprintf(stderr, "vmcore-copy: bad or conflicting option -%c%s%s\n",
					c < 256 ? c : '-', optarg ? " " : "", optarg ? optarg : "");
			return -1;
		}
	}
	if (a->rearrange || a->verify)
		return optind == argc && !a->mem_usage ? 0 : -1;
	if (a->o.flattened || a->mem_usage) {
		if (a->o.flattened && a->mem_usage)
			return -1;
		if (argc - optind != 1)
			return -1;
		a->in = argv[optind];
		return 0;
	}
	if (argc - optind != 2)
		return -1;
	a->in = argv[optind];
	a->out = argv[optind + 1];
	return 0;
}

static int show_progress(void *arg, uint64_t done, uint64_t total, uint64_t bytes)
{
	struct progress *p = arg;
	double t = now(), el = t - p->t0, rate = el > 0 ? (double)done * p->page_size / el : 0;
	int decile = total ? (int)(done * 10 / total) : 10;

	(void)bytes;
	if (p->tty) {
		if (t - p->last < 0.2 && done != total)
			return 0;
		double left = rate > 0 ? (double)(total - done) * p->page_size / rate : 0;
		fprintf(stderr, "\r%s %5.1f%%  %7.1f MiB/s  %d:%02d left ", p->what,
			total ? 100.0 * (double)done / (double)total : 100.0, rate / 1048576.0,
			(int)left / 60, (int)left % 60);
		if (done == total)
			fputc('\n', stderr);
	} else if (decile != p->last_decile) {
		fprintf(stderr, "%s %3d%% (%llu of %llu pages, %.1f MiB/s)\n", p->what, decile * 10,
			(unsigned long long)done, (unsigned long long)total, rate / 1048576.0);
	}
	p->last = t;
	p->last_decile = decile;
	return 0;
}

static void progress_init(struct progress *p, const struct args *a, const char *what)
{
	memset(p, 0, sizeof(*p));
	p->tty = isatty(STDERR_FILENO);
	p->what = what;
	p->page_size = 4096;
	p->t0 = now();
	p->last_decile = 0;
	(void)a;
}

static void print_json(const struct args *a, const struct kpy_copy_stats *st, int rc)
{
	FILE *f = a->o.flattened ? stderr : stdout;

	fprintf(f, "{\"pages_in\": %llu, \"pages_zero\": %llu, \"pages_excluded\": %llu, "
		"\"pages_written\": %llu, \"pages_lost\": %llu, \"bytes_out\": %llu, "
		"\"file_size\": %llu, \"seconds\": %.6f, \"page_size\": %u, \"incomplete\": %s, "
		"\"format\": \"%s\", \"compression\": \"%s\", \"dump_level\": %d, "
		"\"threads\": %d, \"exit_status\": %d}\n",
		(unsigned long long)st->pages_in, (unsigned long long)st->pages_zero,
		(unsigned long long)st->pages_excluded, (unsigned long long)st->pages_written,
		(unsigned long long)st->pages_lost, (unsigned long long)st->bytes_out,
		(unsigned long long)st->file_size, (double)st->elapsed_ns / 1e9, st->page_size,
		st->incomplete ? "true" : "false",
		a->o.format == KPY_FMT_ELF ? "elf" : "kdump", kpy_codec_name(a->o.codec),
		a->o.dump_level, a->o.threads, rc);
	fflush(f);
}

static void report(const struct args *a, const struct kpy_copy_stats *st)
{
	msg(a, ML_REPORT, "pages: %llu in, %llu zero, %llu excluded, %llu written, %llu lost; "
	    "%llu bytes out in %.3f s", (unsigned long long)st->pages_in,
	    (unsigned long long)st->pages_zero, (unsigned long long)st->pages_excluded,
	    (unsigned long long)st->pages_written, (unsigned long long)st->pages_lost,
	    (unsigned long long)st->bytes_out, (double)st->elapsed_ns / 1e9);
}

static int open_output(const struct args *a, const char *path, int *created)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (a->force ? O_TRUNC : O_EXCL);
	int fd = open(path, flags, 0600);

	*created = fd >= 0;
	if (fd < 0) {
		if (errno == EEXIST)
			msg(a, ML_ERROR, "%s already exists (use -f to overwrite it)", path);
		else
			msg(a, ML_ERROR, "cannot create %s: %s", path, strerror(errno));
	}
	return fd;
}

static int finish_copy(const struct args *a, int ret, const struct kpy_copy_stats *st,
		       int created)
{
	int rc = ret == 0 ? EXIT_DONE : st->incomplete &&
		 (ret == -ENOSPC || ret == -EFBIG || ret == -EDQUOT) ? EXIT_INCOMPLETE : EXIT_FAILED;

	if (ret && st->incomplete && rc == EXIT_FAILED)
		rc = EXIT_INCOMPLETE;
	if (ret)
		msg(a, ML_ERROR, "%s: %s", ret == -ENOTSUP || ret == -EINVAL ? "error" :
		    st->err_in_output ? (a->out ? a->out : "<stdout>") : a->in, st->message);
	if (ret && !st->incomplete && created && a->out)
		unlink(a->out);     /* never leave a file that looks like a dump but is not */
	report(a, st);
	if (!ret && a->out)
		msg(a, ML_COMMON, "the dump is saved to %s", a->out);
	else if (rc == EXIT_INCOMPLETE)
		msg(a, ML_COMMON, "%s is INCOMPLETE: it holds %llu of %llu pages",
		    a->out ? a->out : "the stream", (unsigned long long)st->pages_written,
		    (unsigned long long)st->pages_in);
	if (a->json)
		print_json(a, st, rc);
	return rc;
}

/* --vmcoreinfo FILE into a->o (0), or a message and -1. */
static int load_vmcoreinfo(struct args *a, char **info)
{
	size_t len = 0;
	int ret;

	*info = NULL;
	if (a->vmcoreinfo_path &&
	    (ret = kpy_read_file(a->vmcoreinfo_path, KPY_VMCOREINFO_MAX, info, &len))) {
		msg(a, ML_ERROR, "cannot read the VMCOREINFO file %s: %s", a->vmcoreinfo_path,
		    ret == -EFBIG ? "bigger than 1 MiB" : strerror(-ret));
		return -1;
	}
	a->o.vmcoreinfo = *info;
	a->o.vmcoreinfo_len = len;
	return 0;
}

static int open_input(const struct args *a)
{
	int fd = open(a->in, O_RDONLY | O_CLOEXEC);

	if (fd < 0 && a->mem_usage && (errno == EACCES || errno == EPERM))
		msg(a, ML_ERROR, "cannot open %s: %s (--mem-usage of the running system reads "
		    "/proc/kcore, which only root can)", a->in, strerror(errno));
	else if (fd < 0)
		msg(a, ML_ERROR, "cannot open %s: %s", a->in, strerror(errno));
	return fd;
}

static int do_copy(struct args *a)
{
	struct kpy_copy_stats st;
	struct progress pr;
	int in_fd, out_fd = STDOUT_FILENO, created = 0, ret;
	char *info;

	if (load_vmcoreinfo(a, &info))
		return EXIT_FAILED;
	if ((in_fd = open_input(a)) < 0) {
		kpy_free(info);
		return EXIT_FAILED;
	}
	if (!a->o.flattened && (out_fd = open_output(a, a->out, &created)) < 0) {
		close(in_fd);
		kpy_free(info);
		return EXIT_FAILED;
	}
	progress_init(&pr, a, "Copying");
	if (a->msglevel & ML_PROGRESS) {
		a->o.progress = show_progress;
		a->o.progress_arg = &pr;
	}
	ret = kpy_vmcore_copy(in_fd, out_fd, &a->o, &st);
	if (!a->o.flattened && close(out_fd) < 0 && !ret) {
		ret = -errno;
		snprintf(st.message, sizeof(st.message), "closing the dump failed: %s",
			 strerror(-ret));
		st.err_in_output = 1;
	}
	close(in_fd);
	kpy_free(info);
	return finish_copy(a, ret, &st, created);
}

static int do_rearrange(const struct args *a)
{
	struct kpy_flat_stats st;
	int created, fd = open_output(a, a->out, &created), ret;

	if (fd < 0)
		return EXIT_FAILED;
	ret = kpy_flat_rearrange(STDIN_FILENO, fd, &st);
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (ret) {
		msg(a, ML_ERROR, "%s: %s", a->out, st.message);
		if (!st.bytes && created)
			unlink(a->out);     /* nothing of a dump was written: leave no file */
		return st.records ? EXIT_INCOMPLETE : EXIT_FAILED;
	}
	msg(a, ML_COMMON, "the dump is saved to %s (%llu records)", a->out,
	    (unsigned long long)st.records);
	return EXIT_DONE;
}

static int do_verify(const struct args *a)
{
	struct kpy_dump *d;
	struct kpy_dump_info info;
	struct kpy_verify_stats vs;
	struct progress pr;
	int fd = open(a->in, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		msg(a, ML_ERROR, "cannot open %s: %s", a->in, strerror(errno));
		return EXIT_FAILED;
	}
	if ((ret = kpy_dump_open(fd, &d, &info))) {
		msg(a, ML_ERROR, "%s: %s", a->in, info.message);
		close(fd);
		return EXIT_FAILED;
	}
	progress_init(&pr, a, "Verifying");
	pr.page_size = info.page_size;
	ret = kpy_dump_verify(d, &vs, a->msglevel & ML_PROGRESS ? show_progress : NULL, &pr);
	if (ret && ret != -EBADMSG)
		msg(a, ML_ERROR, "%s: verify failed: %s", a->in, strerror(-ret));
	else if (vs.bad)
		msg(a, ML_ERROR, "%s: %llu pages do not decode; the first is frame %#llx "
		    "(file offset %#llx)", a->in, (unsigned long long)vs.bad,
		    (unsigned long long)vs.first_bad_pfn, (unsigned long long)vs.first_bad_offset);
	msg(a, ML_COMMON | ML_REPORT, "%s: %s%s%s, %llu pages: %llu ok, %llu lost, %llu bad%s",
	    a->in, info.flattened ? "flattened " : "",
	    info.format == KPY_FMT_ELF ? "ELF" : "kdump-compressed ",
	    info.format == KPY_FMT_ELF ? "" : kpy_codec_name(info.codec),
	    (unsigned long long)vs.frames, (unsigned long long)vs.ok, (unsigned long long)vs.lost,
	    (unsigned long long)vs.bad, info.incomplete ? " (marked incomplete)" : "");
	if (a->json)
		printf("{\"pages\": %llu, \"ok\": %llu, \"lost\": %llu, \"bad\": %llu, "
		       "\"incomplete\": %s}\n", (unsigned long long)vs.frames,
		       (unsigned long long)vs.ok, (unsigned long long)vs.lost,
		       (unsigned long long)vs.bad, info.incomplete ? "true" : "false");
	kpy_dump_close(d);
	close(fd);
	if (ret || vs.bad || (vs.lost && !info.incomplete))
		return EXIT_FAILED;
	return info.incomplete ? EXIT_INCOMPLETE : EXIT_DONE;
}

/* The levels --mem-usage predicts: 0, 1, 31 and -d LEVEL, ascending. */
static int predicted_levels(const struct args *a, int *lv)
{
	int n = 0, d = a->o.dump_level;

	lv[n++] = 0;
	lv[n++] = 1;
	if (a->level_given && d > 1 && d < 31)
		lv[n++] = d;
	lv[n++] = 31;
	return n;
}

static void print_usage_json(const struct args *a, const struct kpy_usage_stats *st)
{
	int lv[4], nl = predicted_levels(a, lv);

	printf("{\"page_size\": %u, \"total_pages\": %llu, \"zero\": %llu, "
	       "\"non_pri_cache\": %llu, \"pri_cache\": %llu, \"user\": %llu, \"free\": %llu, "
	       "\"hwpoison\": %llu, \"offline\": %llu, \"kern_data\": %llu, "
	       "\"no_memmap\": %llu, \"crash_reserved\": %llu, \"sample_stride\": %llu, "
	       "\"seconds\": %.6f, \"predicted\": {", st->page_size,
	       (unsigned long long)st->pages_total,
	       (unsigned long long)st->zero, (unsigned long long)st->pages[KPY_MU_CACHE],
	       (unsigned long long)st->pages[KPY_MU_CACHE_PRIVATE],
	       (unsigned long long)st->pages[KPY_MU_USER],
	       (unsigned long long)st->pages[KPY_MU_FREE],
	       (unsigned long long)st->pages[KPY_MU_HWPOISON],
	       (unsigned long long)st->pages[KPY_MU_OFFLINE],
	       (unsigned long long)(st->pages[KPY_MU_KERNEL] - st->zero),
	       (unsigned long long)st->pages[KPY_MU_NO_MEMMAP],
	       (unsigned long long)st->crash_reserved, (unsigned long long)st->stride,
	       (double)st->elapsed_ns / 1e9);
	for (int i = 0; i < nl; i++) {
		printf("%s\"%d\": {\"elf\": %lld", i ? ", " : "", lv[i],
		       (long long)kpy_usage_predict(st, lv[i], KPY_FMT_ELF, KPY_CODEC_NONE));
		for (int s = 0; kpy_codecs[s] >= 0; s++) {
			int64_t b = kpy_usage_predict(st, lv[i], KPY_FMT_KDUMP, kpy_codecs[s]);
			if (b >= 0)
				printf(", \"%s\": %lld", kpy_codec_name(kpy_codecs[s]), (long long)b);
		}
		putchar('}');
	}
	printf("}, \"collector\": {\"dump_level\": %d, \"format\": \"%s\", "
	       "\"compression\": \"%s\", \"bytes\": %lld}}\n", a->o.dump_level,
	       a->o.format == KPY_FMT_ELF ? "elf" : "kdump", kpy_codec_name(a->o.codec),
	       (long long)kpy_usage_predict(st, a->o.dump_level, a->o.format, a->o.codec));
}

static void print_size(int64_t b)
{
	if (b < 0)
		printf("  %-12s", "-");
	else if (b >= (1ll << 30))
		printf("  %8.2f GiB", (double)b / (double)(1ll << 30));
	else
		printf("  %8.1f MiB", (double)b / (double)(1 << 20));
}

/* makedumpfile's table (same layout), then the predicted sizes. */
static void print_usage_table(const struct args *a, const struct kpy_usage_stats *st)
{
	static const char *const label[] = { "none", "zlib (-c)", "lzo (-l)", "zstd (-z)",
					      "snappy (-p)" };
	int lv[4], nl = predicted_levels(a, lv);

	printf("\nTYPE\t\tPAGES\t\t\tEXCLUDABLE\tDESCRIPTION\n");
	printf("----------------------------------------------------------------------\n");
	printf("ZERO\t\t%-16llu\tyes\t\tPages filled with zero\n",
	       (unsigned long long)st->zero);
	printf("NON_PRI_CACHE\t%-16llu\tyes\t\tCache pages without private flag\n",
	       (unsigned long long)st->pages[KPY_MU_CACHE]);
	printf("PRI_CACHE\t%-16llu\tyes\t\tCache pages with private flag\n",
	       (unsigned long long)st->pages[KPY_MU_CACHE_PRIVATE]);
	printf("USER\t\t%-16llu\tyes\t\tUser process pages\n",
	       (unsigned long long)st->pages[KPY_MU_USER]);
	printf("FREE\t\t%-16llu\tyes\t\tFree pages\n",
	       (unsigned long long)st->pages[KPY_MU_FREE]);
	printf("KERN_DATA\t%-16llu\tno\t\tDumpable kernel data \n",
	       (unsigned long long)(st->pages[KPY_MU_KERNEL] - st->zero));
	printf("\npage size:\t\t%-16u\n", st->page_size);
	printf("Total pages on system:\t%-16llu\n", (unsigned long long)st->pages_total);
	printf("Total size on system:\t%-16llu Byte\n",
	       (unsigned long long)st->pages_total * st->page_size);
	printf("\nPredicted dump size (kdump-compressed by codec, or ELF; from 1 frame in %llu "
	       "read and compressed):\n", (unsigned long long)st->stride);
	printf("%-6s  %-12s", "LEVEL", "ELF (-E)");
	for (int s = 0; kpy_codecs[s] >= 0; s++)
		if (kpy_usage_predict(st, 31, KPY_FMT_KDUMP, kpy_codecs[s]) >= 0)
			printf("  %-12s", s < KPY_MU_CODECS ? label[s] : kpy_codec_name(kpy_codecs[s]));
	putchar('\n');
	for (int i = 0; i < nl; i++) {
		printf("%-6d", lv[i]);
		print_size(kpy_usage_predict(st, lv[i], KPY_FMT_ELF, KPY_CODEC_NONE));
		for (int s = 0; kpy_codecs[s] >= 0; s++) {
			int64_t b = kpy_usage_predict(st, lv[i], KPY_FMT_KDUMP, kpy_codecs[s]);
			if (b >= 0)
				print_size(b);
		}
		putchar('\n');
	}
}

static int do_mem_usage(struct args *a)
{
	struct kpy_usage_opts o;
	struct kpy_usage_stats st;
	char *info;
	int fd, ret;

	if (load_vmcoreinfo(a, &info))
		return EXIT_FAILED;
	if ((fd = open_input(a)) < 0) {
		kpy_free(info);
		return EXIT_FAILED;
	}
	memset(&o, 0, sizeof(o));
	o.codecs = a->o.codec;
	o.vmcoreinfo = a->o.vmcoreinfo;
	o.vmcoreinfo_len = a->o.vmcoreinfo_len;
	ret = kpy_vmcore_mem_usage(fd, &o, &st);
	close(fd);
	kpy_free(info);
	if (ret) {
		msg(a, ML_ERROR, "%s: %s", a->in, st.message);
		return EXIT_FAILED;
	}
	if (a->json)
		print_usage_json(a, &st);
	else
		print_usage_table(a, &st);
	return EXIT_DONE;
}

int main(int argc, char **argv)
{
	struct args a;

	memset(&a, 0, sizeof(a));
	if (parse_args(&a, argc, argv)) {
		fputs(usage_text, stderr);
		return EXIT_FAILED;
	}
	if (a.rearrange)
		return do_rearrange(&a);
	if (a.verify)
		return do_verify(&a);
	if (a.mem_usage)
		return do_mem_usage(&a);
	if (a.o.flattened && isatty(STDOUT_FILENO)) {
		msg(&a, ML_ERROR, "-F writes a binary stream: redirect standard output");
		return EXIT_FAILED;
	}
	if (a.o.flattened)
		signal(SIGPIPE, SIG_IGN);    /* a reader that goes away: EPIPE and a message */
	return do_copy(&a);
}
