#!/bin/sh
# cmdline hook: in a capture kernel the initramfs mounts no root file system of its own;
# the capture script (pre-mount hook) mounts the dump target and ends with final_action.
if [ -e /proc/vmcore ]; then
    root=kdump
    rootok=1
fi
