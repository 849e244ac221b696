/*
 * copy.c - kpy_vmcore_copy(): check the options, open the vmcore, run the batches
 * through the chosen writer, and close the dump complete or, when the output ran out of
 * room (full disk, -L cap) or the caller cancelled, incomplete but readable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmcore.h"

static int check_opts(const struct kpy_copy_opts *o, char *msg)
{
	if (o->dump_level < 0 || o->dump_level > 31) {
		KPY_MSG(msg, "dump level %d is out of range (0-31)", o->dump_level);
		return -EINVAL;
	}
	if (o->format != KPY_FMT_KDUMP && o->format != KPY_FMT_ELF) {
		KPY_MSG(msg, "unknown output format %d", o->format);
		return -EINVAL;
	}
	if (o->format == KPY_FMT_ELF && o->codec != KPY_CODEC_NONE) {
		KPY_MSG(msg, "ELF dumps are not compressed: drop the codec option or the ELF one");
		return -EINVAL;
	}
	if (!kpy_codec_available(o->codec)) {
		KPY_MSG(msg, "%s compression is not available: lib%s is not installed, or this "
			"build has no support for it",
			kpy_codec_name(o->codec), kpy_codec_name(o->codec));
		return -ENOTSUP;
	}
	if (o->threads < 0 || o->threads > 256) {
		KPY_MSG(msg, "--num-threads %d is out of range (0-256)", o->threads);
		return -EINVAL;
	}
	return 0;
}

static void describe_failure(struct kpy_copy_ctx *cx, int ret)
{
	struct kpy_copy_stats *st = cx->st;
	const char *state = st->incomplete ? "the dump is incomplete" : "no usable dump was written";

	if (ret == -EFBIG && cx->out.limit)
		KPY_MSG(st->message, "size limit of %llu bytes reached at offset %#llx: %s "
			"(%llu of %llu pages written)", (unsigned long long)cx->out.limit,
			(unsigned long long)st->err_offset, state,
			(unsigned long long)st->pages_written, (unsigned long long)st->pages_in);
	else if (ret == -ECANCELED)
		KPY_MSG(st->message, "cancelled: %s (%llu of %llu pages written)", state,
			(unsigned long long)st->pages_written, (unsigned long long)st->pages_in);
	else if (st->err_in_output)
		KPY_MSG(st->message, "writing the dump failed at offset %#llx: %s; %s "
			"(%llu of %llu pages written)", (unsigned long long)st->err_offset,
			strerror(-ret), state, (unsigned long long)st->pages_written,
			(unsigned long long)st->pages_in);
	else
		KPY_MSG(st->message, "reading the vmcore failed at offset %#llx: %s; %s",
			(unsigned long long)st->err_offset,
			ret == -ENODATA ? "it is truncated" : strerror(-ret), state);
}

static int setup(struct kpy_copy_ctx *cx, int in_fd, int out_fd, const struct kpy_copy_opts *o)
{
	struct kpy_copy_stats *st = cx->st;
	int ret;

	cx->opts = *o;
	if ((ret = check_opts(o, st->message)))
		return ret;
	if ((ret = kpy_elf_open_info(&cx->in, in_fd, o->vmcoreinfo, o->vmcoreinfo_len,
				     st->message, &st->err_offset)))
		return ret;
	cx->page_size = cx->in.page_size;
	cx->host_page = (size_t)sysconf(_SC_PAGESIZE);
	cx->use_mmap = !o->no_mmap && cx->in.src.is_reg && !cx->in.src.flattened && !cx->in.kd;
	cx->out.fd = out_fd;
	cx->out.flattened = o->flattened;
	cx->out.limit = o->size_limit;
	cx->ops = o->format == KPY_FMT_ELF ? &kpy_elf_writer : &kpy_kdump_writer;
	st->pages_in = cx->in.nr_frames;
	st->page_size = cx->page_size;
	if (o->dump_level > 1) {
		if (!(cx->filter = calloc(1, sizeof(*cx->filter))))
			return -ENOMEM;
		ret = kpy_filter_init(cx->filter, &cx->in, o->dump_level, o->filter_window, 0,
				      st->message);
	}
	return ret;
}

static int start_output(struct kpy_copy_ctx *cx)
{
	int ret = kpy_sink_start(&cx->out);

	if (!ret)
		ret = cx->ops->begin(cx);
	if (ret) {
		cx->st->err_in_output = 1;
		cx->st->err_offset = cx->out.err_off;
		KPY_MSG(cx->st->message, "cannot write the dump's headers (offset %#llx): %s",
			(unsigned long long)cx->out.err_off, strerror(-ret));
	}
	return ret;
}

/* Close the dump: complete, or incomplete with every listed page valid. */
static int finish(struct kpy_copy_ctx *cx, int ret)
{
	struct kpy_copy_stats *st = cx->st;
	int complete = ret == 0, eret;

	if (ret && cx->out.err_off && st->err_in_output)
		st->err_offset = cx->out.err_off;
	eret = cx->ops->end(cx, complete);
	if (!eret)
		eret = kpy_sink_finish(&cx->out);
	if (eret && !ret) {
		ret = eret;
		st->err_in_output = 1;
		st->err_offset = cx->out.err_off;
	}
	st->incomplete = !complete && !eret;
	if (ret) {
		st->pages_lost = st->pages_in - st->pages_written - st->pages_excluded;
		describe_failure(cx, ret);
	}
	return ret;
}

int kpy_vmcore_copy(int in_fd, int out_fd, const struct kpy_copy_opts *opts,
		    struct kpy_copy_stats *st)
{
	struct kpy_copy_ctx *cx = calloc(1, sizeof(*cx));
	uint64_t t0 = kpy_now_ns();
	int ret;

	memset(st, 0, sizeof(*st));
	if (!cx)
		return -ENOMEM;
	cx->st = st;
	cx->in.src.fd = -1;
	if ((ret = setup(cx, in_fd, out_fd, opts)) == 0 && (ret = start_output(cx)) == 0) {
		ret = kpy_run_pipeline(cx);
		if (!ret && cx->iter_err)
			ret = cx->iter_err;
		ret = finish(cx, ret);
	}
	if (cx->ops && cx->ops->free)
		cx->ops->free(cx);
	st->bytes_out = cx->out.bytes;
	st->file_size = cx->out.end;
	st->elapsed_ns = kpy_now_ns() - t0;
	if (cx->filter)
		kpy_filter_fini(cx->filter);
	free(cx->filter);
	kpy_elf_close(&cx->in);
	free(cx);
	return ret;
}
