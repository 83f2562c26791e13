#!/bin/sh
# A two-way probe in the spirit of the nlXTP paper's experiment 4.3.3: the
# archive carries a question (request.txt: one program per line), the
# guest answers without touching its network. The custom status is one
# line a controlling program parses (os, arch, package manager, how many
# of the requested programs are missing); answer.txt, downloaded with the
# archive, says for each one "found" (with where, as `command -v` puts
# it) or "missing".
os=unknown
if [ -r /etc/os-release ]; then
    . /etc/os-release
    os="${ID:-unknown}-${VERSION_ID:-unknown}"
elif command -v busybox >/dev/null 2>&1; then
    os="busybox-$(busybox 2>&1 | head -n 1 | sed -n 's/^BusyBox v\([0-9.]*\).*/\1/p')"
fi
arch=$(uname -m)
pm=none
for candidate in apt-get dnf yum apk opkg; do
    if command -v "$candidate" >/dev/null 2>&1; then pm=$candidate; break; fi
done
missing=0
: > answer.txt
while read -r program; do
    [ -n "$program" ] || continue
    if where=$(command -v "$program" 2>/dev/null); then
        echo "$program found $where" >> answer.txt
    else
        echo "$program missing" >> answer.txt
        missing=$((missing + 1))
    fi
done < request.txt
archive_setstatus "os=$os arch=$arch pm=$pm missing=$missing"
echo "probed $(wc -l < answer.txt) programs, $missing missing"
