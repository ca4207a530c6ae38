"""A FUSE front end: a simulated overlay mounted for real, so real programs run on it.

``overlaysim mount`` / ``mount.fuse.overlaysim`` import real lower dirs into a HostFS, mount
the simulated overlay there and serve it through libfuse; each FUSE request is one ``fs.os``
call made with the caller's credentials, and at unmount the simulated upper dir is written
back to ``--upperdir`` in the kernel's on-disk form. One concern per module:

* ``options``    the command line and mount(8)'s ``-o`` list -> a validated MountSpec
* ``simulation`` the HostFS with the layers imported and the overlay mounted
* ``binding``    libfuse through mfusepy (the only module that imports it) and cache settings
* ``ops``        the FUSE operations over the serving process's ``fs.os``
* ``attrs``      stat/statfs/dirent/utimens mapping
* ``explain``    engine events streamed as they happen
* ``daemon``     the lifecycle: check, import, mount, daemonise, serve, write back
* ``writeback``  the upper/work dirs to disk, all or nothing
* ``runstate``   a record per mount for ``overlaysim umount``; ``umount`` the unmount
* ``helper``     the mount(8) helper ``mount.fuse.overlaysim``
* ``world``      a container of the saved world (``docker mount``), saved at unmount

The engine is used only through HostFS and its events; nothing below imports this package.
"""
