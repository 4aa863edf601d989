"""Build script: packages from two roots and the optional C matcher kernels.

The C extension ``biostation.matcher._native`` is optional. When no compiler is present the
build prints a loud warning and installs the pure numpy package (the executable spec); set
``BIOSTATION_REQUIRE_NATIVE=1`` (CI does) to make a failed native build a hard error.
"""

import glob
import os
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

REQUIRE_NATIVE = os.environ.get("BIOSTATION_REQUIRE_NATIVE") == "1"


class BuildFailed(Exception):
    pass


class OptionalBuildExt(build_ext):
    """build_ext that degrades to a warning instead of failing the install."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # compiler missing, distutils errors
            self._fail(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc):
        if REQUIRE_NATIVE:
            raise
        bar = "*" * 75
        sys.stderr.write(
            f"\n{bar}\nWARNING: the C matcher kernels could not be built ({exc}).\n"
            "biostation is installed with the pure numpy matcher: correct, but slower.\n"
            "Install gcc and the Python headers (apt-get install gcc python3-dev) and reinstall.\n"
            f"{bar}\n\n"
        )


def native_extensions():
    sources = sorted(glob.glob("native/*.c"))
    if not sources:
        return []
    return [
        Extension(
            "biostation.matcher._native",
            sources=sources,
            include_dirs=["native"],
            extra_compile_args=["-O3", "-std=c11", "-fno-strict-aliasing"],
        )
    ]


packages = find_packages("src") + [
    "biostation_drivers" + ("." + p if p else "")
    for p in [""] + find_packages("drivers")
]

setup(
    packages=packages,
    package_dir={"": "src", "biostation_drivers": "drivers"},
    ext_modules=native_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
