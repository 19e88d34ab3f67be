"""Builds sluice._native with the project's CMake build (Release, in build/python-wheel at the
repository root) and puts it into the package setuptools installs. See pyproject.toml."""
import os
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = os.path.join(REPO, "build", "python-wheel")
        subprocess.check_call(["cmake", "-S", REPO, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release"])
        subprocess.check_call(["cmake", "--build", build, "--target", "sluice_native"])
        built = os.path.join(build, "python", "sluice", os.path.basename(self.get_ext_filename(ext.name)))
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(built, target)


setup(ext_modules=[Extension("sluice._native", sources=[])], cmdclass={"build_ext": CMakeBuild})
