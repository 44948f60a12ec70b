"""Packaging glue that pyproject.toml cannot express: web/ installs as the package data `telehealth/web`.

web/ stays at the top of the repository (the browser client is edited there); the wheel maps it into
the package so an installed `telehealth` serves its pages wherever it lives.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["telehealth", "telehealth.*"]), "telehealth.web"],
    package_dir={"telehealth.web": "web"},
)
