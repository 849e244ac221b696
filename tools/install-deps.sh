#!/bin/sh
# Install what building, testing and the demo need, on Debian 12 (apt) or RHEL 9 (dnf).
# Idempotent: packages already present are left alone. Runs as root or through sudo.
set -eu

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

DEBIAN_PKGS="gcc make pkg-config python3 python3-dev python3-venv python3-pip
 python3-cffi python3-setuptools python3-wheel libffi-dev libzstd-dev zlib1g-dev
 liblzo2-dev libsnappy-dev zstd xz-utils rpm cpio kmod e2fsprogs mount busybox-static qemu-system-x86
 qemu-utils debootstrap xfsprogs kexec-tools makedumpfile crash time openssh-server openssh-client
 nfs-ganesha nfs-ganesha-vfs python3-libkdumpfile clang libclang-rt-14-dev systemd-boot-efi"
RHEL_PKGS="gcc make pkgconf-pkg-config python3 python3-devel python3-pip python3-cffi
 python3-setuptools python3-wheel libffi-devel libzstd-devel zlib-devel lzo-devel zstd
 xz rpm-build cpio kmod e2fsprogs util-linux qemu-kvm kexec-tools time openssh-server
 openssh-clients clang compiler-rt"

missing_deb() {
    for p in $DEBIAN_PKGS; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

if command -v apt-get >/dev/null 2>&1; then
    todo=$(missing_deb)
    if [ -n "$todo" ]; then
        echo "install-deps: apt-get install $(echo $todo)"
        $SUDO apt-get update -qq
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $todo
    fi
elif command -v dnf >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    $SUDO dnf install -y -q $RHEL_PKGS
    # busybox is not in RHEL's base repositories (it is in EPEL): the VM tests need it.
    command -v busybox >/dev/null 2>&1 || $SUDO dnf install -y -q busybox || \
        echo "install-deps: busybox not found (enable EPEL) - VM tests will fail" >&2
    # the nfs target's test server (userspace NFS): EPEL or the Storage SIG
    command -v ganesha.nfsd >/dev/null 2>&1 || \
        $SUDO dnf install -y -q nfs-ganesha nfs-ganesha-vfs || \
        echo "install-deps: nfs-ganesha not found (enable EPEL) - the nfs VM test will fail" >&2
else
    echo "install-deps: neither apt-get nor dnf found" >&2
    exit 1
fi
