# --- roilens coder: zoom (crop the asked region, upscale, sharpen) ---
PROMPT = str(SPEC.get("prompt") or "")
FACTOR = float(SPEC.get("zoom") or 2.0)


def region_from_spec(w, h):
    reg = SPEC.get("region")
    if isinstance(reg, (list, tuple)) and len(reg) == 4:
        x, y, rw, rh = [float(v) for v in reg]
        if max(x, y, rw, rh) <= 1.0:  # fractions of the image
            x, y, rw, rh = x * w, y * h, rw * w, rh * h
        return int(x), int(y), int(rw), int(rh)
    p = PROMPT.lower()
    x0, y0, x1, y1 = 0.0, 0.0, 1.0, 1.0
    if "left" in p:
        x1 = 0.5
    if "right" in p:
        x0 = 0.5
    if "top" in p or "upper" in p:
        y1 = 0.5
    if "bottom" in p or "lower" in p:
        y0 = 0.5
    if ("centre" in p or "center" in p or "middle" in p) and (x0, x1, y0, y1) == (0, 1, 0, 1):
        x0, y0, x1, y1 = 0.25, 0.25, 0.75, 0.75
    return int(x0 * w), int(y0 * h), int((x1 - x0) * w), int((y1 - y0) * h)


def zoom():
    img, name = load_input()
    h, w = img.shape[:2]
    x, y, rw, rh = region_from_spec(w, h)
    x, y = max(0, min(x, w - 1)), max(0, min(y, h - 1))
    rw, rh = max(1, min(rw, w - x)), max(1, min(rh, h - y))
    crop = img[y:y + rh, x:x + rw]
    f = max(1.0, min(FACTOR, 8.0, 4096.0 / max(rw, rh)))
    up = cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
    soft = cv2.GaussianBlur(up, (0, 0), max(1.0, f / 2.0))
    sharp = cv2.addWeighted(up, 1.6, soft, -0.6, 0)
    save(sharp, "zoomed.png")
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    focus = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    emit({"text": "Zoomed region x=%d y=%d w=%d h=%d by %.1fx (output %dx%d); mean brightness %.0f, "
                  "sharpness %.0f." % (x, y, rw, rh, f, sharp.shape[1], sharp.shape[0], float(gray.mean()), focus)})
