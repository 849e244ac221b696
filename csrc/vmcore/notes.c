/*
 * notes.c - the PT_NOTE blob of a vmcore: find the VMCOREINFO note, count the
 * NT_PRSTATUS notes (one per CPU), look up VMCOREINFO keys.
 *
 * ELF64 notes still use three 4-byte header words; name and descriptor are each padded
 * to 4 bytes. VMCOREINFO's descriptor is ASCII "KEY=VALUE\n" lines.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmcore.h"

#define NT_PRSTATUS 1

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

void kpy_notes_scan(struct kpy_notes *n)
{
	size_t pos = 0;

	n->vmcoreinfo_off = n->vmcoreinfo_size = 0;
	n->nr_prstatus = 0;
	while (pos + 12 <= n->size) {
		uint32_t namesz = kpy_get32(n->buf + pos), descsz = kpy_get32(n->buf + pos + 4);
		uint32_t type = kpy_get32(n->buf + pos + 8);
		size_t name = pos + 12, desc = name + pad4(namesz);
		if (namesz == 0 && descsz == 0 && type == 0)
			break;          /* zero padding after the last note */
		if (desc > n->size || descsz > n->size - desc)
			break;
		if (namesz == 11 && memcmp(n->buf + name, "VMCOREINFO", 11) == 0) {
			n->vmcoreinfo_off = desc;
			n->vmcoreinfo_size = descsz;
		} else if (type == NT_PRSTATUS && namesz == 5 &&
			   memcmp(n->buf + name, "CORE", 5) == 0) {
			n->nr_prstatus++;
		}
		pos = desc + pad4(descsz);
	}
}

/*
 * Append a VMCOREINFO note holding text (makedumpfile's -g/-i file: KEY=VALUE lines) and
 * rescan: the last VMCOREINFO note wins, so it replaces one the dump carries.
 */
int kpy_notes_add_vmcoreinfo(struct kpy_notes *n, const char *text, size_t len, char *msg)
{
	static const char name[12] = "VMCOREINFO";
	size_t need = 12 + sizeof(name) + pad4(len);
	unsigned char *buf;

	if (len == 0 || len > KPY_VMCOREINFO_MAX || !memchr(text, '=', len)) {
		KPY_MSG(msg, "the VMCOREINFO file is %s", len == 0 ? "empty" :
			len > KPY_VMCOREINFO_MAX ? "too big (more than 1 MiB)" :
			"not KEY=VALUE lines");
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];
		if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch > 0x7e) {
			KPY_MSG(msg, "the VMCOREINFO file is not text (byte %#x at offset %zu)",
				ch, i);
			return -EINVAL;
		}
	}
	if (!(buf = realloc(n->buf, n->size + need + 1)))
		return -ENOMEM;
	n->buf = buf;
	buf += n->size;
	memset(buf, 0, need);
	kpy_put32(buf, 11);
	kpy_put32(buf + 4, (uint32_t)len);
	kpy_put32(buf + 8, 0);
	memcpy(buf + 12, name, 11);
	memcpy(buf + 12 + sizeof(name), text, len);
	n->size += need;
	kpy_notes_scan(n);
	return 0;
}

int kpy_vmcoreinfo_get(const struct kpy_notes *n, const char *key, char *out, size_t outlen)
{
	if (!n->buf || !n->vmcoreinfo_size)
		return -ENOENT;      /* no notes at all (a Xen dump without --vmcoreinfo) */
	const char *p = (const char *)n->buf + n->vmcoreinfo_off;
	const char *end = p + n->vmcoreinfo_size;
	size_t klen = strlen(key);

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		if ((size_t)(eol - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t vlen = (size_t)(eol - p) - klen - 1;
			if (vlen >= outlen)
				vlen = outlen - 1;
			memcpy(out, p + klen + 1, vlen);
			out[vlen] = 0;
			return 0;
		}
		p = eol + 1;
	}
	return -ENOENT;
}

int kpy_vmcoreinfo_u64(const struct kpy_notes *n, const char *key, int base, uint64_t *val)
{
	char buf[64], *endp;

	if (kpy_vmcoreinfo_get(n, key, buf, sizeof(buf)))
		return -ENOENT;
	*val = strtoull(buf, &endp, base);
	return endp == buf ? -EINVAL : 0;
}
