#!/usr/bin/python3
"""build.py RAW OUT [SET]: rebuilds the development set (or the set in folder SET, for example
dev/real/heldout) from its sources, as its SOURCES.md describes.

RAW holds each source file as it is in its repository at the commit SOURCES.md names (for
example `git --git-dir=REPO.git show COMMIT:PATH > RAW/parts_p01.jpg.png`), named after the
file it becomes with `/` as `_` and the source's extension appended. Each is read with EXIF
orientation applied (grey and RGBA become 3-channel), cropped and resized (INTER_AREA) to the
sizes SOURCES.md states, checked against the stated source size, and written as JPEG q90 to
OUT/gauges or OUT/parts. truth.json, README.md and SOURCES.md are copied next to them."""
import os, re, shutil, sys
import cv2

raw, out = sys.argv[1], sys.argv[2]
HERE = sys.argv[3] if len(sys.argv) > 3 else os.path.dirname(os.path.abspath(__file__))
row = re.compile(r'\| ((?:gauges|parts)/\w+\.jpg) \| https://github.com/[^|]*?\.(\w+) \|[^|]*\| (.*?) \|$')
for line in open(os.path.join(HERE, "SOURCES.md")):
    m = row.match(line.strip())
    if not m:
        continue
    name, ext, change = m.groups()
    img = cv2.imread(os.path.join(raw, name.replace("/", "_") + "." + ext), cv2.IMREAD_COLOR)
    if img is None:
        sys.exit("missing or unreadable source of " + name)
    h0, w0 = img.shape[:2]
    crop = re.search(r'cropped x=(\d+),y=(\d+),w=h=(\d+) from (\d+)x(\d+)', change)
    cut = re.search(r'cropped x=(\d+),y=(\d+),w=(\d+),h=(\d+) from (\d+)x(\d+)', change)
    resized = re.search(r'resized (\d+)x(\d+)(?: PNG)? -> (\d+)x(\d+)', change)
    if crop:
        x, y, s, w, h = map(int, crop.groups())
        img = img[y:y + s, x:x + s]
        tw, th = map(int, re.search(r'resized to (\d+)x(\d+)', change).groups())
    elif cut:  # a crop kept at its size
        x, y, tw, th, w, h = map(int, cut.groups())
        img = img[y:y + th, x:x + tw]
    elif resized:
        w, h, tw, th = map(int, resized.groups())
    else:
        kept = re.search(r'\((\d+)x(\d+)', change)
        w, h = tw, th = (int(kept.group(1)), int(kept.group(2))) if kept else (w0, h0)
    if (w0, h0) != (w, h):
        sys.exit("%s: source is %dx%d, SOURCES.md says %dx%d" % (name, w0, h0, w, h))
    if (img.shape[1], img.shape[0]) != (tw, th):
        img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
    os.makedirs(os.path.join(out, os.path.dirname(name)), exist_ok=True)
    cv2.imwrite(os.path.join(out, name), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(name, "%dx%d -> %dx%d" % (w0, h0, tw, th))
for f in ("truth.json", "README.md", "SOURCES.md"):
    # building in place (OUT is the set's own folder) leaves them where they are
    dest = os.path.join(out, f)
    if not (os.path.exists(dest) and os.path.samefile(os.path.join(HERE, f), dest)):
        shutil.copy(os.path.join(HERE, f), out)
