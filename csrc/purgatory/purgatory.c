/*
 * purgatory.c - the C half of purgatory: check that every segment still hashes to the
 * digest computed at load time, and refuse to boot when it does not.
 *
 * Freestanding: no libc, no interrupts, no printf. Messages go to an 8250 UART by
 * polled I/O when the loader set serial_port (kexec --console-serial).
 */
#include "params.h"
#include "sha256.h"

struct purgatory_params purgatory_params __attribute__((section(".params"), used)) = {
	.magic = PURGATORY_MAGIC,
};

void purgatory_halt(void) __attribute__((noreturn));
void purgatory_main(void);

/* gcc may emit calls to these for struct copies and zeroing. */
void *memset(void *s, int c, unsigned long n)
{
	unsigned char *p = s;

	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void serial_putc(uint16_t port, char c)
{
	unsigned spins = 100000;

	/* Wait (bounded) for the transmit holding register to empty: LSR bit 5. */
	while (!(inb(port + 5) & 0x20) && --spins)
		;
	outb(port, (uint8_t)c);
}

static void say(const char *s)
{
	uint16_t port = purgatory_params.serial_port;

	if (!port)
		return;
	for (; *s; s++) {
		if (*s == '\n')
			serial_putc(port, '\r');
		serial_putc(port, *s);
	}
}

static int digest_matches(void)
{
	const struct purgatory_params *p = &purgatory_params;
	struct sha256_ctx ctx;
	uint8_t digest[32];
	unsigned i;
	uint8_t diff = 0;

	sha256_init(&ctx);
	for (i = 0; i < p->nr_regions && i < PURGATORY_MAX_REGIONS; i++)
		sha256_update(&ctx, (const void *)(uintptr_t)p->regions[i].start, p->regions[i].len);
	sha256_final(&ctx, digest);
	for (i = 0; i < 32; i++)
		diff |= digest[i] ^ p->digest[i];
	return diff == 0;
}

void purgatory_main(void)
{
	if (purgatory_params.no_checks) {
		say("kexec-py purgatory: SHA-256 check skipped\n");
		return;
	}
	if (!digest_matches()) {
		say("kexec-py purgatory: SHA-256 digest mismatch: the loaded segments changed "
		    "after kexec_load; not booting\n");
		purgatory_halt();
	}
	say("kexec-py purgatory: SHA-256 ok, starting the kernel\n");
}
