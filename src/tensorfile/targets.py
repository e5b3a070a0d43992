"""The targets `tensorfile recommend` plans for, by name only.

The command line lists them in `--target` without importing the plans themselves
(recommend_plans.py), which would add their import time to every command's start.
"""

TARGET_NAMES = (
    "phone-android",
    "phone-ios",
    "nvidia-server",
    "cpu",
    "intel",
    "cross-framework",
    "share",
    "resume-training",
)
