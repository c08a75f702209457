#!/usr/bin/env python3
"""The admission slots of a pocrun root (src/native/front/admission.c), seen from outside.

  slots.py hold ROOT N...   takes the OFD locks on bytes N... of ROOT/.create-slots (non-blocking), prints
                            "held" and keeps them until stdin closes; exits 1 if one is taken already
  slots.py free ROOT COUNT  prints how many of slots 0..COUNT-1 are free now
"""
import fcntl
import os
import struct
import sys

F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)


def try_lock(fd, slot):
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)
    lk = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, slot, 1, 0)
    try:
        fcntl.fcntl(fd, F_OFD_SETLK, lk)
        return True
    except OSError:
        return False


def main():
    mode, root = sys.argv[1], sys.argv[2]
    os.makedirs(root, exist_ok=True)
    fd = os.open(os.path.join(root, ".create-slots"), os.O_RDWR | os.O_CREAT, 0o600)
    if mode == "hold":
        for slot in map(int, sys.argv[3:]):
            if not try_lock(fd, slot):
                print(f"slot {slot} is taken", flush=True)
                sys.exit(1)
        print("held", flush=True)
        sys.stdin.read()
    elif mode == "free":
        # A second open file: its locks conflict with every other holder's, and are dropped at exit.
        print(sum(try_lock(fd, slot) for slot in range(int(sys.argv[3]))))


main()
