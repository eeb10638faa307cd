from glob import glob

from setuptools import find_packages, setup

PACKAGE = "edgellm_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py") + glob("launch/*.xml")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="EdgeLLM SDK team",
    description="ROS 2 nodes over the EdgeLLM SDK",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            f"llm_node = {PACKAGE}.llm_node:main",
            f"speech_node = {PACKAGE}.speech_node:main",
            f"sensor_narrator_node = {PACKAGE}.sensor_narrator_node:main",
        ]
    },
)
