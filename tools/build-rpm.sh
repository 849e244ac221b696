#!/bin/sh
# Build the binary RPM from kexec-tools.spec and the sdist in DISTDIR, under TOPDIR.
#   sh tools/build-rpm.sh [DISTDIR [TOPDIR [rpmbuild options...]]]
# Options after TOPDIR go to rpmbuild, e.g. --define "release_number 2".
# On RHEL rpmbuild checks BuildRequires against the RPM database; on Debian that database
# is empty (the build dependencies come from apt), so the check is skipped there.
set -eu
distdir=${1:-dist}
topdir=$(realpath -m "${2:-build/rpm}")
[ $# -gt 2 ] && shift 2 || set --
version=$(sed -n 's/^Version: *//p' kexec-tools.spec)
sdist=$(ls "$distdir"/kexec_py-"$version".tar.gz 2>/dev/null || ls "$distdir"/kexec-py-"$version".tar.gz)
rm -rf "$topdir"
mkdir -p "$topdir/SOURCES" "$topdir/SPECS" "$topdir/BUILD" "$topdir/RPMS" "$topdir/SRPMS"
cp "$sdist" "$topdir/SOURCES/"
cp kexec-tools.spec "$topdir/SPECS/"
nodeps=
if command -v dpkg >/dev/null 2>&1 && ! rpm -q rpm >/dev/null 2>&1; then
    nodeps=--nodeps
fi
rpmbuild -bb $nodeps --define "_topdir $topdir" \
    --define "sdist_name $(basename "$sdist" .tar.gz)" "$@" "$topdir/SPECS/kexec-tools.spec"
find "$topdir/RPMS" -name '*.rpm' -print
