# --- roilens coder: annotate (find the most salient region or the one the prompt names; draw) ---
PROMPT = str(SPEC.get("prompt") or "")


def shape_from_prompt(p):
    p = p.lower()
    for word, shape in (("circle", "circle"), ("ring", "circle"), ("arrow", "arrow"), ("point", "arrow"),
                        ("box", "box"), ("rectangle", "box"), ("outline", "box"), ("label", "label"),
                        ("mark", "box"), ("highlight", "box")):
        if word in p:
            return shape
    return "box"


def target_phrase(p):
    words = p.strip().rstrip(".").split()
    stop = {"circle", "box", "draw", "an", "a", "around", "arrow", "to", "at", "label", "mark",
            "highlight", "outline", "please", "the", "rectangle", "point"}
    rest = [x for x in words if x.lower() not in stop]
    return " ".join(rest) if rest else "region of interest"


def salient_region(img):
    """The region that differs most from the image's dominant colour (largest blob)."""
    h, w = img.shape[:2]
    reg = SPEC.get("region")
    if isinstance(reg, (list, tuple)) and len(reg) == 4:
        x, y, rw, rh = [float(v) for v in reg]
        if max(x, y, rw, rh) <= 1.0:
            x, y, rw, rh = x * w, y * h, rw * w, rh * h
        return int(x), int(y), max(1, int(rw)), max(1, int(rh))
    lab = cv2.cvtColor(cv2.GaussianBlur(img, (0, 0), 2), cv2.COLOR_BGR2LAB).astype(np.float32)
    dist = np.linalg.norm(lab - np.median(lab.reshape(-1, 3), axis=0), axis=2)
    d8 = np.clip(dist * 2, 0, 255).astype(np.uint8)
    _, mask = cv2.threshold(d8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    n, lbl, stats, _ = cv2.connectedComponentsWithStats(mask, 8)
    if n < 2:
        return w // 4, h // 4, w // 2, h // 2
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, rw, rh, a = stats[i]
    return int(x), int(y), int(rw), int(rh)


def annotate():
    img, name = load_input()
    h, w = img.shape[:2]
    shape = shape_from_prompt(PROMPT)
    target = target_phrase(PROMPT)
    x, y, rw, rh = salient_region(img)
    out = img.copy()
    t = max(2, min(h, w) // 120)
    cx, cy = x + rw // 2, y + rh // 2
    if shape == "circle":
        cv2.circle(out, (cx, cy), int(0.6 * max(rw, rh)) + t, (0, 0, 255), t, cv2.LINE_AA)
    elif shape == "arrow":
        sx, sy = (cx - rw, cy - rh) if cx > w // 3 else (cx + rw, cy + rh)
        sx, sy = int(max(0, min(w - 1, sx))), int(max(0, min(h - 1, sy)))
        cv2.arrowedLine(out, (sx, sy), (cx, cy), (0, 0, 255), t, cv2.LINE_AA, tipLength=0.2)
    else:
        cv2.rectangle(out, (x, y), (x + rw, y + rh), (0, 0, 255), t)
    put_label(out, target, (x, max(12, y - 6)))
    save(out)
    emit({"text": "Drew a %s at x=%d y=%d w=%d h=%d around the %s." % (shape, x, y, rw, rh, target)})
