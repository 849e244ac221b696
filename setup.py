"""Build glue: setuptools drives cffi's out-of-line API-mode builder in csrc/, and also
compiles the C executables (csrc/build_tools.py) into kexec_py/libexec/ and the
purgatory blob into kexec_py/data/purgatory.bin.

Everything declarative lives in pyproject.toml; `pip install .` and `pip install -e .`
both compile with the system C compiler.
"""
import os
import sys

from setuptools import setup
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
        build_tools.build_executables(self.compiler, os.path.join(pkg, "libexec"),
                                      self.build_temp)
        build_tools.build_purgatory(os.path.join(pkg, "data"), self.build_temp)


setup(cffi_modules=["csrc/build_ffi.py:ffibuilder"], cmdclass={"build_ext": BuildExtAndTools})
