"""The union-mount engine, one module per concern as in Linux's fs/overlayfs/.

params (options), super (mounting), namei (lookup), readdir, copy_up, dir (namespace
operations), inode (attributes, st_ino/st_dev), xattrs (private and escaped names).

Importing the package registers the ``overlay`` filesystem type with the VFS, as the kernel
module's init calls ``register_filesystem``; ``overlaysim`` imports it at start-up.
"""

from overlaysim.overlay.export import OVL_EXPORT
from overlaysim.overlay.super import mount_overlay
from overlaysim.vfs.fstypes import register_filesystem
from overlaysim.vfs.sys_handle import register_export_ops

register_filesystem("overlay", mount_overlay)
register_export_ops("overlay", OVL_EXPORT)
