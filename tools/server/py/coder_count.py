# --- roilens coder: count (background model, foreground mask, split touching parts, components) ---
OBJECT = str(SPEC.get("object") or "objects")


def background_lab(lab):
    """The tray colour: the median of the image border (parts rarely sit on the very edge),
    blended with the whole-image median."""
    h, w = lab.shape[:2]
    b = max(2, min(h, w) // 40)
    border = np.concatenate([lab[:b].reshape(-1, 3), lab[-b:].reshape(-1, 3),
                             lab[:, :b].reshape(-1, 3), lab[:, -b:].reshape(-1, 3)])
    return np.median(border, axis=0)


def foreground(img):
    sigma = STRATEGY.get("smooth", 1.5)
    blur = cv2.GaussianBlur(img, (0, 0), sigma)
    lab = cv2.cvtColor(blur, cv2.COLOR_BGR2LAB).astype(np.float32)
    bg = background_lab(lab)
    dist = np.linalg.norm(lab - bg, axis=2)
    d8 = np.clip(dist * 2.0, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(d8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    thr = max(float(otsu), STRATEGY.get("min_threshold", 30.0))
    mask = (d8 > thr).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, k)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, k)
    # fill holes (washers, nuts)
    inv = 1 - mask
    n, lbl, stats, _ = cv2.connectedComponentsWithStats(inv, 4)
    h, w = mask.shape
    for i in range(1, n):
        x, y, ww, hh, a = stats[i]
        if x > 0 and y > 0 and x + ww < w and y + hh < h:
            mask[lbl == i] = 1
    return mask


def split_touching(mask, img):
    """Splits lightly touching parts: each part keeps a core where the distance to the background
    is at least CORE of its component's maximum; watershed hands every core its pixels. Narrow
    necks between touching parts fall below the core level, a single part's core stays whole."""
    core_level = STRATEGY.get("core", 0.68)
    dt = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    n, lbl, stats, _ = cv2.connectedComponentsWithStats(mask, 8)
    markers = np.zeros(mask.shape, np.int32)
    next_label = 2
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    typical = float(np.median(areas)) if len(areas) else 0.0
    for i in range(1, n):
        x, y, w, h, a = stats[i]
        sub = lbl[y:y + h, x:x + w] == i
        d = dt[y:y + h, x:x + w] * sub
        # only a component clearly bigger than a typical part can hold two parts
        if STRATEGY.get("split", True) and a > STRATEGY.get("split_area", 1.2) * typical:
            cores = (d >= core_level * d.max()).astype(np.uint8)
        else:
            cores = sub.astype(np.uint8)
        m, cl, cs, _ = cv2.connectedComponentsWithStats(cores, 8)
        biggest = cs[1:, cv2.CC_STAT_AREA].max() if m > 1 else 0
        keep = [j for j in range(1, m) if cs[j, cv2.CC_STAT_AREA] >= max(2, 0.25 * biggest)]
        for j in keep:
            markers[y:y + h, x:x + w][cl == j] = next_label
            next_label += 1
    markers[mask == 0] = 1
    if next_label > 3:
        markers = cv2.watershed(cv2.GaussianBlur(img, (3, 3), 0), markers)
    out = []
    for lab in range(2, next_label):
        region = (markers == lab).astype(np.uint8)
        a = int(region.sum())
        if a == 0:
            continue
        x, y, w, h = cv2.boundingRect(region)
        out.append((x, y, w, h, a, lab))
    return out


def count_parts():
    img, name = load_input()
    h, w = img.shape[:2]
    mask = foreground(img)
    comps = split_touching(mask, img)
    if comps:
        areas = np.array([c[4] for c in comps], dtype=np.float64)
        big = areas[areas >= max(12.0, 0.002 * h * w * 0.05)]
        typical = float(np.median(big)) if len(big) else float(np.median(areas))
        min_area = max(10.0, 0.12 * typical)
    else:
        min_area = 10.0
    boxes = [c for c in comps if c[4] >= min_area]
    out = img.copy()
    thick = max(1, min(h, w) // 200)
    for k, (x, y, bw, bh, a, i) in enumerate(sorted(boxes, key=lambda c: (c[1] // 20, c[0]))):
        cv2.rectangle(out, (int(x), int(y)), (int(x + bw), int(y + bh)), (0, 255, 0), thick)
        put_label(out, str(k + 1), (int(x), int(y) - 2), scale=max(0.35, min(h, w) / 700.0), colour=(0, 0, 200))
    put_label(out, "%d %s" % (len(boxes), OBJECT), (4, h - 6))
    save(out)
    areas = [c[4] for c in boxes]
    spread = float(np.std(areas) / (np.mean(areas) + 1e-6)) if areas else 1.0
    conf = clamp01(0.95 - 0.3 * min(1.0, spread)) if boxes else 0.3
    emit({"count": int(len(boxes)), "confidence": round(conf, 3)})
