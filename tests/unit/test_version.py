"""The version has one statement, kexec-tools.spec's Version: line; the package
metadata, kexec_py.__version__, kexec --version and vmcore-copy --version all show it."""
import importlib.metadata
import os
import re
import subprocess
import sys

import kexec_py
from kexec_py import vmcore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def spec_version():
    with open(os.path.join(ROOT, "kexec-tools.spec")) as f:
        return re.search(r"^Version:\s*(\S+)", f.read(), re.M).group(1)


def test_every_place_shows_the_specs_version():
    v = spec_version()
    assert kexec_py.__version__ == v
    assert importlib.metadata.version("kexec-py") == v
    out = subprocess.run([sys.executable, "-m", "kexec_py.cli.kexec", "--version"],
                         stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    assert out.split()[:2] == ["kexec-py", v], out
    out = subprocess.run([vmcore.executable("vmcore-copy"), "--version"],
                         stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    assert out.strip() == "vmcore-copy (kexec-py) %s" % v
    for path in ("setup.py", "kexec_py/__init__.py", "csrc/tools/vmcore_copy.c"):
        with open(os.path.join(ROOT, path)) as f:
            assert v not in f.read(), "%s states the version itself" % path
