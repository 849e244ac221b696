#!/bin/sh
# kexec-py's capture script: runs in the capture kernel's initramfs and saves /proc/vmcore
# where the plan says. The plan (/etc/kdump/plan.env) was resolved from kdump.conf in the
# first kernel by mkdumprd: nothing here parses a configuration file.
#
# Order: kdump_pre, pre.d; mount the target; vmcore-dmesg.txt; the collector into
# vmcore-incomplete, sync, rename; the result record; post.d, kdump_post with the
# collector's status; kexec-dmesg.log; final_action. On a failure: kdump_emergency,
# emergency.d, then failure_action.
#
# Every path and command below can be pointed elsewhere through the environment, so the
# script can be run against a saved vmcore in a temporary directory.

PLAN=${KDUMP_PLAN:-/etc/kdump/plan.env}
VMCORE=${KDUMP_VMCORE:-/proc/vmcore}
CMDLINE_FILE=${KDUMP_CMDLINE_FILE:-/proc/cmdline}
KMSG=${KDUMP_KMSG:-/dev/kmsg}
MOUNT_BASE=${KDUMP_MOUNT_BASE:-/kdumproot}
DEVICE_WAIT=${KDUMP_DEVICE_WAIT:-}
# KDUMP_ACTION_LOG=FILE: write the reboot/halt/poweroff/shell action there instead

# shellcheck disable=SC1090
. "$PLAN" || { echo "kdump: cannot read $PLAN" >&2; exit 1; }

log() {
    echo "kdump: $*" >&2
    [ -w "$KMSG" ] && echo "kdump: $*" > "$KMSG" 2>/dev/null
    return 0
}

now() { date +%s 2>/dev/null || echo 0; }
START=$(now)

# --- small helpers ---------------------------------------------------------------------

json_str() {
    # a JSON string literal for $1 (backslash, quote and control characters escaped)
    _s=$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' | tr -d '\n\r')
    printf '"%s"' "$_s"
}

run_hook() {
    # run_hook FILE [ARG]: an executable hook; returns its status
    [ -n "$1" ] || return 0
    if [ ! -x "$1" ]; then
        log "hook $1 is missing or not executable"
        return 1
    fi
    "$@"
}

run_hook_dir() {
    # every executable of a hook directory (listed in the plan), in order; ARG passed on
    _list=$1; shift
    for _h in $_list; do
        [ -x "$_h" ] || continue
        "$_h" "$@" || log "hook $_h exited $?"
    done
    return 0
}

wait_for_device() {
    # wait_for_device SPEC -> prints the device node (LABEL=, UUID=, PARTUUID=, node)
    _spec=$1 _i=0
    while [ "$_i" -le "$DEVICE_WAIT" ]; do
        case "$_spec" in
            LABEL=*) _dev=/dev/disk/by-label/${_spec#LABEL=} ;;
            UUID=*) _dev=/dev/disk/by-uuid/${_spec#UUID=} ;;
            PARTUUID=*) _dev=/dev/disk/by-partuuid/${_spec#PARTUUID=} ;;
            PARTLABEL=*) _dev=/dev/disk/by-partlabel/${_spec#PARTLABEL=} ;;
            *) _dev=$_spec ;;
        esac
        if [ -b "$_dev" ] || [ -f "$_dev" ]; then
            echo "$_dev"
            return 0
        fi
        # no udev (kexec-py's own init) means no /dev/disk links: blkid probes the disks
        # on every round; with udev once, in case its links are not there for this one
        if { [ "$_i" -eq 0 ] || [ ! -d /dev/disk ]; } && command -v blkid >/dev/null 2>&1; then
            _found=$(blkid -c /dev/null -l -o device -t "$_spec" 2>/dev/null)
            [ -n "$_found" ] && { echo "$_found"; return 0; }
        fi
        command -v udevadm >/dev/null 2>&1 && udevadm settle --timeout=1 2>/dev/null
        sleep 1
        _i=$((_i + 1))
    done
    return 1
}

mount_fs() {
    # mount_fs SPEC FSTYPE OPTIONS MOUNTPOINT
    mkdir -p "$4" || return 1
    if [ -n "$KDUMP_NO_MOUNT" ]; then
        return 0
    fi
    case "$2" in
        nfs|nfs4)
            mount -t "$2" -o "${3:-defaults}" "$1" "$4"
            return $?
            ;;
    esac
    _dev=$(wait_for_device "$1") || { log "device $1 did not appear in ${DEVICE_WAIT}s"; return 1; }
    _opts=$(echo "${3:-defaults}" | sed -e 's/\(^\|,\)ro\(,\|$\)/\1rw\2/' -e 's/,\?\(noauto\|nofail\)//g')
    [ -n "$_opts" ] || _opts=defaults
    mount -t "$2" -o "$_opts" "$_dev" "$4"
}

source_ip() {
    # the address the dump is sent from: 127.0.0.1 locally, the route's source otherwise
    case "$KDUMP_TARGET_KIND" in
        nfs|ssh)
            _ip=$(ip -o route get "${KDUMP_TARGET_IP:-$KDUMP_TARGET_HOST}" 2>/dev/null |
                sed -n 's/.* src \([^ ]*\).*/\1/p')
            [ -n "$_ip" ] || _ip=${KDUMP_NET_ADDR%/*}
            echo "${_ip:-unknown}"
            ;;
        *) echo 127.0.0.1 ;;
    esac
}

cmdline_value() {
    # cmdline_value NAME: the value of the last NAME= on the capture kernel's command line
    _v=
    for _w in $(cat "$CMDLINE_FILE" 2>/dev/null); do
        case "$_w" in "$1"=*) _v=${_w#"$1"=} ;; esac
    done
    echo "$_v"
}

test_id() { cmdline_value kdump_test_id; }

device_wait() {
    # seconds to wait for a disk or the network: rd.timeout= (dracut's device timeout)
    # when the capture command line sets it, else 90 (systemd's default device timeout)
    _t=$(cmdline_value rd.timeout)
    case "$_t" in
        ''|*[!0-9]*) echo 90 ;;
        *) echo "$_t" ;;
    esac
}

threads_option() {
    _n=$(grep -c '^processor' /proc/cpuinfo 2>/dev/null)
    [ "${_n:-1}" -gt 1 ] && echo "--num-threads=$_n"
    return 0
}

# --- network (ssh and nfs targets) -------------------------------------------------------

net_up() {
    # bring up the interface the first kernel reached the target through: found by its
    # MAC address, given the first kernel's address and, when there was one, gateway
    [ -n "$KDUMP_NET_MAC" ] || return 0
    _i=0 IFACE=
    while [ -z "$IFACE" ] && [ "$_i" -le "$DEVICE_WAIT" ]; do
        for _d in /sys/class/net/*; do
            [ "$(cat "$_d/address" 2>/dev/null)" = "$KDUMP_NET_MAC" ] && IFACE=${_d##*/}
        done
        [ -n "$IFACE" ] && break
        sleep 1
        _i=$((_i + 1))
    done
    [ -n "$IFACE" ] || { log "no network interface with address $KDUMP_NET_MAC"; return 1; }
    ip link set lo up 2>/dev/null
    ip link set "$IFACE" up || return 1
    ip addr add "$KDUMP_NET_ADDR" dev "$IFACE" 2>/dev/null
    if [ -n "$KDUMP_NET_GW" ]; then
        ip route add default via "$KDUMP_NET_GW" dev "$IFACE" 2>/dev/null
    fi
    _i=0
    while [ "$_i" -le "$DEVICE_WAIT" ]; do
        ip route get "$KDUMP_TARGET_IP" >/dev/null 2>&1 && return 0
        sleep 1
        _i=$((_i + 1))
    done
    log "no route to $KDUMP_TARGET_IP"
    return 1
}

net_diagnostics() {
    # what the network looked like when the target could not be reached, for the log
    log "network: $(ip -o addr 2>&1 | tr '\n' ';')"
    log "routes: $(ip route 2>&1 | tr '\n' ';')"
    ssh -v -i "$KDUMP_SSHKEY" -o BatchMode=yes -o StrictHostKeyChecking=yes \
        -o ConnectTimeout=10 ${KDUMP_SSH_OPTS} "$KDUMP_TARGET_SPEC" true 2>&1 |
        tail -n 8 | while read -r _l; do log "ssh: $_l"; done
}

ssh_run() {
    # ssh_run COMMAND: run COMMAND on the ssh target with the plan's key
    ssh -q -i "$KDUMP_SSHKEY" -o BatchMode=yes -o StrictHostKeyChecking=yes \
        -o ConnectTimeout=20 -o ServerAliveInterval=15 ${KDUMP_SSH_OPTS} \
        "$KDUMP_TARGET_SPEC" "$1"
}

save_ssh() {
    # dmesg and the flattened dump streamed to USER@HOST:PATH/<ip>-<date>/
    if [ -n "$TEST_ID" ]; then
        DUMPDIR=$KDUMP_PATH/kdump-test-$TEST_ID
    else
        DUMPDIR=$KDUMP_PATH/$(source_ip)-$STAMP
    fi
    LOCATION=$DUMPDIR
    _try=1
    until ssh_run "mkdir -p '$DUMPDIR'"; do
        if [ "$_try" -ge "${KDUMP_SSH_TRIES:-6}" ]; then
            net_diagnostics
            SAVE_ERR="ssh $KDUMP_TARGET_SPEC: cannot create $DUMPDIR"
            return 1
        fi
        log "ssh $KDUMP_TARGET_SPEC not reachable yet (try $_try); retrying"
        _try=$((_try + 1))
        sleep 5
    done
    write_result started "the capture kernel started this dump and did not finish it"
    if vmcore-dmesg "$VMCORE" 2>/dev/null |
            ssh_run "umask 0077; dd of='$DUMPDIR/vmcore-dmesg-incomplete.txt' 2>/dev/null"; then
        ssh_run "mv '$DUMPDIR/vmcore-dmesg-incomplete.txt' '$DUMPDIR/vmcore-dmesg.txt'"
    fi
    _rcfile=/tmp/kdump-collector.rc _msgs=/tmp/kdump-collector.log
    # shellcheck disable=SC2086
    { vmcore-copy $KDUMP_COLLECTOR_OPTS --json "$VMCORE" 2> "$_msgs"; echo $? > "$_rcfile"; } |
        ssh_run "umask 0077; dd of='$DUMPDIR/vmcore-incomplete' bs=1M 2>/dev/null"
    _sshrc=$?
    COLLECTOR_STATUS=$(cat "$_rcfile" 2>/dev/null || echo 1)
    stats_from "$_msgs"
    if [ "$COLLECTOR_STATUS" -ne 0 ] || [ "$_sshrc" -ne 0 ]; then
        SAVE_ERR="vmcore-copy exited $COLLECTOR_STATUS, ssh $_sshrc: $LASTMSG"
        [ "$COLLECTOR_STATUS" -eq 2 ] && INCOMPLETE=1
        return 1
    fi
    ssh_run "mv '$DUMPDIR/vmcore-incomplete' '$DUMPDIR/vmcore.flat'" ||
        { SAVE_ERR="ssh: cannot rename the dump"; return 1; }
    return 0
}

save_raw() {
    # the flattened dump written over the raw device (no dmesg file); the next
    # `kdumpctl start` in the first kernel rebuilds <path>/<date>/vmcore from it
    _dev=$(wait_for_device "$KDUMP_TARGET_SPEC") || { SAVE_ERR="raw device $KDUMP_TARGET_SPEC did not appear"; return 1; }
    LOCATION=$_dev
    _rcfile=/tmp/kdump-collector.rc _msgs=/tmp/kdump-collector.log
    # shellcheck disable=SC2086
    { vmcore-copy $KDUMP_COLLECTOR_OPTS --json "$VMCORE" 2> "$_msgs"; echo $? > "$_rcfile"; } |
        dd of="$_dev" bs=512 conv=fsync 2>/dev/null
    _ddrc=$?
    COLLECTOR_STATUS=$(cat "$_rcfile" 2>/dev/null || echo 1)
    stats_from "$_msgs"
    sync
    if [ "$COLLECTOR_STATUS" -ne 0 ] || [ "$_ddrc" -ne 0 ]; then
        SAVE_ERR="vmcore-copy exited $COLLECTOR_STATUS, dd $_ddrc: $LASTMSG"
        [ "$COLLECTOR_STATUS" -eq 2 ] && INCOMPLETE=1
        return 1
    fi
    return 0
}

last_words() {
    # the collector's last two messages (on a failure: the error, then the summary), not
    # its JSON statistics nor its progress lines
    grep -v -e '^{' -e '^$' -e ' [0-9]*% ' "$1" 2>/dev/null | tail -n 2 |
        sed -e ':a' -e 'N' -e '$!ba' -e 's/\n/; /g'
}

stats_from() {
    # vmcore-copy -F prints its --json statistics on standard error, with its messages
    STATS_JSON=$(grep '^{' "$1" 2>/dev/null | tail -n 1)
    PAGES=$(echo "$STATS_JSON" | sed -n 's/.*"pages_written": \([0-9]*\).*/\1/p')
    BYTES=$(echo "$STATS_JSON" | sed -n 's/.*"file_size": \([0-9]*\).*/\1/p')
    LASTMSG=$(last_words "$1")
    grep -v '^{' "$1" >&2 2>/dev/null
}

# --- the result record ------------------------------------------------------------------

write_result() {
    # write_result STATUS MESSAGE: DIR/kdump-result.json, and the root file system's
    # /var/lib/kdump/last-dump.json when it can be reached
    _status=$1 _msg=$2
    _stats=${STATS_JSON:-null}
    [ -n "$_stats" ] || _stats=null
    _rec="{\"status\": $(json_str "$_status"), \"target\": $(json_str "$KDUMP_TARGET_WORDS"),"
    _rec="$_rec \"location\": $(json_str "$LOCATION"), \"dump_level\": ${KDUMP_DUMP_LEVEL:-null},"
    _rec="$_rec \"pages\": ${PAGES:-null}, \"bytes\": ${BYTES:-null},"
    _rec="$_rec \"seconds\": $(( $(now) - START )), \"time\": $(json_str "$STAMP"),"
    _rec="$_rec \"fallback\": ${FALLBACK:-false}, \"test_id\": $(json_str "$TEST_ID"),"
    _rec="$_rec \"collector\": $(json_str "$KDUMP_COLLECTOR $KDUMP_COLLECTOR_OPTS"),"
    _rec="$_rec \"message\": $(json_str "$_msg"), \"stats\": $_stats}"
    if [ "$KDUMP_TARGET_KIND" = ssh ] && [ -n "$DUMPDIR" ] && [ -z "$FALLBACK" ]; then
        printf '%s\n' "$_rec" | ssh_run "cat > '$DUMPDIR/kdump-result.json'" 2>/dev/null
        [ -n "$TEST_ID" ] && { [ "$_status" = success ] && echo success || echo fail; } |
            ssh_run "cat > '$DUMPDIR/vmcore-creation.status'" 2>/dev/null
    elif [ -n "$DUMPDIR" ] && [ -d "$DUMPDIR" ]; then
        # one 4 KiB block, padded with spaces (JSON allows them), rewritten in place: the
        # "started" record takes the block before the collector runs, so the final record
        # still fits when the collector has filled the disk
        printf '%-4095s\n' "$_rec" 1<> "$DUMPDIR/kdump-result.json"
        [ -n "$TEST_ID" ] && { [ "$_status" = success ] && echo success || echo fail; } \
            > "$DUMPDIR/vmcore-creation.status"
    fi
    mount_rootfs
    _root=$ROOTFS_DIR
    _lib=$_root/var/lib/kdump
    if [ -n "$_root" ] && mkdir -p "$_lib" 2>/dev/null; then
        printf '%s\n' "$_rec" > "$_lib/last-dump.json.tmp" &&
            mv -f "$_lib/last-dump.json.tmp" "$_lib/last-dump.json"
    fi
    sync
}

ROOTFS_MNT= ROOTFS_DIR=
mount_rootfs() {
    # the root file system, mounted once on demand: sets ROOTFS_DIR (empty when it cannot
    # be mounted). Call it directly, never in $(...): the mount would be remembered only
    # by the subshell, and the next call would mount the same device again and fail.
    if [ -z "$ROOTFS_MNT" ]; then
        if [ "$KDUMP_TARGET_KIND" = rootfs ] && [ -n "$TARGET_MNT" ]; then
            ROOTFS_MNT=$TARGET_MNT
        elif [ -n "$KDUMP_ROOT_SPEC" ] && mount_fs "$KDUMP_ROOT_SPEC" "$KDUMP_ROOT_FSTYPE" \
                "$KDUMP_ROOT_OPTIONS" "$MOUNT_BASE-rootfs" 2>/dev/null; then
            ROOTFS_MNT=$MOUNT_BASE-rootfs
        else
            ROOTFS_MNT=-
        fi
    fi
    ROOTFS_DIR=
    [ "$ROOTFS_MNT" = - ] || ROOTFS_DIR=$ROOTFS_MNT
    return 0
}

# --- actions ----------------------------------------------------------------------------

do_action() {
    sync
    if [ -n "$KDUMP_ACTION_LOG" ]; then
        # a dry run of the actions (tests): say which one, do nothing
        echo "$1" >> "$KDUMP_ACTION_LOG"
        exit 0
    fi
    case "$1" in
        reboot) log "rebooting"; machine reboot b ;;
        halt) log "halting"; machine halt o ;;
        poweroff) log "powering off"; machine poweroff o ;;
        shell)
            log "failure_action shell: a shell on the console; exit it to go on"
            sh -i < /dev/console > /dev/console 2>&1
            do_action "$KDUMP_FINAL_ACTION"
            ;;
        *)
            # dump_to_rootfs has had its go in failed(); never return to dracut's init
            log "rebooting"; machine reboot b ;;
    esac
    exit 0
}

machine() {
    # machine COMMAND SYSRQ: reboot, halt or power off at once (the dump is synced). The
    # shell image leaves out reboot and poweroff (on Debian they are systemctl, 1.3 MB
    # unpacked in the crash kernel's reserve): the kernel's sysrq does it (b reboot,
    # o power off; writes to /proc/sysrq-trigger work whatever kernel.sysrq says).
    if command -v "$1" > /dev/null 2>&1; then
        "$1" -f
    else
        echo "$2" > /proc/sysrq-trigger
    fi
    sleep 30
}

failed() {
    # failed MESSAGE [STATUS]: record (STATUS: failed, or incomplete), emergency hooks,
    # failure_action
    log "dump failed: $1"
    write_result "${2:-failed}" "$1"
    run_hook_dir "$KDUMP_EMERGENCY_D"
    [ -n "$KDUMP_EMERGENCY" ] && run_hook "$KDUMP_EMERGENCY"
    if [ "$KDUMP_FAILURE_ACTION" = dump_to_rootfs ] && [ -z "$FALLBACK" ]; then
        dump_to_rootfs "$1"
    fi
    do_action "$KDUMP_FAILURE_ACTION"
}

dump_to_rootfs() {
    log "failure_action dump_to_rootfs: saving to the root file system instead"
    FALLBACK=true
    mount_rootfs
    _root=$ROOTFS_DIR
    if [ -z "$_root" ]; then
        log "the root file system cannot be mounted either"
        do_action "$KDUMP_FINAL_ACTION"
    fi
    save_to "$_root" "$KDUMP_PATH" && finish success "saved to the root file system after: $1"
    do_action "$KDUMP_FINAL_ACTION"
}

# --- saving -----------------------------------------------------------------------------

save_to() {
    # save_to MOUNTPOINT PATH: dmesg and vmcore into MOUNTPOINT/PATH/<ip>-<date>
    _base=$1$2
    if [ -n "$TEST_ID" ]; then
        DUMPDIR=$_base/kdump-test-$TEST_ID
    else
        DUMPDIR=$_base/$(source_ip)-$STAMP
    fi
    LOCATION=${DUMPDIR#"$1"}
    [ -n "$LOCATION" ] || LOCATION=/
    mkdir -p "$DUMPDIR" || { SAVE_ERR="cannot create $LOCATION"; return 1; }
    STATS_JSON= PAGES= BYTES=
    # a record that says "started" until the end: a capture that dies half-way (power,
    # hang, a second panic) leaves a record that cannot be read as a finished dump, and
    # its block is taken before the collector can fill the disk
    write_result started "the capture kernel started this dump and did not finish it"
    save_dmesg "$DUMPDIR"
    collect "$DUMPDIR/vmcore-incomplete"
    _rc=$?
    COLLECTOR_STATUS=$_rc
    sync
    if [ "$_rc" -eq 0 ]; then
        mv "$DUMPDIR/vmcore-incomplete" "$DUMPDIR/vmcore" || { SAVE_ERR="rename failed"; return 1; }
        sync
        return 0
    fi
    if [ "$_rc" -eq 2 ]; then
        SAVE_ERR="the dump is incomplete (the collector stopped early: $LASTMSG); it stays vmcore-incomplete"
        INCOMPLETE=1
        return 1
    fi
    SAVE_ERR="$KDUMP_COLLECTOR exited $_rc: $LASTMSG"
    return 1
}

save_dmesg() {
    if vmcore-dmesg "$VMCORE" > "$1/vmcore-dmesg-incomplete.txt" 2>"$1/.dmesg-err"; then
        mv "$1/vmcore-dmesg-incomplete.txt" "$1/vmcore-dmesg.txt"
    else
        log "vmcore-dmesg failed: $(tail -n 1 "$1/.dmesg-err"); the dump goes on"
    fi
    rm -f "$1/.dmesg-err"
}

collect() {
    # collect OUTPUT: run the collector; sets STATS_JSON, PAGES, BYTES, LASTMSG
    _out=$1
    _msgs=/tmp/kdump-collector.log    # not on the target: it may be the disk that is full
    case "$KDUMP_COLLECTOR" in
        cp)
            # shellcheck disable=SC2086
            cp $KDUMP_COLLECTOR_OPTS "$VMCORE" "$_out" 2> "$_msgs"; _rc=$?
            ;;
        cat)
            cat "$VMCORE" > "$_out" 2> "$_msgs"; _rc=$?
            ;;
        vmcore-copy)
            # shellcheck disable=SC2086
            STATS_JSON=$(vmcore-copy $KDUMP_COLLECTOR_OPTS $(threads_option) --json "$VMCORE" \
                "$_out" 2> "$_msgs"); _rc=$?
            PAGES=$(echo "$STATS_JSON" | sed -n 's/.*"pages_written": \([0-9]*\).*/\1/p')
            BYTES=$(echo "$STATS_JSON" | sed -n 's/.*"file_size": \([0-9]*\).*/\1/p')
            ;;
        *)
            # shellcheck disable=SC2086
            "$KDUMP_COLLECTOR" $KDUMP_COLLECTOR_OPTS $(threads_option) "$VMCORE" "$_out" \
                2> "$_msgs"; _rc=$?
            ;;
    esac
    LASTMSG=$(last_words "$_msgs")
    cat "$_msgs" >&2 2>/dev/null
    rm -f "$_msgs"
    [ -n "$BYTES" ] || BYTES=$(wc -c < "$_out" 2>/dev/null | tr -d ' ')
    return "$_rc"
}

finish() {
    # finish STATUS MESSAGE: record, post hooks, the capture kernel's log
    write_result "$1" "$2"
    run_hook_dir "$KDUMP_POST_D" "$COLLECTOR_STATUS"
    [ -n "$KDUMP_POST" ] && run_hook "$KDUMP_POST" "$COLLECTOR_STATUS"
    case "$KDUMP_TARGET_KIND" in
        ssh) [ -n "$FALLBACK" ] && dmesg > "$DUMPDIR/kexec-dmesg.log" 2>/dev/null ||
                 dmesg 2>/dev/null | ssh_run "cat > '$DUMPDIR/kexec-dmesg.log'" ;;
        raw) [ -n "$FALLBACK" ] && dmesg > "$DUMPDIR/kexec-dmesg.log" 2>/dev/null ;;
        *) dmesg > "$DUMPDIR/kexec-dmesg.log" 2>/dev/null ;;
    esac
    sync
}

# --- main -------------------------------------------------------------------------------

if [ ! -e "$VMCORE" ]; then
    log "$VMCORE does not exist: this is not a capture kernel; nothing to do"
    exit 0
fi
STAMP=$(date +%Y-%m-%d-%H:%M:%S)
TEST_ID=$(test_id)
[ -n "$DEVICE_WAIT" ] || DEVICE_WAIT=$(device_wait)
DUMPDIR= LOCATION= FALLBACK= STATS_JSON= PAGES= BYTES= COLLECTOR_STATUS=1 INCOMPLETE=
if [ "$KDUMP_TARGET_KIND" = raw ]; then
    log "saving the vmcore to $KDUMP_TARGET_WORDS"
else
    log "saving the vmcore to $KDUMP_TARGET_WORDS:$KDUMP_PATH"
fi

if [ -n "$KDUMP_PRE" ] && ! run_hook "$KDUMP_PRE"; then
    log "kdump_pre $KDUMP_PRE failed: final_action"
    do_action "$KDUMP_FINAL_ACTION"
fi
run_hook_dir "$KDUMP_PRE_D"

case "$KDUMP_TARGET_KIND" in
    rootfs|fs|nfs)
        if [ "$KDUMP_TARGET_KIND" = nfs ]; then
            net_up || failed "the network to $KDUMP_TARGET_SPEC did not come up"
        fi
        TARGET_MNT=$MOUNT_BASE
        if ! mount_fs "$KDUMP_TARGET_SPEC" "$KDUMP_FSTYPE" "$KDUMP_MOUNT_OPTIONS" "$TARGET_MNT"; then
            failed "cannot mount $KDUMP_TARGET_WORDS"
        fi
        if save_to "$TARGET_MNT" "$KDUMP_PATH"; then
            finish success "saved"
        else
            [ -n "$INCOMPLETE" ] && finish incomplete "$SAVE_ERR"
            failed "$SAVE_ERR" "${INCOMPLETE:+incomplete}"
        fi
        ;;
    ssh)
        net_up || failed "the network to $KDUMP_TARGET_SPEC did not come up"
        if save_ssh; then
            finish success "saved"
        else
            [ -n "$INCOMPLETE" ] && finish incomplete "$SAVE_ERR"
            failed "$SAVE_ERR" "${INCOMPLETE:+incomplete}"
        fi
        ;;
    raw)
        if save_raw; then
            write_result success "saved to $LOCATION"
            run_hook_dir "$KDUMP_POST_D" "$COLLECTOR_STATUS"
            [ -n "$KDUMP_POST" ] && run_hook "$KDUMP_POST" "$COLLECTOR_STATUS"
        else
            failed "$SAVE_ERR"
        fi
        ;;
    *)
        failed "unknown dump target kind $KDUMP_TARGET_KIND"
        ;;
esac
if [ "$KDUMP_TARGET_KIND" = raw ]; then
    log "vmcore saved to $KDUMP_TARGET_WORDS (kdumpctl start recovers it)"
else
    log "vmcore saved to $KDUMP_TARGET_WORDS:$LOCATION"
fi
do_action "$KDUMP_FINAL_ACTION"
