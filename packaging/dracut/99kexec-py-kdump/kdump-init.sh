#!/bin/sh
# /init of kexec-py's small capture initramfs: mkdumprd builds it this way when the dump
# target and the root file system sit on plain devices (no LVM, MD or dm-crypt) and
# kdump.conf's dracut_args adds no dracut modules. It replaces dracut's init, udev and
# kmod, which are most of what an image would otherwise unpack into the crash kernel's
# reserve: the kernel's devtmpfs provides the device nodes, blkid finds LABEL= and UUID=,
# and kdump-insmod loads the modules mkdumprd listed in /etc/kdump/modules, in the order
# it resolved from modules.dep in the first kernel. Then the capture script saves the dump
# and ends with the plan's final_action or failure_action.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

say() {
    echo "kdump: $*" > /dev/console 2>/dev/null
    echo "kdump: $*" > /dev/kmsg 2>/dev/null
    return 0
}

mount -t proc -o nosuid,noexec,nodev proc /proc
mount -t sysfs -o nosuid,noexec,nodev sysfs /sys
mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev 2>/dev/null ||
    say "cannot mount devtmpfs: device nodes are missing"
mkdir -p /run /tmp

if [ ! -e /proc/vmcore ]; then
    say "this initramfs saves a crash dump, and /proc/vmcore does not exist: not a capture kernel; rebooting"
    sync
    echo b > /proc/sysrq-trigger
    sleep 30
fi

. /etc/kdump/plan.env

# The modules, dependencies first (mkdumprd unpacked compressed ones when it built the
# image); each file is removed once loaded, which gives its pages back (the kernel holds
# its own copy of the code).
_dir=/lib/modules/$KDUMP_KERNEL_VERSION
while read -r _mod _params; do
    [ -n "$_mod" ] || continue
    _file=$_dir/$_mod
    if [ ! -f "$_file" ]; then
        say "module $_mod is not in the image"
        continue
    fi
    # shellcheck disable=SC2086
    kdump-insmod "$_file" $_params || say "module $_mod did not load; the capture goes on"
    rm -f "$_file"
done < /etc/kdump/modules

/bin/sh /sbin/kdump-capture
# the capture script ends the machine; if it ever returns, do not let init exit (a panic)
say "the capture script returned: rebooting"
sync
echo b > /proc/sysrq-trigger
sleep 30
