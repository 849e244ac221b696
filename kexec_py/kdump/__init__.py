"""The kdump service, first-kernel side: kdump.conf and sysconfig, crashkernel=, the
capture plan, boot entry edits and the kdumpctl verbs (RHEL kdump-utils compatible)."""
