"""The one piece pyproject.toml cannot say: the C++ extension ``trainer._entropy``.

setuptools with pybind11's helpers, not scikit-build-core: hpo already builds with setuptools,
the extension is one file with no dependencies for CMake to find, and the helpers give the
right flags (C++17, hidden symbols) without a second build system.
"""

from __future__ import annotations

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

setup(
    ext_modules=[
        Pybind11Extension(
            "trainer._entropy",
            ["csrc/entropy.cpp"],
            cxx_std=17,
            # -O3, and no -march=native: wheels and images may run on other CPUs.
            extra_compile_args=["-O3"],
        )
    ],
    cmdclass={"build_ext": build_ext},
)
