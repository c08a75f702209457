#!/usr/bin/env python3
"""The device programs attached to a cgroup v2 directory, as JSON, in attach order: [{"id": N, "name": "...",
"multi": true}] (multi: attached with BPF_F_ALLOW_MULTI).

What `bpftool cgroup show DIR` lists for the cgroup_device attach type, through bpf(2) itself (BPF_PROG_QUERY,
then BPF_PROG_GET_FD_BY_ID and BPF_OBJ_GET_INFO_BY_FD for each name), so that the tests need no bpftool: the
test guest has python3 but no bpftool. x86_64 only, as pocrun.

usage: device_programs.py CGROUP-DIR
"""
import ctypes
import json
import os
import struct
import sys

SYS_BPF = 321
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
ATTR_SIZE = 128
PROG_INFO_SIZE = 256  # struct bpf_prog_info is shorter; the kernel fills what it has
NAME_OFFSET = 64  # bpf_prog_info.name[16]

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd, attr):
    r = libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_long(cmd), attr, ctypes.c_long(ATTR_SIZE))
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return r


def query(dir_fd):
    ids = (ctypes.c_uint32 * 64)()
    attr = ctypes.create_string_buffer(ATTR_SIZE)
    struct.pack_into("<IIII", attr, 0, dir_fd, BPF_CGROUP_DEVICE, 0, 0)
    struct.pack_into("<QI", attr, 16, ctypes.addressof(ids), len(ids))
    bpf(BPF_PROG_QUERY, attr)
    flags, = struct.unpack_from("<I", attr, 12)
    count, = struct.unpack_from("<I", attr, 24)
    return list(ids[:count]), bool(flags & BPF_F_ALLOW_MULTI)


def name(prog_id):
    attr = ctypes.create_string_buffer(ATTR_SIZE)
    struct.pack_into("<I", attr, 0, prog_id)
    fd = bpf(BPF_PROG_GET_FD_BY_ID, attr)
    try:
        info = ctypes.create_string_buffer(PROG_INFO_SIZE)
        attr = ctypes.create_string_buffer(ATTR_SIZE)
        struct.pack_into("<IIQ", attr, 0, fd, PROG_INFO_SIZE, ctypes.addressof(info))
        bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
        return info.raw[NAME_OFFSET:NAME_OFFSET + 16].split(b"\0")[0].decode()
    finally:
        os.close(fd)


def main():
    fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
    try:
        ids, multi = query(fd)
        print(json.dumps([{"id": i, "name": name(i), "multi": multi} for i in ids]))
    finally:
        os.close(fd)


main()
