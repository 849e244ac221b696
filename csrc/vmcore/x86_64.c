/*
 * x86_64.c - kernel virtual to physical addresses in an x86_64 dump.
 *
 * Three kinds of address: kernel text and data (vaddr - __START_KERNEL_map + phys_base;
 * KASLR's KERNELOFFSET is already in every SYMBOL() value), the direct map (a fixed
 * offset when the dump tells it, as an ELF vmcore's RAM PT_LOADs do), and everything
 * else (vmemmap, vmalloc) through a 4- or 5-level page-table walk from init_top_pgt.
 * The last large leaf found by the walk is remembered: the direct map and vmemmap use
 * 2 MiB and 1 GiB pages, so most translations need no table read.
 */
#include <errno.h>
#include <string.h>

#include "vmcore.h"

#define PTE_PRESENT   0x1ull
#define PTE_PSE       0x80ull
#define PTE_ADDR_MASK 0x000ffffffffff000ull

/* A frame a page-table entry names, as the dump's physical address. */
static int entry_frame(const struct kpy_x86 *x, uint64_t addr, uint64_t *paddr)
{
	uint64_t pfn;
	int ret;

	if (!x->m2p) {
		*paddr = addr;
		return 0;
	}
	if ((ret = x->m2p(x->m2p_ctx, addr >> 12, &pfn)))
		return ret;
	*paddr = (pfn << 12) | (addr & 0xfff);
	return 0;
}

/* machine: the table's address came from an entry (a machine frame under Xen PV) */
static int read_entry(const struct kpy_x86 *x, uint64_t table, unsigned idx, int machine,
		      uint64_t *val)
{
	unsigned char b[8];
	uint64_t paddr = (table & PTE_ADDR_MASK) + 8ull * idx;
	int ret = machine ? entry_frame(x, paddr, &paddr) : 0;

	if (!ret)
		ret = x->read(x->ctx, paddr, b, 8);
	if (ret)
		return ret;
	*val = kpy_get64(b);
	return 0;
}

int kpy_x86_init(struct kpy_x86 *x, const struct kpy_notes *n, kpy_phys_read_fn read,
		 void *ctx)
{
	uint64_t v;

	memset(x, 0, sizeof(*x));
	x->read = read;
	x->ctx = ctx;
	if (kpy_vmcoreinfo_u64(n, "NUMBER(phys_base)", 0, &v) == 0) {
		x->phys_base = v;
		x->have_phys_base = 1;
	}
	if (kpy_vmcoreinfo_u64(n, "KERNELOFFSET", 16, &v) == 0)
		x->kernel_offset = v;
	x->levels = 4;
	if (kpy_vmcoreinfo_u64(n, "NUMBER(pgtable_l5_enabled)", 0, &v) == 0 && v)
		x->levels = 5;
	if (kpy_vmcoreinfo_u64(n, "SYMBOL(init_top_pgt)", 16, &v) == 0) {
		x->top_pgt_vaddr = v;
		x->have_top_pgt = 1;
	}
	return 0;
}

void kpy_x86_set_phys_base(struct kpy_x86 *x, uint64_t phys_base)
{
	if (!x->have_phys_base) {
		x->phys_base = phys_base;
		x->have_phys_base = 1;
	}
}

void kpy_x86_from_elf_input(struct kpy_x86 *x, struct kpy_elf *e)
{
	if (e->xen == KPY_XEN_PV) {
		x->m2p = kpy_elf_xen_m2p;
		x->m2p_ctx = e;
	}
}

void kpy_x86_set_page_offset(struct kpy_x86 *x, uint64_t page_offset, uint64_t end)
{
	x->page_offset = page_offset;
	x->direct_end = end;
	x->have_page_offset = 1;
}

static int leaf(struct kpy_x86 *x, uint64_t vaddr, uint64_t entry, unsigned shift,
		uint64_t *paddr)
{
	uint64_t size = 1ull << shift;
	uint64_t base = entry & PTE_ADDR_MASK & ~(size - 1);

	if (x->m2p)        /* machine frames: each 4 KiB frame on its own, nothing cached */
		return entry_frame(x, base + (vaddr & (size - 1)), paddr);
	*paddr = base + (vaddr & (size - 1));
	if (shift > 12) {
		x->tlb_vaddr = vaddr & ~(size - 1);
		x->tlb_paddr = base;
		x->tlb_size = size;
	}
	return 0;
}

static int walk(struct kpy_x86 *x, uint64_t vaddr, uint64_t *paddr)
{
	uint64_t table, entry;
	unsigned top = x->levels == 5 ? 48 : 39, shift = top;
	int ret;

	if (!x->have_top_pgt)
		return -ENOENT;
	/* the top table is reached through the kernel map: a (pseudo-)physical address */
	table = x->top_pgt_vaddr - KPY_X86_KERNEL_MAP + x->phys_base;
	for (; shift >= 12; shift -= 9) {
		ret = read_entry(x, table, (unsigned)((vaddr >> shift) & 511), top != shift,
				 &entry);
		if (ret)
			return ret;
		if (!(entry & PTE_PRESENT))
			return -EFAULT;
		if (shift == 12 || ((shift == 30 || shift == 21) && (entry & PTE_PSE)))
			return leaf(x, vaddr, entry, shift, paddr);
		table = entry;
	}
	return -EFAULT;
}

int kpy_x86_vtop(struct kpy_x86 *x, uint64_t vaddr, uint64_t *paddr)
{
	if (vaddr >= KPY_X86_KERNEL_MAP) {
		if (!x->have_phys_base)
			return -ENOENT;
		*paddr = vaddr - KPY_X86_KERNEL_MAP + x->phys_base;
		return 0;
	}
	if (x->have_page_offset && vaddr >= x->page_offset && vaddr < x->direct_end) {
		*paddr = vaddr - x->page_offset;
		return 0;
	}
	if (x->tlb_size && vaddr - x->tlb_vaddr < x->tlb_size) {
		*paddr = x->tlb_paddr + (vaddr - x->tlb_vaddr);
		return 0;
	}
	return walk(x, vaddr, paddr);
}

int kpy_x86_read(struct kpy_x86 *x, uint64_t vaddr, void *buf, size_t len)
{
	unsigned char *out = buf;

	while (len) {
		size_t n = 4096 - (vaddr & 4095);
		uint64_t paddr;
		int ret;

		if (n > len)
			n = len;
		ret = kpy_x86_vtop(x, vaddr, &paddr);
		if (ret == 0)
			ret = x->read(x->ctx, paddr, out, n);
		if (ret)
			return ret;
		vaddr += n;
		out += n;
		len -= n;
	}
	return 0;
}
