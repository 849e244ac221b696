/*
 * pool.c - running the batches: on the calling thread alone (the default, best for a
 * one-CPU capture kernel), or on N worker threads with the calling thread as the writer.
 *
 * Batches live in a ring of 2N+1 slots; batch s uses slot s % nslots. The writer hands
 * out batch descriptions while slots are free, and writes batches strictly in order as
 * they complete, so the output is the same byte for byte whatever N is. Everyone sleeps
 * on condition variables: nobody spins. Memory is the ring, whatever the dump's size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmcore.h"

struct pool {
	struct kpy_copy_ctx *cx;
	pthread_mutex_t mu;
	pthread_cond_t work_cv, done_cv;
	struct kpy_batch *slots;
	size_t nslots;
	uint64_t submitted, taken, written;
	int quit;
};

int kpy_progress(struct kpy_copy_ctx *cx, uint64_t frames)
{
	uint64_t total = cx->in.nr_frames;
	unsigned permille;

	cx->frames_done += frames;
	if (!cx->opts.progress)
		return 0;
	permille = total ? (unsigned)(cx->frames_done * 1000 / total) : 1000;
	if (permille == cx->last_permille && cx->frames_done != total)
		return 0;
	cx->last_permille = permille;
	if (cx->opts.progress(cx->opts.progress_arg, cx->frames_done, total, cx->out.bytes))
		return -ECANCELED;
	return 0;
}

/* Write a processed batch in order, then let its window go. */
static int write_batch(struct kpy_copy_ctx *cx, struct kpy_batch *b)
{
	int ret = b->err;

	if (ret) {
		cx->st->err_in_output = 0;
		cx->st->err_offset = b->err_off;
	} else {
		for (uint64_t i = 0; i < b->n; i++)
			cx->st->pages_zero += (b->meta[i].flags & KPY_PAGE_ZERO) != 0;
		ret = cx->ops->batch(cx, b);
		if (ret)
			cx->st->err_in_output = 1;
	}
	kpy_batch_release(b);
	return ret ? ret : kpy_progress(cx, b->n);
}

static int run_single(struct kpy_copy_ctx *cx)
{
	struct kpy_codec codec;
	struct kpy_batch b;
	int ret;

	if ((ret = kpy_codec_init(&codec, cx->opts.codec, cx->page_size)))
		return ret;
	if ((ret = kpy_batch_alloc(&b, cx->page_size, cx->opts.codec != KPY_CODEC_NONE,
				   codec.bound)) == 0) {
		while (kpy_next_batch(cx, &b) == 0) {
			kpy_batch_process(cx, &codec, &b);
			if ((ret = write_batch(cx, &b)))
				break;
		}
	}
	kpy_batch_free(&b);
	kpy_codec_fini(&codec);
	return ret;
}

static void *worker(void *arg)
{
	struct pool *p = arg;
	struct kpy_codec codec;
	int ret = kpy_codec_init(&codec, p->cx->opts.codec, p->cx->page_size);

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->quit && p->taken == p->submitted)
			pthread_cond_wait(&p->work_cv, &p->mu);
		if (p->quit)
			break;
		struct kpy_batch *b = &p->slots[p->taken++ % p->nslots];
		b->state = KPY_SLOT_BUSY;
		pthread_mutex_unlock(&p->mu);
		if (ret)
			b->err = ret;
		else
			kpy_batch_process(p->cx, &codec, b);
		pthread_mutex_lock(&p->mu);
		b->state = KPY_SLOT_DONE;
		pthread_cond_signal(&p->done_cv);
	}
	pthread_mutex_unlock(&p->mu);
	if (!ret)
		kpy_codec_fini(&codec);
	return NULL;
}

/* With the lock held: hand out batches while slots are free, then wait for the next. */
static struct kpy_batch *next_done(struct pool *p)
{
	for (;;) {
		struct kpy_batch *b = &p->slots[p->submitted % p->nslots];
		if (p->submitted - p->written < p->nslots && b->state == KPY_SLOT_FREE &&
		    kpy_next_batch(p->cx, b) == 0) {
			b->seq = p->submitted++;
			b->state = KPY_SLOT_READY;
			pthread_cond_signal(&p->work_cv);
			continue;
		}
		b = &p->slots[p->written % p->nslots];
		if (p->written == p->submitted)
			return NULL;               /* nothing left */
		if (b->state == KPY_SLOT_DONE)
			return b;
		pthread_cond_wait(&p->done_cv, &p->mu);
	}
}

static int drive(struct pool *p)
{
	int ret = 0;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct kpy_batch *b = next_done(p);
		if (!b)
			break;
		pthread_mutex_unlock(&p->mu);
		ret = write_batch(p->cx, b);
		pthread_mutex_lock(&p->mu);
		b->state = KPY_SLOT_FREE;
		p->written++;
		if (ret)
			break;
	}
	p->quit = 1;
	pthread_cond_broadcast(&p->work_cv);
	pthread_mutex_unlock(&p->mu);
	return ret;
}

static int alloc_slots(struct pool *p, int nthreads)
{
	struct kpy_codec probe;
	int ret = kpy_codec_init(&probe, p->cx->opts.codec, p->cx->page_size);

	if (ret)
		return ret;
	p->nslots = 2 * (size_t)nthreads + 1;
	if (!(p->slots = calloc(p->nslots, sizeof(*p->slots))))
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < p->nslots; i++)
		ret = kpy_batch_alloc(&p->slots[i], p->cx->page_size,
				      p->cx->opts.codec != KPY_CODEC_NONE, probe.bound);
	kpy_codec_fini(&probe);
	return ret;
}

static int run_threads(struct kpy_copy_ctx *cx, int nthreads)
{
	struct pool p;
	pthread_t *tids = calloc((size_t)nthreads, sizeof(*tids));
	int started = 0, ret;

	memset(&p, 0, sizeof(p));
	p.cx = cx;
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.work_cv, NULL);
	pthread_cond_init(&p.done_cv, NULL);
	ret = tids ? alloc_slots(&p, nthreads) : -ENOMEM;
	for (; !ret && started < nthreads; started++)
		if ((ret = -pthread_create(&tids[started], NULL, worker, &p)))
			break;
	if (!ret) {
		ret = drive(&p);
	} else {
		pthread_mutex_lock(&p.mu);
		p.quit = 1;
		pthread_cond_broadcast(&p.work_cv);
		pthread_mutex_unlock(&p.mu);
	}
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	for (size_t i = 0; p.slots && i < p.nslots; i++)
		kpy_batch_free(&p.slots[i]);
	free(p.slots);
	free(tids);
	pthread_cond_destroy(&p.work_cv);
	pthread_cond_destroy(&p.done_cv);
	pthread_mutex_destroy(&p.mu);
	return ret;
}

int kpy_run_pipeline(struct kpy_copy_ctx *cx)
{
	if (cx->opts.threads <= 1)
		return run_single(cx);
	return run_threads(cx, cx->opts.threads);
}
