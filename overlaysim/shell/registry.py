"""The table of tools the shell can run: name -> function, one-line usage, usage-error status.

One place lists every command, so ``--help``, "not found" and the exit status of a bad
option (2 for ls and grep, 1 for most coreutils) are decided here rather than per tool.
"""

from __future__ import annotations

from collections.abc import Callable

from overlaysim.shell import attrs, builtins, copy, files, mountcmd, text, walk, xattr
from overlaysim.shell.context import Ctx
from overlaysim.shell.ls import ls

Tool = Callable[[Ctx, list[str]], int]

TOOLS: dict[str, Tool] = {
    # shell builtins
    "cd": builtins.cd, "pwd": builtins.pwd, "exit": builtins.exit_, "true": builtins.true,
    "false": builtins.false, ":": builtins.true, "echo": builtins.echo,
    "printf": builtins.printf, "test": builtins.test, "[": builtins.bracket,
    "basename": builtins.basename, "dirname": builtins.dirname,
    # files
    "ls": ls, "cat": files.cat, "touch": files.touch, "mkdir": files.mkdir,
    "rmdir": files.rmdir, "rm": files.rm, "ln": files.ln, "readlink": files.readlink,
    "mknod": files.mknod, "truncate": files.truncate, "cp": copy.cp, "mv": copy.mv,
    # attributes
    "chmod": attrs.chmod, "chown": attrs.chown, "chgrp": attrs.chgrp, "stat": attrs.stat,
    "getfattr": xattr.getfattr, "setfattr": xattr.setfattr,
    # walkers and text
    "find": walk.find, "du": walk.du, "tree": walk.tree, "grep": text.grep,
    "head": text.head, "tail": text.tail, "wc": text.wc, "sort": text.sort,
    # mounts
    "mount": mountcmd.mount, "umount": mountcmd.umount,
}  # fmt: skip

USAGE: dict[str, str] = {
    "ls": "Usage: ls [-aAdilnRr1hFtSUs] [--full-time] [FILE]...",
    "cat": "Usage: cat [FILE]...",
    "touch": "Usage: touch [-ch] FILE...",
    "mkdir": "Usage: mkdir [-pv] [-m MODE] DIRECTORY...",
    "rmdir": "Usage: rmdir [-p] DIRECTORY...",
    "rm": "Usage: rm [-rfdv] [FILE]...",
    "ln": "Usage: ln [-sfnTv] TARGET LINK_NAME\n  or:  ln [-sfnv] TARGET... DIRECTORY",
    "readlink": "Usage: readlink [-fenv] FILE...",
    "mknod": "Usage: mknod [-m MODE] NAME TYPE [MAJOR MINOR]",
    "truncate": "Usage: truncate [-c] -s SIZE FILE...\n  or:  truncate [-c] -r RFILE FILE...",
    "cp": "Usage: cp [-aprRdLPHfnvT] SOURCE DEST\n  or:  cp [OPTION]... SOURCE... DIRECTORY\n"
          "  or:  cp [OPTION]... -t DIRECTORY SOURCE...",
    "mv": "Usage: mv [-fnvT] SOURCE DEST\n  or:  mv [OPTION]... SOURCE... DIRECTORY\n"
          "  or:  mv [OPTION]... -t DIRECTORY SOURCE...",
    "chmod": "Usage: chmod [-R] MODE[,MODE]... FILE...\n  or:  chmod [-R] OCTAL-MODE FILE...",
    "chown": "Usage: chown [-Rh] [OWNER][:[GROUP]] FILE...",
    "chgrp": "Usage: chgrp [-Rh] GROUP FILE...",
    "stat": "Usage: stat [-L] [-c FORMAT | --printf FORMAT] FILE...",
    "find": "Usage: find [path...] [-maxdepth N] [-mindepth N] [expression]\n"
            "  tests: -name -iname -path -type -empty -inum -links -newer; "
            "actions: -print -print0",
    "du": "Usage: du [-ashbck] [-d N] [FILE]...",
    "tree": "Usage: tree [-adfF] [-L level] [--noreport] [directory ...]",
    "grep": "Usage: grep [-EFivcnlLqhHwxo] [-e PATTERN] PATTERNS [FILE]...",
    "head": "Usage: head [-n [-]NUM] [-c [-]NUM] [FILE]...",
    "tail": "Usage: tail [-n [+]NUM] [FILE]...",
    "wc": "Usage: wc [-lwcm] [FILE]...",
    "sort": "Usage: sort [-rnu] [-t SEP] [-k FIELD] [FILE]...",
    "mount": "Usage: mount [-t TYPE] [-o OPTIONS] SOURCE DIRECTORY\n       mount [-t TYPE]",
    "umount": "Usage: umount DIRECTORY...",
}

USAGE_STATUS: dict[str, int] = {"ls": 2, "grep": 2, "test": 2, "[": 2, "find": 1, "mount": 1,
                                "umount": 1, "printf": 1}  # fmt: skip
