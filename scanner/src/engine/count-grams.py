#!/usr/bin/env python3
"""Counts the commonest four-byte grams of source code, for common-grams.txt.

    count-grams.py N SOURCE... > common-grams.txt

SOURCE is EXT:MB:DIR — files ending in EXT under DIR (a .zip is read as an archive), walked in
sorted order until MB megabytes are read, so that no one language outweighs the others. Text is
lowercased; a gram counts when all its bytes are letters, digits or one of ` _.-:/=`. Prints the
N commonest, commonest first, one a line, `~` standing for a space.

The keyword pass only takes its anchors' choice from this list (see keywords.rs), never what it
finds: a gram missing from it costs time, not findings. The list in the repository was made with
languages and files other than those the scanner's benchmark reads (bench/scan.sh: the cargo
registry's crates), from what a Debian machine with Python, Perl and Node.js carries:

    count-grams.py 20000 py:12:$PYTHON_LIB h:12:/usr/include pm:6:/usr/share/perl \\
        js:8:/usr/lib/node_modules rs:4:agent/src rs:4:scanner/src \\
        rs:2:src yaml:1:deploy toml:1:config md:2:docs
"""
import collections
import os
import sys
import zipfile

ALLOWED = set(b"abcdefghijklmnopqrstuvwxyz0123456789 _.-:/=")


def texts(ext, limit, root):
    """The contents of files ending in `.ext` under root, up to `limit` bytes in all."""
    total = 0
    if root.endswith(".zip"):
        with zipfile.ZipFile(root) as z:
            for name in sorted(z.namelist()):
                if name.endswith("." + ext) and total < limit:
                    data = z.read(name)
                    total += len(data)
                    yield data
        return
    for d, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            if not name.endswith("." + ext) or total >= limit:
                continue
            try:
                with open(os.path.join(d, name), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            total += len(data)
            yield data


def main():
    n, sources = int(sys.argv[1]), sys.argv[2:]
    counts = collections.Counter()
    for source in sources:
        ext, mb, root = source.split(":", 2)
        for data in texts(ext, int(mb) * 1_000_000, root):
            data = data.lower()
            counts.update(
                data[i : i + 4]
                for i in range(len(data) - 3)
                if data[i] in ALLOWED and data[i + 1] in ALLOWED and data[i + 2] in ALLOWED and data[i + 3] in ALLOWED
            )
    for gram, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]:
        print(gram.decode().replace(" ", "~"))


if __name__ == "__main__":
    main()
