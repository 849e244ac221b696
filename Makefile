# kexec-py: `make demo` and `make test` set up everything they need on a fresh Debian 12 or
# RHEL 9 machine (system packages, the VM kernel, a venv with `pip install -e .`).

PYTHON ?= python3
VENV   ?= .venv
VPY    := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: all deps venv kernel build demo test test-unit test-vm test-sanitize fuzz rpm sdist bench clean \
	install install-wheel install-files install-sysv bench-kdump

all: build

deps:
	sh tools/install-deps.sh

# The venv is rebuilt when the project's build inputs change.
$(VENV)/.installed: pyproject.toml setup.py csrc/build_ffi.py
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip setuptools wheel cffi
	$(VPY) -m pip install -q -e '.[test]'
	touch $@

venv: deps $(VENV)/.installed

# Rebuild the C parts in place after editing csrc/.
build: venv
	$(VPY) -m pip install -q --no-deps --no-build-isolation -e .

kernel: venv
	$(VPY) -m tests.vm.kernel

demo: venv kernel build
	$(VPY) -m tests.vm.demo

# Every test, and the benchmarks in their quick mode (64 MiB, no speed assertions).
test: venv kernel build
	$(VPY) -m pytest -ra $(PYTEST_ARGS) tests benchmarks

# The C library and tools under ASan+UBSan (a copy of the tree in build/sanitize), with
# every test that drives them; .ci/run calls it after `make test`.
test-sanitize: venv build
	sh tools/test-sanitize.sh $(VPY) $(PYTEST_ARGS)

# Fuzz every parser (tests/fuzz/run.py): FUZZ_SECONDS per target, then a table; the
# inputs it finds stay in build/fuzz/corpus for the next run. .ci/run calls it briefly.
FUZZ_SECONDS ?= 60
fuzz: venv build
	$(VPY) -m tests.fuzz.run --seconds $(FUZZ_SECONDS)

test-unit: venv build
	$(VPY) -m pytest -ra $(PYTEST_ARGS) tests/unit

test-vm: venv kernel build
	$(VPY) -m pytest -ra $(PYTEST_ARGS) tests/vm

sdist: venv
	rm -rf dist
	$(VPY) -m build --sdist --outdir dist .

# Binary RPM from kexec-tools.spec, built with rpmbuild under build/rpm.
rpm: sdist
	sh tools/build-rpm.sh dist build/rpm

# Install what the RPM installs, under DESTDIR (the RPM's %install runs this):
#   make install DESTDIR=/tmp/root [WHEELDIR=dir-with-the-built-wheel] [PYTHON=python3]
# Without WHEELDIR the wheel is built first (build/wheel), with PYTHON and no network.
# install-wheel puts the Python package and its console scripts in place (pip);
# install-files moves the commands where kexec-tools and kdump-utils have them and adds
# the configuration, units, hooks and directories. RHEL's spec runs %pyproject_install
# and then install-files.
# The systemd unit is always installed; `make install-sysv` adds the SysV init script
# (/etc/rc.d/init.d/kdump) for hosts without systemd. The RPM ships the unit only.
DESTDIR ?=
PREFIX ?= /usr
SYSCONFDIR ?= /etc
LOCALSTATEDIR ?= /var
BINDIR = $(PREFIX)/bin
SBINDIR = $(PREFIX)/sbin
UNITDIR ?= $(PREFIX)/lib/systemd/system
UDEVDIR ?= $(PREFIX)/lib/udev
KERNELINSTALLDIR ?= $(PREFIX)/lib/kernel/install.d
DRACUTMODDIR ?= $(PREFIX)/lib/dracut/modules.d
INITDIR ?= $(SYSCONFDIR)/rc.d/init.d
WHEELDIR ?=
# The installed scripts and units name kdumpctl and the udev helper by their path.
SUBST = -e 's|/usr/bin/kdumpctl|$(BINDIR)/kdumpctl|g' \
	-e 's|/usr/lib/udev/kdump-udev-throttler|$(UDEVDIR)/kdump-udev-throttler|g'
# Debian's pip installs to /usr/local unless told it is packaging for the system;
# other systems ignore the variable.
PIP_INSTALL = DEB_PYTHON_INSTALL_LAYOUT=deb PIP_BREAK_SYSTEM_PACKAGES=1 \
	$(PYTHON) -m pip install --no-deps --no-index --no-build-isolation --ignore-installed \
	--no-warn-script-location --disable-pip-version-check \
	$(if $(DESTDIR),--root=$(DESTDIR)) --prefix=$(PREFIX)

install:
	$(MAKE) install-wheel
	$(MAKE) install-files

install-wheel:
ifeq ($(WHEELDIR),)
	rm -rf build/wheel
	$(PYTHON) -m pip wheel -q --no-deps --no-build-isolation --no-index \
		--disable-pip-version-check --wheel-dir=build/wheel .
	$(PIP_INSTALL) build/wheel/kexec_py-*.whl
else
	$(PIP_INSTALL) $(WHEELDIR)/kexec_py-*.whl
endif

install-files:
	mkdir -p $(DESTDIR)$(SBINDIR)
	@# kexec and mkdumprd are root's commands (sbin, as in kexec-tools and kdump-utils);
	@# kdumpctl stays in bin.
	for cmd in kexec mkdumprd; do \
		[ ! -e $(DESTDIR)$(BINDIR)/$$cmd ] || \
		mv -f $(DESTDIR)$(BINDIR)/$$cmd $(DESTDIR)$(SBINDIR)/$$cmd || exit 1; \
	done
	@# The C tools (vmcore-copy, vmcore-dmesg) go on PATH as themselves, replacing pip's
	@# Python wrappers: the capture initramfs and shell users need no Python for them.
	@# kdump-insmod stays in the package: only mkdumprd puts it in the capture image.
	for tool in $$(find $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/lib64 \
			-path '*/kexec_py/libexec/vmcore-*' -type f 2>/dev/null); do \
		name=$$(basename "$$tool"); \
		rm -f $(DESTDIR)$(BINDIR)/"$$name"; \
		install -m 0755 "$$tool" $(DESTDIR)$(SBINDIR)/"$$name" || exit 1; \
	done
	@# pip's direct_url.json names the build directory; nothing reads it at run time.
	find $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/lib64 -path '*/kexec_py-*.dist-info/direct_url.json' \
		-delete 2>/dev/null || true
	@# Configuration: a changed file on this system is kept; ours goes next to it as .new.
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/sysconfig $(DESTDIR)$(SYSCONFDIR)/kdump \
		$(DESTDIR)$(SYSCONFDIR)/kdump/pre.d $(DESTDIR)$(SYSCONFDIR)/kdump/post.d \
		$(DESTDIR)$(SYSCONFDIR)/kdump/emergency.d
	for pair in kdump.conf:kdump.conf kdump.sysconfig:sysconfig/kdump; do \
		src=packaging/$${pair%%:*}; dst=$(DESTDIR)$(SYSCONFDIR)/$${pair#*:}; \
		if [ -e "$$dst" ] && ! cmp -s "$$src" "$$dst"; then dst=$$dst.new; \
			echo "install: keeping $${dst%.new}; the new default is $$dst"; fi; \
		install -m 0644 "$$src" "$$dst" || exit 1; \
	done
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(KERNELINSTALLDIR) \
		$(DESTDIR)$(UDEVDIR)/rules.d
	sed $(SUBST) packaging/kdump.service > $(DESTDIR)$(UNITDIR)/kdump.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/kdump.service
	for hook in 60-kdump.install 92-crashkernel.install; do \
		sed $(SUBST) packaging/$$hook > $(DESTDIR)$(KERNELINSTALLDIR)/$$hook && \
		chmod 0755 $(DESTDIR)$(KERNELINSTALLDIR)/$$hook || exit 1; \
	done
	sed $(SUBST) packaging/98-kexec.rules > $(DESTDIR)$(UDEVDIR)/rules.d/98-kexec.rules
	chmod 0644 $(DESTDIR)$(UDEVDIR)/rules.d/98-kexec.rules
	sed $(SUBST) packaging/kdump-udev-throttler > $(DESTDIR)$(UDEVDIR)/kdump-udev-throttler
	chmod 0755 $(DESTDIR)$(UDEVDIR)/kdump-udev-throttler
	@# The dracut module mkdumprd builds the capture initramfs with (shell only).
	install -d -m 0755 $(DESTDIR)$(DRACUTMODDIR)/99kexec-py-kdump
	for f in packaging/dracut/99kexec-py-kdump/*.sh; do \
		install -m 0755 "$$f" $(DESTDIR)$(DRACUTMODDIR)/99kexec-py-kdump/ || exit 1; \
	done
	install -m 0644 packaging/dracut/99kexec-py-kdump/*.service \
		packaging/dracut/99kexec-py-kdump/*.target $(DESTDIR)$(DRACUTMODDIR)/99kexec-py-kdump/
	@# Where dumps land by default, and where the capture initramfs goes when /boot
	@# is read-only (with kdumpctl's state files).
	install -d -m 0755 $(DESTDIR)$(LOCALSTATEDIR)/crash $(DESTDIR)$(LOCALSTATEDIR)/lib/kdump

install-sysv:
	install -d -m 0755 $(DESTDIR)$(INITDIR)
	sed $(SUBST) packaging/kdump.init > $(DESTDIR)$(INITDIR)/kdump
	chmod 0755 $(DESTDIR)$(INITDIR)/kdump

bench: venv build
	$(VPY) -m pytest -q benchmarks

# The capture footprint (smallest crashkernel=, against kdumpctl estimate) and the time
# from a panic to the guest back up, beside Debian's kdump-tools: about 40 min, not in CI.
bench-kdump: venv kernel build
	$(VPY) -m benchmarks.kdump_footprint --json build/kdump-footprint.json

clean:
	rm -rf build dist *.egg-info kexec_py/_native*.so kexec_py/_native.c kexec_py/libexec kexec_py/data/purgatory.bin
	find . -name __pycache__ -prune -exec rm -rf {} +
