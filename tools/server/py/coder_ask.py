# --- roilens coder: ask (best-effort description: size, colours, brightness, sharpness, text) ---
PROMPT = str(SPEC.get("prompt") or "")

COLOUR_NAMES = [((0, 0, 0), "black"), ((255, 255, 255), "white"), ((128, 128, 128), "grey"),
                ((0, 0, 200), "red"), ((0, 160, 0), "green"), ((200, 0, 0), "blue"),
                ((0, 220, 220), "yellow"), ((0, 128, 255), "orange"), ((200, 0, 200), "purple"),
                ((40, 80, 140), "brown"), ((200, 200, 0), "cyan")]


def colour_name(bgr):
    best = min(COLOUR_NAMES, key=lambda c: sum((float(a) - b) ** 2 for a, b in zip(bgr, c[0])))
    return best[1]


def ask():
    img, name = load_input()
    h, w = img.shape[:2]
    small = cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA).reshape(-1, 3).astype(np.float32)
    k = 3
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    cv2.setRNGSeed(1)
    _, labels, centres = cv2.kmeans(small, k, None, crit, 3, cv2.KMEANS_PP_CENTERS)
    share = np.bincount(labels.ravel(), minlength=k) / float(len(labels))
    order = np.argsort(-share)
    colours = ["%s %.0f%%" % (colour_name(centres[i]), 100 * share[i]) for i in order]
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    focus = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    edges = float((cv2.Canny(gray, 80, 160) > 0).mean())
    # text-like regions: dense horizontal gradient blobs
    grad = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    _, bw = cv2.threshold(grad, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bw = cv2.morphologyEx(bw, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 1)))
    n, lbl, stats, _ = cv2.connectedComponentsWithStats(bw, 8)
    texty = [s for s in stats[1:] if s[2] > 2.5 * s[3] and 6 <= s[3] <= h / 6 and s[2] >= 15]
    out = img.copy()
    for x, y, bw_, bh, a in texty[:20]:
        cv2.rectangle(out, (int(x), int(y)), (int(x + bw_), int(y + bh)), (255, 0, 255), 1)
    save(out)
    text = ("%dx%d image; dominant colours: %s; mean brightness %.0f/255; %s (sharpness %.0f); "
            "edge density %.1f%%; %d text-like region(s)." % (
                w, h, ", ".join(colours), float(gray.mean()),
                "sharp" if focus > 100 else "soft", focus, 100 * edges, len(texty)))
    if PROMPT:
        text = "Regarding \"%s\": %s" % (PROMPT[:120], text)
    emit({"text": text})
