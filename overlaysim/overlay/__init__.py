"""The union-mount engine, one module per concern as in Linux's fs/overlayfs/.

params (options), super (mounting), namei (lookup), readdir, copy_up, dir (namespace
operations), inode (attributes, st_ino/st_dev), xattrs (private and escaped names).
"""
