/*
 * dmesg.c - the kernel log out of a dump, formatted as kexec-tools' vmcore-dmesg does.
 *
 * The layout is chosen by VMCOREINFO: SYMBOL(prb) is the 5.10+ lockless ring buffer,
 * SYMBOL(log_first_idx) the 3.5-5.9 variable-length records, otherwise the old plain
 * character buffer. Each record becomes "[%5lu.%06lu] text\n" with bytes that are
 * neither printable nor white space written as \xNN. Layouts: docs/formats/printk.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmcore.h"
#include "dump.h"

struct outbuf {
	char *p;
	size_t len, cap;
};

struct dm {
	struct kpy_dump *d;
	const struct kpy_notes *n;
	struct outbuf out;
	char *msg;
};

static int reserve(struct outbuf *o, size_t more)
{
	if (o->len + more <= o->cap)
		return 0;
	size_t cap = o->cap ? o->cap : 65536;
	while (cap < o->len + more)
		cap *= 2;
	char *p = realloc(o->p, cap);
	if (!p)
		return -ENOMEM;
	o->p = p;
	o->cap = cap;
	return 0;
}

static int printable(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f) || c == ' ' || (c >= '\t' && c <= '\r');
}

/* One record: timestamp, escaped text, newline. */
static int put_record(struct outbuf *o, uint64_t ts_nsec, const unsigned char *text,
		      size_t len)
{
	int ret = reserve(o, 48 + 4 * len);

	if (ret)
		return ret;
	o->len += (size_t)sprintf(o->p + o->len, "[%5llu.%06llu] ",
				  (unsigned long long)(ts_nsec / 1000000000ull),
				  (unsigned long long)(ts_nsec % 1000000000ull / 1000));
	for (size_t i = 0; i < len; i++) {
		if (printable(text[i]))
			o->p[o->len++] = (char)text[i];
		else
			o->len += (size_t)sprintf(o->p + o->len, "\\x%02x", text[i]);
	}
	o->p[o->len++] = '\n';
	return 0;
}

static int key(struct dm *m, const char *k, int base, uint64_t *v)
{
	if (kpy_vmcoreinfo_u64(m->n, k, base, v) == 0)
		return 0;
	KPY_MSG(m->msg, "VMCOREINFO lacks %s", k);
	return -ENOENT;
}

/* Several keys at once: names[i] -> vals[i]; SYMBOL() are hexadecimal. */
static int keys(struct dm *m, const char *const *names, uint64_t *vals, int cnt)
{
	for (int i = 0; i < cnt; i++) {
		int ret = key(m, names[i], strncmp(names[i], "SYMBOL(", 7) ? 10 : 16, &vals[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static int vread(struct dm *m, uint64_t vaddr, void *buf, size_t len, const char *what)
{
	int ret = kpy_dump_read_virt(m->d, vaddr, buf, len);

	if (ret)
		KPY_MSG(m->msg, "cannot read %s (%zu bytes at %#llx): %s", what, len,
			(unsigned long long)vaddr, strerror(-ret));
	return ret;
}

/* A kernel buffer whose size the dump itself claims: checked against the memory the dump
 * holds, and its last byte read, before anything is allocated for it. */
static void *vread_alloc(struct dm *m, uint64_t vaddr, uint64_t len, const char *what)
{
	unsigned char last;
	void *p;

	if (len > kpy_dump_memory_bytes(m->d) || len > SIZE_MAX / 2) {
		KPY_MSG(m->msg, "%s claims %llu bytes, more than the dump's memory", what,
			(unsigned long long)len);
		return NULL;
	}
	if (len && vread(m, vaddr + len - 1, &last, 1, what))
		return NULL;
	p = malloc(len ? len : 1);
	if (!p) {
		KPY_MSG(m->msg, "out of memory for %s (%zu bytes)", what, len);
		return NULL;
	}
	if (vread(m, vaddr, p, len, what)) {
		free(p);
		return NULL;
	}
	return p;
}

static uint64_t rd64(const unsigned char *base, uint64_t off)
{
	return kpy_get64(base + off);
}

/* ---- 5.10+: the lockless printk_ringbuffer ---- */
enum {
	L_PRB, L_RB_SIZE, L_RB_DESC, L_RB_TEXT, L_DR_BITS, L_DR_DESCS, L_DR_INFOS,
	L_DR_HEAD, L_DR_TAIL, L_DESC_SIZE, L_DESC_STATE, L_DESC_TEXT, L_LPOS_BEGIN,
	L_LPOS_NEXT, L_INFO_SIZE, L_INFO_TS, L_INFO_LEN, L_DATA_BITS, L_DATA_DATA,
	L_COUNTER, L_NKEYS
};

static const char *const lockless_keys[L_NKEYS] = {
	"SYMBOL(prb)", "SIZE(printk_ringbuffer)", "OFFSET(printk_ringbuffer.desc_ring)",
	"OFFSET(printk_ringbuffer.text_data_ring)", "OFFSET(prb_desc_ring.count_bits)",
	"OFFSET(prb_desc_ring.descs)", "OFFSET(prb_desc_ring.infos)",
	"OFFSET(prb_desc_ring.head_id)", "OFFSET(prb_desc_ring.tail_id)", "SIZE(prb_desc)",
	"OFFSET(prb_desc.state_var)", "OFFSET(prb_desc.text_blk_lpos)",
	"OFFSET(prb_data_blk_lpos.begin)", "OFFSET(prb_data_blk_lpos.next)",
	"SIZE(printk_info)", "OFFSET(printk_info.ts_nsec)", "OFFSET(printk_info.text_len)",
	"OFFSET(prb_data_ring.size_bits)", "OFFSET(prb_data_ring.data)",
	"OFFSET(atomic_long_t.counter)",
};

struct ring {
	const uint64_t *k;
	uint64_t count, size;
	unsigned char *descs, *infos, *data;
};

#define DESC_ID_MASK (~(3ull << 62))

/* A field of width bytes at base + off lies inside a structure of size bytes (every
 * value from VMCOREINFO, so each is bounded before it is added). */
static int inside(uint64_t base, uint64_t off, uint64_t width, uint64_t size)
{
	return base <= 4096 && off <= 4096 && base + off + width <= size;
}

/* Every offset the lockless reader uses, inside the structure it indexes: a
 * VMCOREINFO that says otherwise once had it read past its buffers (found by fuzzing). */
static int lockless_layout(struct dm *m, const uint64_t *k)
{
	uint64_t rb = k[L_RB_SIZE], c = k[L_COUNTER];

	if (c > 4096 ||
	    !inside(k[L_RB_DESC], k[L_DR_BITS], 4, rb) ||
	    !inside(k[L_RB_DESC], k[L_DR_DESCS], 8, rb) ||
	    !inside(k[L_RB_DESC], k[L_DR_INFOS], 8, rb) ||
	    !inside(k[L_RB_DESC], k[L_DR_HEAD] + c, 8, rb) ||
	    !inside(k[L_RB_DESC], k[L_DR_TAIL] + c, 8, rb) ||
	    !inside(k[L_RB_TEXT], k[L_DATA_BITS], 4, rb) ||
	    !inside(k[L_RB_TEXT], k[L_DATA_DATA], 8, rb) ||
	    !inside(k[L_DESC_STATE], c, 8, k[L_DESC_SIZE]) ||
	    !inside(k[L_DESC_TEXT], k[L_LPOS_BEGIN], 8, k[L_DESC_SIZE]) ||
	    !inside(k[L_DESC_TEXT], k[L_LPOS_NEXT], 8, k[L_DESC_SIZE]) ||
	    !inside(k[L_INFO_TS], 0, 8, k[L_INFO_SIZE]) ||
	    !inside(k[L_INFO_LEN], 0, 2, k[L_INFO_SIZE])) {
		KPY_MSG(m->msg, "the printk ring buffer's VMCOREINFO offsets lie outside its "
			"structures (SIZE(printk_ringbuffer) %llu, SIZE(prb_desc) %llu, "
			"SIZE(printk_info) %llu)", (unsigned long long)rb,
			(unsigned long long)k[L_DESC_SIZE], (unsigned long long)k[L_INFO_SIZE]);
		return -EBADMSG;
	}
	return 0;
}

static int lockless_record(struct dm *m, const struct ring *r, uint64_t id)
{
	const uint64_t *k = r->k;
	const unsigned char *desc = r->descs + (id % r->count) * k[L_DESC_SIZE];
	const unsigned char *info = r->infos + (id % r->count) * k[L_INFO_SIZE];
	uint64_t sv = rd64(desc, k[L_DESC_STATE] + k[L_COUNTER]), state = sv >> 62;

	if ((sv & DESC_ID_MASK) != id || (state != 1 && state != 2))
		return 0;       /* not committed, or reused by a newer id */
	uint64_t begin = rd64(desc, k[L_DESC_TEXT] + k[L_LPOS_BEGIN]) % r->size;
	uint64_t next = rd64(desc, k[L_DESC_TEXT] + k[L_LPOS_NEXT]) % r->size;
	uint64_t ts = rd64(info, k[L_INFO_TS]);
	uint64_t len = kpy_get16(info + k[L_INFO_LEN]);

	if (begin == next)
		return put_record(&m->out, ts, NULL, 0);     /* data-less record */
	if (begin > next)
		begin = 0;      /* the block wrapped: its text starts the ring */
	begin += 8;         /* the block's leading id */
	if (next - begin < len)
		len = next - begin;
	if (begin + len > r->size)
		len = begin < r->size ? r->size - begin : 0;
	return put_record(&m->out, ts, r->data + begin, len);
}

static int lockless_read(struct dm *m, struct ring *r, const unsigned char *rb)
{
	const uint64_t *k = r->k;
	const unsigned char *dr = rb + k[L_RB_DESC], *tr = rb + k[L_RB_TEXT];
	unsigned bits = kpy_get32(dr + k[L_DR_BITS]), sbits = kpy_get32(tr + k[L_DATA_BITS]);

	if (bits > 24 || sbits > 31) {
		KPY_MSG(m->msg, "printk ring buffer sizes look wrong (count_bits %u, size_bits %u)",
			bits, sbits);
		return -EBADMSG;
	}
	r->count = 1ull << bits;
	r->size = 1ull << sbits;   /* record sizes were checked by lockless() */
	if (!(r->descs = vread_alloc(m, rd64(dr, k[L_DR_DESCS]), r->count * k[L_DESC_SIZE],
				     "the printk descriptors")))
		return -EIO;
	if (!(r->infos = vread_alloc(m, rd64(dr, k[L_DR_INFOS]), r->count * k[L_INFO_SIZE],
				     "the printk infos")))
		return -EIO;
	if (!(r->data = vread_alloc(m, rd64(tr, k[L_DATA_DATA]), r->size,
				    "the printk text ring")))
		return -EIO;
	return 0;
}

static int lockless(struct dm *m)
{
	uint64_t k[L_NKEYS], prb;
	struct ring r = { .k = k };
	unsigned char *rb = NULL;
	int ret = keys(m, lockless_keys, k, L_NKEYS);

	if (ret || (ret = vread(m, k[L_PRB], &prb, 8, "prb")))
		return ret;
	if (k[L_RB_SIZE] > 4096 || k[L_DESC_SIZE] > 4096 || k[L_INFO_SIZE] > 4096) {
		KPY_MSG(m->msg, "printk record sizes look wrong (SIZE(printk_ringbuffer) %llu, "
			"SIZE(prb_desc) %llu, SIZE(printk_info) %llu)",
			(unsigned long long)k[L_RB_SIZE], (unsigned long long)k[L_DESC_SIZE],
			(unsigned long long)k[L_INFO_SIZE]);
		return -EBADMSG;
	}
	if ((ret = lockless_layout(m, k)))
		return ret;
	if (!(rb = vread_alloc(m, prb, k[L_RB_SIZE], "printk_ringbuffer")))
		return -EIO;
	ret = lockless_read(m, &r, rb);
	if (ret == 0) {
		const unsigned char *dr = rb + k[L_RB_DESC];
		uint64_t id = rd64(dr, k[L_DR_TAIL] + k[L_COUNTER]);
		uint64_t head = rd64(dr, k[L_DR_HEAD] + k[L_COUNTER]);
		for (uint64_t i = 0; ret == 0 && i <= r.count; i++) {
			ret = lockless_record(m, &r, id);
			if (id == head)
				break;
			id = (id + 1) & DESC_ID_MASK;
		}
	}
	free(r.descs);
	free(r.infos);
	free(r.data);
	free(rb);
	return ret;
}

/* ---- 3.5-5.9: struct printk_log records in log_buf ---- */
static int structured_key(struct dm *m, const char *member, uint64_t *v)
{
	char k[64];

	snprintf(k, sizeof(k), "OFFSET(printk_log.%s)", member);
	if (kpy_vmcoreinfo_u64(m->n, k, 10, v) == 0)
		return 0;
	snprintf(k, sizeof(k), "OFFSET(log.%s)", member);
	return key(m, k, 10, v);
}

static int structured_params(struct dm *m, uint64_t *p)
{
	static const char *const syms[] = { "SYMBOL(log_buf)", "SYMBOL(log_buf_len)",
					    "SYMBOL(log_first_idx)", "SYMBOL(log_next_idx)" };
	int ret = keys(m, syms, p, 4);

	if (ret)
		return ret;
	if (kpy_vmcoreinfo_u64(m->n, "SIZE(printk_log)", 10, &p[4]) &&
	    (ret = key(m, "SIZE(log)", 10, &p[4])))
		return ret;
	if ((ret = structured_key(m, "ts_nsec", &p[5])) || (ret = structured_key(m, "len", &p[6])) ||
	    (ret = structured_key(m, "text_len", &p[7])))
		return ret;
	if (p[4] > 4096 || !inside(p[5], 0, 8, p[4]) || !inside(p[6], 0, 2, p[4]) ||
	    !inside(p[7], 0, 2, p[4])) {
		KPY_MSG(m->msg, "the printk record's VMCOREINFO offsets lie outside SIZE(printk_log) "
			"%llu", (unsigned long long)p[4]);
		return -EBADMSG;
	}
	return 0;
}

static int structured_walk(struct dm *m, const unsigned char *buf, uint32_t size,
			   uint32_t idx, uint32_t end, const uint64_t *p)
{
	uint64_t hdr = p[4];

	for (uint64_t steps = 0; idx != end; steps++) {
		if (steps > size || (uint64_t)idx + hdr > size) {
			KPY_MSG(m->msg, "log_buf record at index %u runs past the buffer", idx);
			return -EBADMSG;
		}
		const unsigned char *rec = buf + idx;
		uint32_t text_len = kpy_get16(rec + p[7]), len = kpy_get16(rec + p[6]);
		uint64_t avail = size - idx - hdr;
		int ret = put_record(&m->out, rd64(rec, p[5]), rec + hdr,
				     text_len < avail ? text_len : avail);
		if (ret)
			return ret;
		idx = len ? idx + len : 0;      /* len 0: wrap marker */
	}
	return 0;
}

static int structured(struct dm *m)
{
	uint64_t p[8], buf_addr;
	uint32_t size, first, next;
	unsigned char *buf;
	int ret = structured_params(m, p);

	if (ret || (ret = vread(m, p[0], &buf_addr, 8, "log_buf")) ||
	    (ret = vread(m, p[1], &size, 4, "log_buf_len")) ||
	    (ret = vread(m, p[2], &first, 4, "log_first_idx")) ||
	    (ret = vread(m, p[3], &next, 4, "log_next_idx")))
		return ret;
	if (!(buf = vread_alloc(m, buf_addr, size, "log_buf")))
		return -EIO;
	ret = structured_walk(m, buf, size, first, next, p);
	free(buf);
	return ret;
}

/* ---- before 3.5: a plain character ring ---- */
static int plain(struct dm *m)
{
	static const char *const syms[] = { "SYMBOL(log_buf)", "SYMBOL(log_buf_len)",
					    "SYMBOL(log_end)" };
	uint64_t s[3], buf_addr;
	uint32_t size, end;
	unsigned char *buf;
	int ret = keys(m, syms, s, 3);

	if (ret || (ret = vread(m, s[0], &buf_addr, 8, "log_buf")) ||
	    (ret = vread(m, s[1], &size, 4, "log_buf_len")) ||
	    (ret = vread(m, s[2], &end, 4, "log_end")))
		return ret;
	if (!size || !(buf = vread_alloc(m, buf_addr, size, "log_buf")))
		return -EIO;
	uint32_t n = end < size ? end : size, start = (end - n) % size;
	if (!(ret = reserve(&m->out, n))) {
		for (uint32_t i = 0; i < n; i++)
			m->out.p[m->out.len++] = (char)buf[(start + i) % size];
	}
	free(buf);
	return ret;
}

int kpy_dump_dmesg(struct kpy_dump *d, char **text, size_t *len)
{
	struct dm m = { .d = d, .n = kpy_dump_notes_view(d), .msg = kpy_dump_message(d) };
	uint64_t v;
	int ret;

	*text = NULL;
	*len = 0;
	if (!m.n->vmcoreinfo_size) {
		KPY_MSG(m.msg, "the dump has no VMCOREINFO note");
		return -ENOENT;
	}
	if (kpy_vmcoreinfo_u64(m.n, "SYMBOL(prb)", 16, &v) == 0)
		ret = lockless(&m);
	else if (kpy_vmcoreinfo_u64(m.n, "SYMBOL(log_first_idx)", 16, &v) == 0)
		ret = structured(&m);
	else
		ret = plain(&m);
	if (ret) {
		free(m.out.p);
		return ret;
	}
	if (!m.out.p)
		m.out.p = calloc(1, 1);
	*text = m.out.p;
	*len = m.out.len;
	return m.out.p ? 0 : -ENOMEM;
}

void kpy_free(void *p)
{
	free(p);
}
