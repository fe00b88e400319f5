#!/usr/bin/python3
# Splits one root filesystem tar into N layer tars of about equal data size,
# in archive order (so parents come before children and a hardlink's target
# is in the same or an earlier layer), plus a small top layer the way an
# application image has one: a whiteout, an opaque directory, new files.
# Entries are copied as they are (owners, modes, devices, pax xattrs).
#   bench/split-layers.py <rootfs.tar> <out-prefix> <n>
# Writes <out-prefix>1.tar .. <out-prefix><n+1>.tar. Used by bench/pull.sh.
import io
import sys
import tarfile

src, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with tarfile.open(src) as t:
    members = t.getmembers()
    total = sum(m.size for m in members if m.isfile())
    per = total / n
    done, idx, out = 0, 1, None
    for m in members:
        if out is None or (done >= per * idx and idx < n):
            if out is not None:
                out.close()
                idx += 1
            out = tarfile.open(f"{prefix}{idx}.tar", "w", format=tarfile.PAX_FORMAT)
        out.addfile(m, t.extractfile(m) if m.isfile() else None)
        if m.isfile():
            done += m.size
    out.close()

top = tarfile.open(f"{prefix}{n + 1}.tar", "w", format=tarfile.PAX_FORMAT)


def add(name, data=b"", mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), mode, 1700000000
    top.addfile(ti, io.BytesIO(data))


add("./usr/share/doc/.wh..wh..opq")  # an opaque directory: lower docs hidden
add("./usr/share/doc/README", b"docs removed in the app layer\n")
add("./etc/.wh.motd")  # a whiteout
for i in range(200):
    add(f"./srv/app/file{i:03}", b"x" * (i * 97))
top.close()
