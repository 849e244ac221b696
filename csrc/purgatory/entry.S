/*
 * entry.S - where relocate_kernel lands: 64-bit mode, paging with every RAM page
 * identity-mapped, interrupts off, nothing else promised (no stack, no segments).
 *
 * Offset 0 of the blob is a jump over the parameter block (params.h) at offset 32.
 * purgatory_main (C) checks the SHA-256 and only returns when the kernel may start;
 * then we install a flat GDT (0x10 code, 0x18 data), reload every segment, point %rsi
 * at boot_params and jump to the kernel's 64-bit entry, as the boot protocol asks.
 * Everything is addressed relative to %rip: the blob runs wherever it was placed.
 */
#include "params.h"

	.code64
	.section .text.entry, "ax"
	.globl purgatory_entry
purgatory_entry:
	jmp	purgatory_start
	.balign	PURGATORY_PARAMS_OFFSET, 0x90

	.text
purgatory_start:
	cli
	cld
	leaq	purgatory_stack_top(%rip), %rsp
	call	purgatory_main

	/* The GDT descriptor needs the GDT's absolute address: store it now. */
	leaq	purgatory_gdt(%rip), %rax
	movq	%rax, purgatory_gdt_desc + 2(%rip)
	lgdt	purgatory_gdt_desc(%rip)
	movl	$0x18, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	/* Reload %cs with a far return to the next instruction. */
	leaq	1f(%rip), %rax
	pushq	$0x10
	pushq	%rax
	lretq
1:
	movq	purgatory_params + PP_OFF_BOOT_PARAMS(%rip), %rsi
	movq	purgatory_params + PP_OFF_ENTRY(%rip), %rax
	xorl	%ebx, %ebx
	xorl	%ecx, %ecx
	xorl	%edx, %edx
	xorl	%edi, %edi
	xorl	%ebp, %ebp
	xorl	%r8d, %r8d
	xorl	%r9d, %r9d
	xorl	%r10d, %r10d
	xorl	%r11d, %r11d
	xorl	%r12d, %r12d
	xorl	%r13d, %r13d
	xorl	%r14d, %r14d
	xorl	%r15d, %r15d
	jmp	*%rax

	.globl	purgatory_halt
purgatory_halt:
	cli
2:	hlt
	jmp	2b

	.data
	.balign	16
purgatory_gdt:
	.quad	0			/* 0x00 null */
	.quad	0			/* 0x08 unused */
	.quad	0x00af9a000000ffff	/* 0x10 64-bit code, flat */
	.quad	0x00cf92000000ffff	/* 0x18 data, flat 4 GiB */
purgatory_gdt_end:
	.balign	8
purgatory_gdt_desc:
	.word	purgatory_gdt_end - purgatory_gdt - 1
	.quad	0

	.balign	16
purgatory_stack:
	.skip	16384
purgatory_stack_top:

	.section .note.GNU-stack, "", @progbits
