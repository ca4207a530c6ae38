"""The in-memory Linux filesystem layer: inodes, path walk, mounts, and the os look-alike."""

from overlaysim.vfs.cred import Cred
from overlaysim.vfs.hostfs import HostFS, Process
from overlaysim.vfs.mount import MountEntry
from overlaysim.vfs.superblock import StepClock

__all__ = ["Cred", "HostFS", "MountEntry", "Process", "StepClock"]
