#!/bin/sh
# pre-mount hook: udev has settled; save the dump (the script reboots, halts or powers off)
if [ -e /proc/vmcore ]; then
    /bin/sh /sbin/kdump-capture
fi
