"""Build glue: setuptools drives cffi's out-of-line API-mode builder in csrc/.

Everything declarative lives in pyproject.toml; this file only names the cffi module
so that `pip install .` and `pip install -e .` compile kexec_py._native with the
system C compiler.
"""
from setuptools import setup

setup(cffi_modules=["csrc/build_ffi.py:ffibuilder"])
