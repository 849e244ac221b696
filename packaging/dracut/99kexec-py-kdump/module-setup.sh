#!/bin/bash
# dracut module for kexec-py's kdump capture initramfs.
#
# mkdumprd (kexec-py) resolves /etc/kdump.conf into a plan in the first kernel and calls
# dracut with this module and these variables in the environment:
#   KEXEC_PY_KDUMP_DIR      directory holding plan.env (read by the capture script) and
#                           plan.json (for people and tools)
#   KEXEC_PY_KDUMP_TOOLS    the C executables to install: vmcore-copy, vmcore-dmesg and,
#                           in an own-init image, kdump-insmod
#   KEXEC_PY_KDUMP_DRIVERS  kernel modules the dump target needs
#   KEXEC_PY_KDUMP_FILES    further files: hooks, extra_bins, the ssh key
#   KEXEC_PY_KDUMP_INIT     own, dracut or systemd: which init runs the capture script
#   KEXEC_PY_KDUMP_SHELL    dracut's module for /bin/sh in an own-init image (dash, bash)
# Nothing in the image parses kdump.conf, and no interpreter other than the shell runs.
# The capture script runs
# - own: from our /init (kdump-init.sh), with no udev and no kmod: mkdumprd asks dracut
#   for this module alone (--modules) when the target and root are plain devices and
#   dracut_args adds no modules; /etc/kdump/modules lists the modules to load, in order;
# - dracut: as a pre-mount hook of dracut's shell init (base, udev);
# - systemd: as kexec-py-kdump-capture.service of the image's default target, when
#   dracut_args asks for a systemd initramfs (--add systemd).

check() {
    # only when mkdumprd asks for it
    [ -n "$KEXEC_PY_KDUMP_DIR" ] || return 255
    return 0
}

depends() {
    # the capture script sets up a network target's interface itself
    if [ "$KEXEC_PY_KDUMP_INIT" = own ]; then
        echo "${KEXEC_PY_KDUMP_SHELL:-bash}"
    else
        echo base
    fi
    return 0
}

_unpack_modules() {
    # kdump-insmod hands files to the kernel as they are: compressed modules are unpacked
    # here, in the first kernel, where the tools are (no kernel before 6.4 decompresses)
    local _m _tool
    for _m in $(find "$initdir" -type f \
                \( -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \)); do
        case "$_m" in
            *.xz) _tool="xz -d -q" ;;
            *.zst) _tool="zstd -d -q --rm" ;;
            *.gz) _tool="gzip -d -q" ;;
        esac
        if ! command -v "${_tool%% *}" > /dev/null; then
            derror "kexec-py-kdump: ${_tool%% *} is needed to unpack ${_m##*/}"
            return 1
        fi
        $_tool "$_m" || return 1
    done
    return 0
}

installkernel() {
    [ -n "$KEXEC_PY_KDUMP_DRIVERS" ] && hostonly='' instmods $KEXEC_PY_KDUMP_DRIVERS
    # own init: mkdumprd passes dracut no --add-drivers or --filesystems (they would be
    # installed after this, compressed again), so every module is in place here
    [ "$KEXEC_PY_KDUMP_INIT" = own ] && { _unpack_modules || return 1; }
    return 0
}

install() {
    local _tool _f _kind
    inst_simple "$KEXEC_PY_KDUMP_DIR/plan.env" /etc/kdump/plan.env
    inst_simple "$KEXEC_PY_KDUMP_DIR/plan.json" /etc/kdump/plan.json
    inst_script "$moddir/kdump-capture.sh" /sbin/kdump-capture
    if [ "$KEXEC_PY_KDUMP_INIT" = own ]; then
        inst_script "$moddir/kdump-init.sh" /init
        inst_simple "$KEXEC_PY_KDUMP_DIR/modules" /etc/kdump/modules
    elif dracut_module_included "systemd"; then
        # a systemd initramfs: the capture is a service of kexec-py-kdump.target, which
        # mounts no root and never switches root; kdumpctl puts
        # rd.systemd.unit=kexec-py-kdump.target on the capture command line (in an initrd
        # systemd starts initrd.target otherwise, whatever default.target says)
        inst_simple "$moddir/kexec-py-kdump.target" \
            "$systemdsystemunitdir/kexec-py-kdump.target"
        inst_simple "$moddir/kexec-py-kdump-capture.service" \
            "$systemdsystemunitdir/kexec-py-kdump-capture.service"
    else
        # dracut's shell init: no root to mount (cmdline hook), the capture before mounting
        inst_hook cmdline 90 "$moddir/kdump-root.sh"
        inst_hook pre-mount 90 "$moddir/kdump-capture-hook.sh"
    fi
    for _tool in $KEXEC_PY_KDUMP_TOOLS; do
        inst_binary "$_tool" "/usr/sbin/${_tool##*/}" || return 1
    done
    # vmcore-copy opens libsnappy itself (dlopen) when the collector compresses with -p
    case " $(. "$KEXEC_PY_KDUMP_DIR/plan.env" && echo "$KDUMP_COLLECTOR_OPTS") " in
        *" -p "*|*" -"[a-zA-Z]*p*" "*)
            inst_libdir_file "libsnappy.so.1*" || {
                derror "kexec-py-kdump: the collector uses snappy (-p): install libsnappy1v5"
                return 1
            } ;;
    esac
    inst_multiple mount umount mkdir mv rm cat sed grep tr tail date sync dmesg sleep wc \
        dirname cp
    # reboot and poweroff go through sysrq in the shell image (kdump-capture: machine);
    # halt has no sysrq key, so it comes along when the plan asks for it
    if dracut_module_included "systemd"; then
        inst_multiple reboot poweroff halt
    else
        case " $(. "$KEXEC_PY_KDUMP_DIR/plan.env" && \
                 echo "$KDUMP_FINAL_ACTION $KDUMP_FAILURE_ACTION") " in
            *" halt "*) inst_multiple halt || return 1 ;;
        esac
    fi
    if [ "$KEXEC_PY_KDUMP_INIT" = own ]; then
        inst_multiple blkid || return 1
        inst_multiple -o dd
    else
        inst_multiple -o blkid udevadm dd
    fi
    # the target's tools only: ssh, ip and the libraries only they use are 4 MB of a
    # local target's image, and every byte is unpacked into the crash kernel's reserve
    _kind=$(. "$KEXEC_PY_KDUMP_DIR/plan.env" && echo "$KDUMP_TARGET_KIND")
    case "$_kind" in
        ssh) inst_multiple ip ssh || return 1 ;;
        nfs)
            inst_multiple ip || return 1
            if ! inst_multiple mount.nfs; then
                derror "kexec-py-kdump: mount.nfs is missing: install nfs-utils (nfs-common)"
                return 1
            fi
            inst_multiple -o mount.nfs4
            # libtirpc (mount.nfs) reads its transports from /etc/netconfig
            [ -e /etc/netconfig ] && inst_simple /etc/netconfig
            ;;
    esac
    # ssh looks its user up: root must be in the image's passwd
    if ! grep -q '^root:' "$initdir/etc/passwd" 2>/dev/null; then
        echo 'root:x:0:0:root:/root:/bin/sh' >> "$initdir/etc/passwd"
    fi
    for _f in $KEXEC_PY_KDUMP_FILES; do
        inst "$_f" || return 1
    done
    return 0
}
