"""Executables and blobs built beside the cffi module (see setup.py's build_ext).

Each executable is compiled from C sources in csrc/ with the same compiler setuptools
uses, and lands in kexec_py/libexec/ so that it ships inside the package; the RPM also
installs it on PATH. An entry: name -> dict(sources=[...], libraries=[...], macros=[...]).
Sources are relative to csrc/.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
INCLUDE = os.path.join(HERE, "include")

EXECUTABLES = {}


def build_executables(compiler, outdir, tmpdir, extra_macros=(), extra_libraries=()):
    """Compile and link every entry of EXECUTABLES into outdir; returns the paths."""
    os.makedirs(outdir, exist_ok=True)
    built = []
    for name, spec in sorted(EXECUTABLES.items()):
        sources = [os.path.join(HERE, s) for s in spec["sources"]]
        macros = list(spec.get("macros", ())) + list(extra_macros)
        objects = compiler.compile(
            sources, output_dir=os.path.join(tmpdir, name), macros=macros,
            include_dirs=[INCLUDE], extra_postargs=["-O2", "-Wall", "-Wextra", "-std=gnu11"])
        libs = list(spec.get("libraries", ())) + [
            lib for lib in extra_libraries if lib in spec.get("optional_libraries", ())]
        compiler.link_executable(objects, name, output_dir=outdir, libraries=libs,
                                 extra_postargs=spec.get("link_args", []))
        built.append(os.path.join(outdir, name))
    return built
