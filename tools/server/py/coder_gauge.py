# --- roilens coder: read_gauge (dial rim -> centre, polar needle scan, axis fit, calibration) ---
CAL = SPEC.get("calibration") or {}
MIN_V = float(CAL.get("min_value", 0.0))
MAX_V = float(CAL.get("max_value", 10.0))
MIN_A = float(CAL.get("min_angle_deg", 225.0))
MAX_A = float(CAL.get("max_angle_deg", -45.0))
UNIT = str(CAL.get("unit", ""))
SWEEP = (MIN_A - MAX_A) % 360.0 or 360.0  # degrees from min to max, clockwise


def angle_to_value(theta):
    """theta: degrees, CCW positive, 0 = 3 o'clock. The scale runs clockwise from MIN_A."""
    d = (MIN_A - theta) % 360.0
    if d > SWEEP:  # in the dead zone: snap to the nearer end of the scale
        d = SWEEP if (d - SWEEP) < (360.0 - d) else 0.0
    return MIN_V + d / SWEEP * (MAX_V - MIN_V)


def in_sweep(theta, slack):
    d = (MIN_A - theta) % 360.0
    return d <= SWEEP + slack or d >= 360.0 - slack


def hough_dial(img):
    h, w = img.shape[:2]
    m = min(h, w)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    g = cv2.medianBlur(gray, 5)
    best = None
    for p2 in STRATEGY.get("hough_param2", (45, 30, 20)):
        circles = cv2.HoughCircles(g, cv2.HOUGH_GRADIENT, dp=1.0, minDist=m / 16.0, param1=100,
                                   param2=p2, minRadius=int(0.22 * m), maxRadius=int(0.6 * m))
        if circles is None:
            continue
        for x, y, rr in circles[0][:12]:
            off = math.hypot(x - w / 2.0, y - h / 2.0)
            if off > 0.22 * m:
                continue
            score = rr - 2.0 * off
            if best is None or score > best[0]:
                best = (score, float(x), float(y), float(rr))
        if best is not None:
            break
    if best is None:
        return None
    return best[1], best[2], best[3]


def face_colour(lab, cx, cy, r):
    h, w = lab.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    rr = np.hypot(xx - cx, yy - cy)
    ring = (rr > 0.2 * r) & (rr < 0.55 * r)
    if ring.sum() < 20:
        ring = rr < r
    return np.median(lab[ring].reshape(-1, 3), axis=0), rr


def rim_ellipse(dist, rr, cx, cy, r):
    """Refines the dial outline: the face region (colour close to the face) grown from the
    centre, its outer contour fitted with an ellipse (rejecting dents such as glare)."""
    thr = max(18.0, float(np.percentile(dist[rr < 0.6 * r], 60)) * 2.5)
    face = (dist < thr).astype(np.uint8)
    k = max(3, int(r * 0.06) | 1)
    face = cv2.morphologyEx(face, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, labels, stats, cents = cv2.connectedComponentsWithStats(face, 8)
    if n < 2:
        return None
    lab_c = labels[int(round(min(max(cy, 0), face.shape[0] - 1))), int(round(min(max(cx, 0), face.shape[1] - 1)))]
    if lab_c == 0:
        # the centre is covered by the hub: take the biggest component near the centre
        lab_c = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = (labels == lab_c).astype(np.uint8)
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    pts = max(contours, key=len).reshape(-1, 2).astype(np.float32)
    if len(pts) < 20:
        return None
    hull = cv2.convexHull(pts).reshape(-1, 2)
    ell = cv2.fitEllipse(pts if len(hull) < 5 else pts)
    for _ in range(3):
        (ex, ey), (a1, a2), ang = ell
        if a1 <= 0 or a2 <= 0:
            return None
        # residual: normalised radius of each point in the ellipse frame
        t = math.radians(ang)
        dx, dy = pts[:, 0] - ex, pts[:, 1] - ey
        u = (dx * math.cos(t) + dy * math.sin(t)) / (a1 / 2.0)
        v = (-dx * math.sin(t) + dy * math.cos(t)) / (a2 / 2.0)
        res = np.abs(np.sqrt(u * u + v * v) - 1.0)
        keep = res < max(0.02, float(np.percentile(res, 70)))
        if keep.sum() < 20:
            break
        pts = pts[keep]
        ell = cv2.fitEllipse(pts)
    (ex, ey), (a1, a2), ang = ell
    mean_r = (a1 + a2) / 4.0
    if mean_r < 0.5 * r or mean_r > 1.4 * r or math.hypot(ex - cx, ey - cy) > 0.3 * r:
        return None
    return ell


def rectify(img, ell, out_r):
    """Affine map that turns the fitted ellipse into a circle of radius out_r (undoes mild
    perspective to first order). Returns (warped, centre)."""
    (ex, ey), (a1, a2), ang = ell
    t = math.radians(ang)
    R = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    S = np.diag([2.0 * out_r / a1, 2.0 * out_r / a2])
    A = R.T @ S @ R
    h, w = img.shape[:2]
    c_out = np.array([w / 2.0, h / 2.0])
    b = c_out - A @ np.array([ex, ey])
    M = np.hstack([A, b.reshape(2, 1)])
    return cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), M


def angular_tophat(polar, window_rows):
    """Subtracts a running median along the angle axis (wrap-around): keeps narrow radial
    features (the needle) and removes broad ones (glare, shading)."""
    if STRATEGY.get("scipy", True):
        try:
            from scipy.ndimage import median_filter
            base = median_filter(polar, size=(window_rows, 1), mode="wrap")
            return np.clip(polar - base, 0, None)
        except ImportError:
            pass
    pad = window_rows
    tiled = np.vstack([polar[-pad:], polar, polar[:pad]])
    base = cv2.blur(tiled, (1, window_rows))[pad:-pad]
    return np.clip(polar - base, 0, None)


def needle_angle(dist, cx, cy, r):
    n_ang = 720
    step = 360.0 / n_ang
    n_rad = max(32, int(r))
    polar = cv2.warpPolar(dist.astype(np.float32), (n_rad, n_ang), (cx, cy), r,
                          cv2.WARP_POLAR_LINEAR + cv2.INTER_LINEAR)
    top = angular_tophat(polar, int(36 / step) | 1)
    lo, hi = int(STRATEGY.get("band", (0.18, 0.58))[0] * n_rad), int(STRATEGY.get("band", (0.18, 0.58))[1] * n_rad)
    score = top[:, lo:hi].mean(axis=1)
    thetas = -np.arange(n_ang) * step  # warpPolar rows run clockwise on screen
    valid = np.array([in_sweep(t, 6.0) for t in thetas])
    if not valid.any():
        valid[:] = True
    ks = 5
    smooth = np.convolve(np.concatenate([score[-ks:], score, score[:ks]]), np.ones(ks) / ks, "same")[ks:-ks]
    smooth = np.where(valid, smooth, -1.0)
    row = int(np.argmax(smooth))
    peak = float(smooth[row])
    # confidence: how much the peak stands out over the best peak elsewhere (>20 deg away)
    far = np.abs(((np.arange(n_ang) - row + n_ang // 2) % n_ang) - n_ang // 2) > int(20 / step)
    second = float(smooth[far & valid].max()) if (far & valid).any() else 0.0
    conf = clamp01(0.5 + 0.5 * (peak - second) / (peak + 1e-6))
    theta0 = float(thetas[row])
    # Axis fit: per radius, the centroid of the needle's cross-section in a wedge around the
    # peak; a straight line through those points does not depend on the centre estimate.
    half = int(8 / step)
    rows = (np.arange(row - half, row + half + 1)) % n_ang
    pts, wts = [], []
    for c in range(int(0.15 * n_rad), int(0.8 * n_rad)):
        col = top[rows, c]
        mx = col.max()
        if mx <= 0:
            continue
        wv = np.clip(col - 0.5 * mx, 0, None)
        if wv.sum() <= 0:
            continue
        t = math.radians(float(np.dot(wv, thetas[row] + (np.arange(-half, half + 1)) * -step) / wv.sum()))
        rho = (c + 0.5) * r / n_rad
        pts.append((cx + rho * math.cos(t), cy - rho * math.sin(t)))
        wts.append(float(mx))
    theta = theta0
    if len(pts) >= 6:
        P = np.array(pts)
        W = np.array(wts)
        W = W / W.sum()
        mu = (P * W[:, None]).sum(axis=0)
        C = ((P - mu) * W[:, None]).T @ (P - mu)
        evals, evecs = np.linalg.eigh(C)
        d = evecs[:, 1]
        t_fit = math.degrees(math.atan2(-d[1], d[0]))
        # choose the direction pointing like the scan peak
        diff = (t_fit - theta0 + 180.0) % 360.0 - 180.0
        if abs(diff) > 90.0:
            t_fit += 180.0
            diff = (t_fit - theta0 + 180.0) % 360.0 - 180.0
        if abs(diff) < 10.0:
            theta = t_fit
    return theta, conf


def read_gauge():
    img, name = load_input()
    h, w = img.shape[:2]
    m = min(h, w)
    dial = hough_dial(img) if STRATEGY.get("dial") == "hough" else None
    cx, cy, r = dial if dial is not None else (w / 2.0, h / 2.0, 0.45 * m)
    work = img
    M = None
    if STRATEGY.get("ellipse", True):
        lab = cv2.cvtColor(cv2.GaussianBlur(img, (3, 3), 0), cv2.COLOR_BGR2LAB).astype(np.float32)
        face, rr = face_colour(lab, cx, cy, r)
        dist = np.linalg.norm(lab - face, axis=2)
        ell = rim_ellipse(dist, rr, cx, cy, r)
        if ell is not None:
            out_r = (ell[1][0] + ell[1][1]) / 4.0
            work, M = rectify(img, ell, out_r)
            cx, cy, r = w / 2.0, h / 2.0, out_r
    lab = cv2.cvtColor(cv2.GaussianBlur(work, (3, 3), 0), cv2.COLOR_BGR2LAB).astype(np.float32)
    face, _ = face_colour(lab, cx, cy, r)
    dist = np.linalg.norm(lab - face, axis=2)
    theta, conf = needle_angle(dist, cx, cy, r)
    value = angle_to_value(theta)
    # annotate on the original image: map the rectified centre and tip back through M^-1
    out = img.copy()
    tip = np.array([cx + 0.85 * r * math.cos(math.radians(theta)), cy - 0.85 * r * math.sin(math.radians(theta))])
    ctr = np.array([cx, cy])
    if M is not None:
        Mi = cv2.invertAffineTransform(M)
        tip = Mi[:, :2] @ tip + Mi[:, 2]
        ctr = Mi[:, :2] @ ctr + Mi[:, 2]
    rad = int(round(r if M is None else r * math.sqrt(abs(np.linalg.det(cv2.invertAffineTransform(M)[:, :2])))))
    thick = max(2, m // 150)
    cv2.circle(out, (int(round(ctr[0])), int(round(ctr[1]))), rad, (0, 255, 0), thick, cv2.LINE_AA)
    cv2.line(out, (int(round(ctr[0])), int(round(ctr[1]))), (int(round(tip[0])), int(round(tip[1]))),
             (0, 255, 255), thick + 1, cv2.LINE_AA)
    span = abs(MAX_V - MIN_V) or 1.0
    digits = 0 if span >= 100 else (1 if span >= 5 else 2)
    put_label(out, ("%." + str(digits) + "f %s") % (value, UNIT), (4, h - 8))
    save(out)
    emit({"value": round(value, 4), "unit": UNIT, "confidence": round(conf, 3)})
