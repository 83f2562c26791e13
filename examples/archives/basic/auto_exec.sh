#!/bin/sh
# The nlXTP paper's experiment 4.3.1 (basic output functions): sleep for a
# second, set a custom status, write a file into the archive directory,
# print to standard output. Runs in /mnt/nlXTP; exec_status/out gets the
# output.
sleep 1
archive_setstatus "basic archive: custom status set"
echo "written by the archive" > "$nlxtp_dir/written.txt"
echo "hello from the executable archive"
