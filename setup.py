"""Build glue and package metadata.

setuptools drives cffi's out-of-line API-mode builder in csrc/, and also compiles the C
executables (csrc/build_tools.py) into kexec_py/libexec/ and the purgatory blob into
kexec_py/data/purgatory.bin. `pip install .` and `pip install -e .` both compile with the
system C compiler. The metadata is here rather than in pyproject.toml's [project] table
so that RHEL 9's setuptools 53 builds the RPM too.
"""
import os
import sys

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc"))
import build_tools  # noqa: E402


class BuildExtAndTools(build_ext):
    def run(self):
        super().run()
        if self.inplace:
            pkg = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kexec_py")
        else:
            pkg = os.path.join(self.build_lib, "kexec_py")
        with open(os.path.join(pkg, "_version.py"), "w") as f:
            f.write('"""Written by setup.py from kexec-tools.spec\'s Version: line."""\n'
                    "__version__ = %r\n" % build_tools.version())
        build_tools.build_executables(self.compiler, os.path.join(pkg, "libexec"),
                                      self.build_temp)
        build_tools.build_purgatory(os.path.join(pkg, "data"), self.build_temp)


HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
    LONG_DESCRIPTION = f.read()

setup(
    name="kexec-py",
    version=build_tools.version(),          # kexec-tools.spec's Version: line
    description="kexec and kdump for RHEL-family Linux: a Python package with a C core",
    long_description=LONG_DESCRIPTION,
    long_description_content_type="text/markdown",
    license="GPL-2.0-only",
    python_requires=">=3.9",
    packages=find_packages(include=["kexec_py", "kexec_py.*"]),
    install_requires=["cffi>=1.11"],
    setup_requires=["cffi>=1.11"],
    extras_require={"test": ["pytest>=7", "pytest-benchmark", "rpmfile", "drgn", "build",
                             "atheris>=3.0"]},
    entry_points={"console_scripts": [
        "kexec = kexec_py.cli.kexec:main",
        "vmcore-copy = kexec_py.vmcore.tool:main",
        "vmcore-dmesg = kexec_py.vmcore.tool:dmesg_main",
        "kdumpctl = kexec_py.cli.kdumpctl:main",
        "mkdumprd = kexec_py.cli.mkdumprd:main",
    ]},
    classifiers=[
        "Operating System :: POSIX :: Linux",
        "Programming Language :: C",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Boot",
    ],
    cffi_modules=["csrc/build_ffi.py:ffibuilder"],
    cmdclass={"build_ext": BuildExtAndTools},
    zip_safe=False,
)
