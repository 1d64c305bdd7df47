#!/bin/sh
# mkbase.sh DIR [BUSYBOX]: a tiny root filesystem from Debian's static busybox, the base
# image of kiln's tests and demo (the same one ../shared/bench uses). BUSYBOX is
# another busybox binary (another architecture's); its applets are the host's.
set -eu
b=$1
mkdir -p "$b/bin" "$b/etc" "$b/tmp" "$b/root" "$b/home/app" "$b/usr/bin" "$b/var" "$b/proc" "$b/sys" "$b/dev"
cp "${2:-/bin/busybox}" "$b/bin/busybox"
for c in $(/bin/busybox --list); do [ "$c" = busybox ] || ln -sf busybox "$b/bin/$c"; done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nodd:x:1001:1002:odd:/home/odd:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$b/etc/passwd"
printf 'root:x:0:\napp:x:1000:\nstaff:x:50:app\noddgrp:x:1002:\nnogroup:x:65534:\n' > "$b/etc/group"
chown 1000:1000 "$b/home/app"
chmod 1777 "$b/tmp"
