#!/bin/sh
# usage: rootfs.sh CACHE_DIR
#
# Prints the path of a tarball of a bootable Debian 12 system for the booted-package test:
# systemd as PID 1, postgrey, Postfix delivering locally, bsd-mailx to read root's mail,
# nagios4-core (the `nagios` user a monitoring plugin runs as) and python3 (the policy-request
# driver). The tarball is made once with mmdebstrap and kept in CACHE_DIR under a name keyed by
# this script and the host's apt sources, so a changed package list or mirror makes a new one
# and a rerun on the same machine takes seconds. The apt sources are the host's own.
set -eu
CACHE=${1:?usage: rootfs.sh CACHE_DIR}
SOURCES=/etc/apt/sources.list.d/debian.sources
[ -f "$SOURCES" ] || SOURCES=/etc/apt/sources.list

PACKAGES=systemd,systemd-sysv,dbus,libnss-systemd,postgrey,postfix,bsd-mailx,python3,nagios4-core,iproute2,procps

KEY=$( (cat "$0" "$SOURCES"; echo "$PACKAGES") | sha256sum | cut -c1-16)
TARBALL="$CACHE/bookworm-$KEY.tar"
mkdir -p "$CACHE"
# One builder at a time; a second caller waits and then finds the tarball.
exec 9>"$CACHE/.lock"
flock 9
if [ ! -s "$TARBALL" ]; then
	# Postfix asks on installation: "Local only" delivers to local mailboxes and listens on
	# loopback only; the mail name is the host's FQDN (/etc/hosts below).
	mmdebstrap --quiet --variant=important --format=tar --include="$PACKAGES" \
		--essential-hook='printf "%s\n" "postfix postfix/main_mailer_type select Local only" "postfix postfix/mailname string mx.pga-test.example" | chroot "$1" debconf-set-selections' \
		--customize-hook='echo mx > "$1/etc/hostname"' \
		--customize-hook='printf "127.0.0.1 localhost\n127.0.1.1 mx.pga-test.example mx\n::1 localhost\n" > "$1/etc/hosts"' \
		--customize-hook='rm -f "$1/etc/machine-id"; : > "$1/etc/machine-id"' \
		bookworm "$TARBALL.partial" "$SOURCES" >&2
	mv "$TARBALL.partial" "$TARBALL"
fi
echo "$TARBALL"
