# --- roilens coder: read_gauge (dial rim -> pivot, needle axis fit + polar scan, calibration) ---
CAL = SPEC.get("calibration") or {}


def _scale_points():
    """The calibration as (value, unwrapped angle) pairs: the spec's `scale` when it holds at
    least two usable pairs, else the linear min/max mapping (clockwise from min_angle_deg)."""
    pts = []
    for p in CAL.get("scale") or []:
        try:
            pts.append((float(p[0]), float(p[1])))
        except (TypeError, ValueError, IndexError):
            return None
    if len(pts) >= 2 and all(b[0] > a[0] for a, b in zip(pts, pts[1:])):
        d = [b[1] - a[1] for a, b in zip(pts, pts[1:])]
        if all(x < 0 for x in d) or all(x > 0 for x in d):
            return pts
    return None


SCALE = _scale_points()
MIN_V = float(CAL.get("min_value", SCALE[0][0] if SCALE else 0.0))
MAX_V = float(CAL.get("max_value", SCALE[-1][0] if SCALE else 10.0))
MIN_A = float(CAL.get("min_angle_deg", SCALE[0][1] if SCALE else 225.0))
MAX_A = float(CAL.get("max_angle_deg", SCALE[-1][1] if SCALE else -45.0))
UNIT = str(CAL.get("unit", ""))
if SCALE is None:
    _sw = (MIN_A - MAX_A) % 360.0 or 360.0  # degrees from min to max, clockwise
    SCALE = [(MIN_V, MIN_A), (MAX_V, MIN_A - _sw)]
    EXTRAPOLATE = False  # as before: the dead zone snaps to the nearer end
else:
    EXTRAPOLATE = True
A_LO = min(SCALE[0][1], SCALE[-1][1])
A_HI = max(SCALE[0][1], SCALE[-1][1])
SWEEP = A_HI - A_LO
SPAN = abs(SCALE[-1][0] - SCALE[0][0]) or 1.0


def unwrap_angle(theta):
    """theta (any turn) -> the representation nearest the scale's angle interval; in the dead
    zone, the nearer end's side."""
    mid = 0.5 * (A_LO + A_HI)
    t = mid + ((theta - mid + 180.0) % 360.0 - 180.0)
    return t


def angle_to_value(theta):
    """theta: degrees, CCW positive, 0 = 3 o'clock -> value through the calibration."""
    t = unwrap_angle(theta)
    a = [p[1] for p in SCALE]
    v = [p[0] for p in SCALE]
    if a[0] > a[-1]:  # make the angles increasing for the search
        a, v = a[::-1], v[::-1]
    if t <= a[0] or t >= a[-1]:
        if not EXTRAPOLATE:
            return v[0] if t <= a[0] else v[-1]
        i = 0 if t <= a[0] else len(a) - 2
    else:
        i = int(np.searchsorted(a, t)) - 1
        i = min(max(i, 0), len(a) - 2)
    return v[i] + (t - a[i]) / (a[i + 1] - a[i]) * (v[i + 1] - v[i])


def outside_sweep(theta):
    """Degrees by which theta lies outside the calibrated sweep (0 inside)."""
    t = unwrap_angle(theta)
    return max(0.0, A_LO - t, t - A_HI)


def in_sweep(theta, slack):
    return outside_sweep(theta) <= slack


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
    # the face's outline bulges inwards where print, a logo or glare reaches the rim: fit its
    # convex hull's vertices (points of the outline itself), which skip such dents
    contour = pts
    hull = cv2.convexHull(pts).reshape(-1, 2).astype(np.float32)
    if len(hull) >= 12:
        pts = hull
    ell = cv2.fitEllipse(pts)
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
    return ell, ellipse_support(contour, ell)


def ellipse_support(contour, ell):
    """Share of the directions about the ellipse's centre (in 5-degree bins) in which the face's
    outline lies on the ellipse (within 2.5% of its radius): a rim seen all round, rather than
    a region cut by print or coloured zones that an ellipse happens to fit."""
    (ex, ey), (a1, a2), ang = ell
    t = math.radians(ang)
    dx, dy = contour[:, 0] - ex, contour[:, 1] - ey
    u = (dx * math.cos(t) + dy * math.sin(t)) / (a1 / 2.0)
    v = (-dx * math.sin(t) + dy * math.cos(t)) / (a2 / 2.0)
    on = np.abs(np.sqrt(u * u + v * v) - 1.0) < 0.025
    bins = ((np.degrees(np.arctan2(v, u)) + 360.0) % 360.0 / 5.0).astype(int) % 72
    return float(len(np.unique(bins[on]))) / 72.0


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


def local_contrast(img, r):
    """Per pixel, how far its colour (Lab) lies from the median of its neighbourhood (a window
    of a quarter of the dial radius): thin features (needle, ticks, print) stand out whatever
    the shading of the face, while broad shading and the edges between lit and shaded parts
    (which a median keeps) do not."""
    lab = cv2.cvtColor(cv2.GaussianBlur(img, (3, 3), 0), cv2.COLOR_BGR2LAB)
    k = max(5, int(0.25 * r) | 1)
    bg = cv2.merge([cv2.medianBlur(c, k) for c in cv2.split(lab)])
    return np.linalg.norm(lab.astype(np.float32) - bg.astype(np.float32), axis=2).astype(np.float32)


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


def polar_profile(dist, px, py, rs, band=None):
    """Polar scan about (px, py): per angle, the mean over a radial band of the angular top-hat
    of `dist` (narrow radial features: the needle). Returns (smoothed score, thetas, step)."""
    n_ang = 720
    step = 360.0 / n_ang
    n_rad = max(32, int(rs))
    polar = cv2.warpPolar(dist, (n_rad, n_ang), (px, py), rs, cv2.WARP_POLAR_LINEAR + cv2.INTER_LINEAR)
    top = angular_tophat(polar, int(36 / step) | 1)
    b = band or STRATEGY.get("band", (0.18, 0.6))
    lo, hi = int(b[0] * n_rad), max(int(b[0] * n_rad) + 2, int(b[1] * n_rad))
    score = top[:, lo:hi].mean(axis=1)
    ks = 5
    smooth = np.convolve(np.concatenate([score[-ks:], score, score[:ks]]), np.ones(ks) / ks, "same")[ks:-ks]
    thetas = -np.arange(n_ang) * step  # warpPolar rows run clockwise on screen
    return smooth, thetas, step


def polar_estimate(dist, px, py, rs, near=None):
    """Estimate A: the needle's angle as the peak of the polar profile about the pivot (with a
    sub-step parabolic refinement), restricted to the sweep (and to +-25 deg of `near` when
    given). Returns (theta, distinctness 0..1, peak height, distinctness leaving out the
    opposite direction)."""
    smooth, thetas, step = polar_profile(dist, px, py, rs)
    n = len(smooth)
    valid = np.array([in_sweep(t, 6.0) for t in thetas])
    if near is not None:
        dn = np.abs((thetas - near + 180.0) % 360.0 - 180.0)
        valid &= dn <= 25.0
    if not valid.any():
        valid[:] = True
    sc = np.where(valid, smooth, -1.0)
    row = int(np.argmax(sc))
    peak = float(smooth[row])
    y0, y1, y2 = smooth[(row - 1) % n], smooth[row], smooth[(row + 1) % n]
    den = y0 - 2 * y1 + y2
    off = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    theta = float(thetas[row]) - max(-1.0, min(1.0, off)) * step
    # distinctness: the peak against the best other peak (> 20 deg away), anywhere on the dial;
    # and the same leaving out the opposite direction, where the needle's own tail lies (which
    # tip_or_tail weighs on its own)
    sep = np.abs(((np.arange(n) - row + n // 2) % n) - n // 2)
    far = sep > int(20 / step)
    side = far & (sep < n // 2 - int(20 / step))
    second = float(smooth[far].max()) if far.any() else 0.0
    second_side = float(smooth[side].max()) if side.any() else 0.0
    return (theta, clamp01((peak - second) / (peak + 1e-6)), peak,
            clamp01((peak - second_side) / (peak + 1e-6)))


def coarse_needle(dist, cx, cy, r, thin_only=True):
    """Searches candidate pivots around the face centre for the one from which a feature looks
    most radial (long, narrow, over a radial band): the needle. The best candidate lies on the
    needle's axis (not necessarily at the pivot). Returns (x, y, theta)."""
    n_ang, n_rad = 360, 48
    rmax = 0.7 * r
    lo, hi = int(0.12 / 0.7 * n_rad), int(0.62 / 0.7 * n_rad)
    thetas = -np.arange(n_ang) * (360.0 / n_ang)
    valid = np.array([in_sweep(t, 10.0) for t in thetas])

    # thin features only: what an opening wider than a needle removes (glare, shading and
    # broad patches of colour are wider than that)
    kk = max(3, int(0.1 * r) | 1)
    thin = dist - cv2.morphologyEx(dist, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kk, kk))) \
        if thin_only else dist

    def score(x, y):
        pol = cv2.warpPolar(thin, (n_rad, n_ang), (x, y), rmax, cv2.WARP_POLAR_LINEAR + cv2.INTER_LINEAR)
        band = pol[:, lo:hi]
        prof = band.mean(axis=1) - np.median(band, axis=0).mean()
        prof = np.convolve(np.concatenate([prof[-2:], prof, prof[:2]]), np.ones(3) / 3, "same")[2:-2]
        prof = np.where(valid, prof, -1e9)
        k = int(np.argmax(prof))
        return float(prof[k]), float(thetas[k])

    best = None
    reach = float(STRATEGY.get("pivot_reach", 0.22))
    grid = np.linspace(-reach * r, reach * r, 9)
    for dy in grid:
        for dx in grid:
            if math.hypot(dx, dy) > reach * r * 1.01:
                continue
            sc, th = score(cx + dx, cy + dy)
            if best is None or sc > best[0]:
                best = (sc, cx + dx, cy + dy, th)
    g2 = np.linspace(-reach * r / 8, reach * r / 8, 5)
    bx, by = best[1], best[2]
    for dy in g2:
        for dx in g2:
            sc, th = score(bx + dx, by + dy)
            if sc > best[0]:
                best = (sc, bx + dx, by + dy, th)
    return best[1], best[2], best[3]


def needle_strip(dist, x0, y0, theta, r):
    """Samples `dist` in a strip along the line through (x0, y0) at theta: columns run along
    the line (u from -0.45 r to 1.05 r), rows across it (v within +-0.16 r). Returns
    (strip, us, vs, d, n) with d the unit direction and n the unit normal in image coordinates."""
    t = math.radians(theta)
    d = np.array([math.cos(t), -math.sin(t)])
    nrm = np.array([-d[1], d[0]])
    us = np.arange(-0.45 * r, 1.05 * r, 1.0)
    vs = np.arange(-0.16 * r, 0.16 * r + 0.25, 0.5)
    U, V = np.meshgrid(us, vs)
    mx = (x0 + U * d[0] + V * nrm[0]).astype(np.float32)
    my = (y0 + U * d[1] + V * nrm[1]).astype(np.float32)
    strip = cv2.remap(dist, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return strip, us, vs, d, nrm


def fit_axis(dist, x0, y0, theta, r):
    """Estimate B: the needle's axis as a robust straight-line fit to the centre of its cross
    section along its length (independent of where the pivot is assumed to be), plus the hub
    (widest part of the dark/coloured feature along the axis) as the pivot.
    Returns a dict or None when no needle-like run is found."""
    strip, us, vs, d, nrm = needle_strip(dist, x0, y0, theta, r)
    prof = strip - np.median(strip, axis=0, keepdims=True)  # local background per column
    mx = prof.max(axis=0)
    body = (us > 0.12 * r) & (us < 0.6 * r)
    if not body.any():
        return None
    ref = float(np.percentile(mx[body], 75))
    if ref <= 1e-6:
        return None
    strong = mx > 0.45 * ref
    step_v = float(vs[1] - vs[0])
    n_v = len(vs)

    def cross_section(j, k):
        """Centre and width of the feature in column j around row k (above half the peak)."""
        col = prof[:, j]
        thr = 0.5 * max(mx[j], 1e-6)
        if col[k] < thr:
            return None
        a_, b_ = k, k
        while a_ > 0 and col[a_ - 1] >= thr:
            a_ -= 1
        while b_ < n_v - 1 and col[b_ + 1] >= thr:
            b_ += 1
        wv = np.clip(col[a_:b_ + 1] - thr, 0, None)
        c = float(np.dot(wv, vs[a_:b_ + 1]) / wv.sum()) if wv.sum() > 0 else float(vs[k])
        return c, (b_ - a_ + 1) * step_v

    # seed: the strongest cross-section per column over the body, then a RANSAC line
    body_j = np.where(body & strong)[0]
    if len(body_j) < 8:
        return None
    P = []
    for j in body_j:
        cs = cross_section(j, int(np.argmax(prof[:, j])))
        if cs is not None:
            P.append((us[j], cs[0], mx[j]))
    if len(P) < 8:
        return None
    P = np.array(P)
    tol = 1.5 + 0.01 * r
    rng = np.random.RandomState(7)
    best_in = None
    for _ in range(150):
        i1, i2 = rng.choice(len(P), 2, replace=False)
        if abs(P[i1, 0] - P[i2, 0]) < 0.1 * r:
            continue
        sl = (P[i2, 1] - P[i1, 1]) / (P[i2, 0] - P[i1, 0])
        inl = np.abs(P[:, 1] - (P[i1, 1] + sl * (P[:, 0] - P[i1, 0]))) < tol
        if best_in is None or inl.sum() > best_in.sum():
            best_in = inl
    if best_in is None or best_in.sum() < 6:
        return None
    c1, c0 = np.polyfit(P[best_in, 0], P[best_in, 1], 1, w=np.sqrt(P[best_in, 2]))
    # walk along the line: the run is where the line passes through the feature
    on = np.zeros(len(us), bool)
    cen = np.full(len(us), np.nan)
    wid = np.zeros(len(us))
    for j in range(len(us)):
        k = int(round((c0 + c1 * us[j] - vs[0]) / step_v))
        if k < 0 or k >= n_v or mx[j] < 0.3 * ref:
            continue
        kk = k + int(np.argmax(prof[max(0, k - 2):k + 3, j])) - min(k, 2)
        cs = cross_section(j, kk)
        if cs is None:
            continue
        on[j] = True
        cen[j], wid[j] = cs
    j0 = int(body_j[np.argmin(np.abs(us[body_j] - 0.3 * r))])
    gap = max(2, int(0.03 * r))
    a = j0
    miss = 0
    while a > 0 and miss <= gap:
        a -= 1
        miss = 0 if on[a] else miss + 1
    a += miss
    b = j0
    miss = 0
    while b < len(us) - 1 and miss <= gap:
        b += 1
        miss = 0 if on[b] else miss + 1
    b -= miss
    # refit on the run, away from the hub and the tip, inliers only
    sel = np.arange(a, b + 1)
    sel = sel[on[sel] & (us[sel] > us[a] + 0.15 * r) & (us[sel] < us[b] - 0.04 * r)]
    if len(sel) < 6:
        return None
    U, Vc, W = us[sel], cen[sel], mx[sel]
    keep = np.abs(Vc - (c0 + c1 * U)) < tol
    if keep.sum() < 6:
        return None
    c1, c0 = np.polyfit(U[keep], Vc[keep], 1, w=np.sqrt(W[keep]))
    res = Vc[keep] - (c0 + c1 * U[keep])
    rms = float(np.sqrt(np.mean(res ** 2)))
    dirv = d + c1 * nrm
    dirv /= np.linalg.norm(dirv)
    # The hub: along the axis, the widest part of the feature near the start of the run (its
    # extent across the axis, bridging a light cap in its middle), taken as the middle of the
    # stretch where it is clearly wider than the needle's body.
    ext = np.zeros(len(us))
    thr = 0.5 * ref
    bridge = max(2, int(0.05 * r / step_v))
    lim = int(0.14 * r / step_v)
    for j in range(a, b + 1):
        k = int(round((c0 + c1 * us[j] - vs[0]) / step_v))
        if k < 0 or k >= n_v:
            continue
        col = prof[:, j] >= thr
        lo_, hi_ = k, k
        miss = 0
        i = k
        while i > max(0, k - lim) and miss <= bridge:
            i -= 1
            if col[i]:
                lo_, miss = i, 0
            else:
                miss += 1
        miss = 0
        i = k
        while i < min(n_v - 1, k + lim) and miss <= bridge:
            i += 1
            if col[i]:
                hi_, miss = i, 0
            else:
                miss += 1
        if col[lo_] or col[hi_]:
            ext[j] = (hi_ - lo_ + 1) * step_v
    body_w = float(np.median(ext[sel])) if len(sel) else 0.0
    near = np.arange(a, b + 1)
    near = near[us[near] < us[a] + 0.4 * r]
    hub_u = None
    if len(near) and body_w > 0:
        es = np.convolve(ext, np.ones(3) / 3, "same")
        k = int(near[np.argmax(es[near])])
        if es[k] > 1.5 * body_w:
            wide = es > max(1.5 * body_w, 0.6 * es[k])
            lo_, hi_ = k, k
            while lo_ > a and wide[lo_ - 1]:
                lo_ -= 1
            while hi_ < b and wide[hi_ + 1]:
                hi_ += 1
            hub_u = 0.5 * (us[lo_] + us[hi_])
    return {"dir": dirv, "c0": c0, "c1": c1, "rms": rms, "u_start": float(us[a]), "u_end": float(us[b]),
            "hub_u": hub_u, "width": body_w, "d": d, "n": nrm, "x0": x0, "y0": y0, "n_fit": int(keep.sum())}


def point_on_axis(fit, u):
    p = np.array([fit["x0"], fit["y0"]]) + u * fit["d"] + (fit["c0"] + fit["c1"] * u) * fit["n"]
    return float(p[0]), float(p[1])


def dir_angle(v):
    return math.degrees(math.atan2(-v[1], v[0]))


def angdiff(a, b):
    return (a - b + 180.0) % 360.0 - 180.0


def locate_pivot(fit, cx, cy, r, pivot):
    """The pivot: given, else the hub on the axis, else the face centre projected onto it."""
    if pivot is not None:
        return pivot[0], pivot[1], "given"
    rel = np.array([cx - fit["x0"], cy - fit["y0"]])
    proj = point_on_axis(fit, float(np.dot(rel, fit["d"])))
    if fit["hub_u"] is not None:
        px, py = point_on_axis(fit, fit["hub_u"])
        if math.hypot(px - cx, py - cy) <= 0.3 * r:
            return px, py, "hub"
    return proj[0], proj[1], "projected"


def side_profile(dist, px, py, theta, r):
    """The feature along the ray from the pivot at theta: per distance u (pixels, from 0.05 r to
    1.05 r) its strength (the peak of `dist` near the ray over the local background across it)
    and width (pixels above half that peak). Returns (us, strength, width)."""
    t = math.radians(theta)
    d = np.array([math.cos(t), -math.sin(t)])
    nrm = np.array([-d[1], d[0]])
    us = np.arange(0.05 * r, 1.05 * r, 1.0)
    vs = np.arange(-0.12 * r, 0.12 * r + 0.25, 0.5)
    U, V = np.meshgrid(us, vs)
    mx = (px + U * d[0] + V * nrm[0]).astype(np.float32)
    my = (py + U * d[1] + V * nrm[1]).astype(np.float32)
    strip = cv2.remap(dist, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    prof = strip - np.median(strip, axis=0, keepdims=True)
    core = np.abs(vs) <= max(1.5, 0.02 * r)
    peak = prof[core].max(axis=0)
    width = ((prof >= 0.5 * np.maximum(peak, 1e-6)[None, :]) & (np.abs(vs) <= 0.06 * r)[:, None]).sum(axis=0) * 0.5
    return us, peak, width


def side_extent(us, peak, ref, r):
    """How far from the pivot the feature runs along a ray: the last u of the run above 0.4 ref
    that starts within 0.2 r of the pivot, bridging gaps of up to 0.05 r (a hub cap, a tick)."""
    on = peak > 0.4 * ref
    gap = max(2, int(0.05 * r))
    start = np.where(on & (us < 0.2 * r))[0]
    if not len(start):
        return 0.0
    j, miss, last = int(start[0]), 0, int(start[0])
    while j < len(us) - 1 and miss <= gap:
        j += 1
        if on[j]:
            last, miss = j, 0
        else:
            miss += 1
    return float(us[last])


def tip_or_tail(dist, px, py, theta, rs):
    """The needle on both sides of the pivot along theta: how far each side's feature runs
    (bridging a hub cap) and its median width, in units of rs: (ahead, behind, w_ahead,
    w_behind). A pointer is the long, thin side; a tail or counterweight the short, wide one."""
    us, pf, wf = side_profile(dist, px, py, theta, rs)
    _, pb, wb = side_profile(dist, px, py, (theta + 180.0) % 360.0, rs)
    body = (us > 0.15 * rs) & (us < 0.5 * rs)
    ref = float(np.percentile(np.concatenate([pf[body], pb[body]]), 90))
    if ref <= 1e-6:
        return 0.0, 0.0, 0.0, 0.0
    lf, lb = side_extent(us, pf, ref, rs), side_extent(us, pb, ref, rs)

    def med_width(w, p, length):
        sel = (us > 0.12 * rs) & (us < length) & (p > 0.4 * ref)
        return float(np.median(w[sel])) if sel.sum() > 3 else 0.0

    return lf / rs, lb / rs, med_width(wf, pf, lf) / rs, med_width(wb, pb, lb) / rs


def end_tick_pair(theta, sides):
    """True when the line found at theta may be no more than the two end ticks of a half-circle
    scale: the sweep's two ends lie on one line through the pivot, theta is within 10 deg of one
    of them (the numerals beside an end tick pull a fit of the pair a few degrees off), and the
    feature runs from the pivot on neither side. A needle, even one resting on an end, runs from
    its pivot; end ticks and their numerals stand near the rim."""
    if abs(SWEEP - 180.0) > 3.0:
        return False
    at_end = min(abs(angdiff(theta, A_LO)), abs(angdiff(theta, A_HI))) <= 10.0
    return at_end and sides[0] < 0.3 and sides[1] < 0.3


def orient(fit, px, py):
    """The axis direction from the pivot to the tip: the side of the run on the calibrated
    sweep, else the longer side."""
    u_p = float(np.dot(np.array([px - fit["x0"], py - fit["y0"]]), fit["d"]))
    fwd, back = fit["u_end"] - u_p, u_p - fit["u_start"]
    t = dir_angle(fit["dir"])
    tb = (t + 180.0) % 360.0
    of, ob = outside_sweep(t), outside_sweep(tb)
    if of > 5.0 and ob <= 5.0:
        return tb, back
    if ob > 5.0 and of <= 5.0:
        return t, fwd
    return (t, fwd) if fwd >= back else (tb, back)


def find_needle(dist, cx, cy, r, pivot=None, rs=None):
    """find_needle_from with the candidate search on thin features, and when that is not well
    evidenced, on all features (a wide needle or hub); keeps the better-evidenced one."""
    best = find_needle_from(dist, cx, cy, r, pivot, rs, True)
    if pivot is None:
        alt = find_needle_from(dist, cx, cy, r, pivot, rs, False)
        if alt is not None and best is not None:
            # two searches that end on different needles: one of them found something else
            rival = abs(angle_to_value(alt["theta"]) - angle_to_value(best["theta"])) / SPAN * 100.0 > 2.0
            if confidence_of(alt, r)[0] > confidence_of(best, r)[0]:
                best = alt
            best["rival"] = rival
        elif best is None:
            best = alt
    return best


def find_needle_from(dist, cx, cy, r, pivot, rs, thin_only):
    """Locates pivot and needle in the (rectified) working image. Returns a dict with theta
    (estimate B, the axis fit), theta_polar (estimate A, the polar peak about the pivot), the
    pivot, and the evidence; None when nothing needle-like is found."""
    if pivot is None:
        x0, y0, th0 = coarse_needle(dist, cx, cy, r, thin_only)
    else:
        x0, y0 = pivot
        th0 = polar_estimate(dist, x0, y0, rs or r)[0]
    fit = fit_axis(dist, x0, y0, th0, r)
    if fit is None and pivot is None:  # try from the face centre
        x0, y0 = cx, cy
        th0 = polar_estimate(dist, x0, y0, r)[0]
        fit = fit_axis(dist, x0, y0, th0, r)
    if fit is None:
        return None
    px, py, found = locate_pivot(fit, cx, cy, r, pivot)
    off = math.hypot(px - cx, py - cy)
    rs_ = rs if rs is not None else max(0.5 * r, r - off)
    theta_b, length = orient(fit, px, py)
    # The strongest radial feature seen from the pivot: when it is not the axis found, fit
    # that one too and keep whichever is more needle-like (text, logos and inner scales make
    # short, broken runs; the needle a long straight one from the pivot).
    theta_free = polar_estimate(dist, px, py, rs_)[0]
    if abs(angdiff(theta_free, theta_b)) > 8.0:
        fit2 = fit_axis(dist, px, py, theta_free, r)
        if fit2 is not None:
            px2, py2, found2 = locate_pivot(fit2, cx, cy, r, pivot)
            tb2, len2 = orient(fit2, px2, py2)
            # The end ticks of a half-circle scale and the numerals beside them line up through
            # the pivot: longer and straighter than a pale or short needle, but no needle.
            rs2 = rs if rs is not None else max(0.5 * r, r - math.hypot(px2 - cx, py2 - cy))
            if (len2 > 1.15 * length and fit2["rms"] <= max(fit["rms"], 0.01 * r)
                    and not end_tick_pair(tb2, tip_or_tail(dist, px2, py2, tb2, rs2))):
                fit, px, py, found, theta_b, length = fit2, px2, py2, found2, tb2, len2
                off = math.hypot(px - cx, py - cy)
                rs_ = rs if rs is not None else max(0.5 * r, r - off)
    # Tip or tail: measured from the pivot (across a hub cap that may break the run fitted
    # above), a side that runs clearly further than the one chosen is the pointer, when it too
    # lies on the scale (a double-ended needle's tail is short and often wide).
    sides = tip_or_tail(dist, px, py, theta_b, rs_)
    theta_back = (theta_b + 180.0) % 360.0
    if sides[1] >= 0.4 and sides[0] < 0.6 * sides[1] and in_sweep(theta_back, 5.0):
        theta_b, length = theta_back, sides[1] * rs_
        sides = (sides[1], sides[0], sides[3], sides[2])
    theta_a, distinct, peak, distinct_beside = polar_estimate(dist, px, py, rs_, near=theta_b)
    # how far the axis passes from the pivot (the needle turns about it)
    rel = np.array([px - fit["x0"], py - fit["y0"]])
    u = float(np.dot(rel, fit["d"]))
    miss = abs(float(np.dot(rel, fit["n"])) - (fit["c0"] + fit["c1"] * u))
    return {"theta": theta_b, "theta_polar": theta_a, "pivot": (px, py), "rs": rs_, "found": found,
            "distinct": distinct, "distinct_beside": distinct_beside, "rms": fit["rms"], "width": fit["width"], "miss": miss,
            "length": length / rs_, "n_fit": fit["n_fit"], "sides": sides}


def confidence_of(nd, r):
    """Confidence from evidence the program can check: agreement of the two angle estimates (in
    % of span), the straightness of the needle's axis, its length against the scale radius, how
    distinct the polar peak is, and whether the reading lies on the calibrated sweep."""
    va, vb = angle_to_value(nd["theta_polar"]), angle_to_value(nd["theta"])
    agree = abs(va - vb) / SPAN * 100.0
    f_agree = clamp01(1.0 - max(0.0, agree - 0.6) / 2.4)
    f_straight = clamp01(1.0 - max(0.0, nd["rms"] - 0.012 * r) / (0.03 * r))
    # a peak opposite the needle is its tail when the two ends are told apart (sides measured)
    sides = nd.get("sides") or (0.0, 0.0, 0.0, 0.0)
    # the needle's length: the fitted run, or the run measured from the pivot across its hub
    f_len = clamp01((max(nd["length"], sides[0]) - 0.35) / 0.25)
    distinct = nd.get("distinct_beside", nd["distinct"]) if sides[0] > 0 else nd["distinct"]
    f_dist = clamp01(0.4 + distinct * 1.5)
    f_sweep = clamp01(1.0 - outside_sweep(nd["theta"]) / 6.0)
    f_rival = 0.5 if nd.get("rival") else 1.0
    # a needle that runs about as far on both sides of the pivot, both on the scale, and about
    # as wide: which end is the pointer is not evidenced
    f_ends = 1.0
    if sides[0] > 0 and in_sweep(nd["theta"] + 180.0, 5.0):
        ratio = sides[1] / sides[0]
        thinner = sides[2] > 0 and sides[3] > 1.25 * sides[2]
        if not thinner:
            f_ends = clamp01((0.9 - ratio) / 0.2)
    # a half-circle scale's end ticks, lined up through the pivot, are not evidenced as a needle
    f_pair = 0.3 if end_tick_pair(nd["theta"], sides) else 1.0
    conf = f_agree * f_straight * f_len * f_dist * f_sweep * f_rival * f_ends * f_pair
    return conf, {"agree": round(agree, 2), "rms": round(nd["rms"] / r, 4), "len": round(nd["length"], 2),
                  "distinct": round(distinct, 2), "out": round(outside_sweep(nd["theta"]), 1),
                  "found": nd["found"], "rival": bool(nd.get("rival")),
                  "ends": [round(x, 3) for x in sides]}


def needle_on_maps(work, dist, cx, cy, r, pivot, rs, lab=None, face=None):
    """The needle searched on three feature maps: the colour distance from the face (`dist`:
    keeps wide needles and hubs whole), the local contrast (thin features whatever the
    shading: a lit and a shaded half of the face, stains) and the distance from the face in
    hue and saturation alone (`lab`'s a and b), where a coloured needle outweighs black
    or white print (a red needle on a navy face with white numerals, a pale blue one on a white
    face with black ticks: on the other two maps the print outweighs the needle, and an end
    tick or a numeral's stroke can be read with full confidence). Keeps the best-evidenced
    read; every other map that found a different needle counts against it with its own
    evidence. Returns (needle dict or None, confidence, evidence)."""
    found = []
    for name, fmap in (("face", dist), ("local", None)):
        if fmap is None:
            if STRATEGY.get("local_map", True) is False:
                continue
            fmap = local_contrast(work, r)
        nd = find_needle(fmap, cx, cy, r, pivot=pivot, rs=rs)
        if nd is not None:
            c, ev = confidence_of(nd, r)
            ev["map"] = name
            found.append((c, nd, ev))
    found.sort(key=lambda t: -t[0])
    if lab is not None and STRATEGY.get("chroma_map", True):
        chroma = np.linalg.norm(lab[:, :, 1:] - face[1:], axis=2).astype(np.float32)
        nd = find_needle(chroma, cx, cy, r, pivot=pivot, rs=rs)
        if nd is not None:
            c, ev = confidence_of(nd, r)
            ev["map"] = "chroma"
            # Coloured print (an inner scale's numerals) can lie on a line through the pivot.
            # A needle runs out from its pivot (across a hub cap) and print does not, so a read
            # that does not is never kept; it still counts against a read it disagrees with.
            # Where the other maps fitted no axis at all, only an evidenced read replaces the
            # fallback below (the most radial thin feature, reported with no confidence).
            runs = nd["sides"][0] > 0
            if runs and ((c > found[0][0]) if found else c >= 0.5):
                found.insert(0, (c, nd, ev))
            elif found:
                found.append((c, nd, ev))
    if not found:
        return None, 0.0, {"found": "none"}
    conf, nd, ev = found[0]
    for other_c, other, _ in found[1:]:
        diff = abs(angle_to_value(other["theta"]) - angle_to_value(nd["theta"])) / SPAN * 100.0
        ev["maps"] = max(ev.get("maps", 0.0), round(diff, 2))
        if diff > 2.0:
            conf *= clamp01(1.0 - max(0.0, other_c - 0.4) / 0.6)
    return nd, conf, ev


def read_once(img, dial, pivot, rs):
    """One read: the dial circle (cx, cy, r), its rim ellipse undone, then the needle. Returns
    (needle dict, confidence, evidence, M, k) with M the rectifying affine map (or None) and k
    its scale."""
    h, w = img.shape[:2]
    cx, cy, r = dial
    work = img
    M = None
    dist0 = None
    ell = None
    if STRATEGY.get("ellipse", True):
        lab = cv2.cvtColor(cv2.GaussianBlur(img, (3, 3), 0), cv2.COLOR_BGR2LAB).astype(np.float32)
        face, rr = face_colour(lab, cx, cy, r)
        dist0 = np.linalg.norm(lab - face, axis=2).astype(np.float32)
        fitted = rim_ellipse(dist0, rr, cx, cy, r)
        if fitted is not None:
            ell, support = fitted
            ratio = min(ell[1]) / max(ell[1])
            # Undo the tilt only where the rim is seen on the ellipse nearly all round and the
            # ellipse is clearly not a circle: a fit to a face cut by print or coloured zones
            # (or a round face's noise) would add the error it is meant to remove.
            if support < 0.75 or ratio > 0.985:
                ell = None
        if ell is not None:
            out_r = (ell[1][0] + ell[1][1]) / 4.0
            work, M = rectify(img, ell, out_r)
            cx, cy, r = w / 2.0, h / 2.0, out_r
    k = 1.0
    pivot_w, rs_w = pivot, rs
    if M is not None:
        k = math.sqrt(abs(np.linalg.det(M[:, :2])))
        if pivot is not None:
            pivot_w = tuple(M[:, :2] @ np.array(pivot) + M[:, 2])
        if rs is not None:
            rs_w = rs * k
    if pivot_w is not None:
        cx, cy = pivot_w  # the face colour is sampled about the pivot
        if rs_w is not None:
            r = rs_w / 0.95
    lab = cv2.cvtColor(cv2.GaussianBlur(work, (3, 3), 0), cv2.COLOR_BGR2LAB).astype(np.float32)
    face, _ = face_colour(lab, cx, cy, r)
    dist = np.linalg.norm(lab - face, axis=2).astype(np.float32)
    nd, conf, ev = needle_on_maps(work, dist, cx, cy, r, pivot_w, rs_w, lab, face)
    if nd is None:
        # no axis could be fitted (a faint or hatched needle): report the most radial thin
        # feature of the local contrast, seen from the best candidate on its axis, with no
        # confidence
        if pivot_w is None:
            px, py, theta = coarse_needle(local_contrast(work, r), cx, cy, r, True)
        else:
            px, py = pivot_w
            theta = polar_estimate(local_contrast(work, r), px, py, rs_w or r)[0]
        nd = {"theta": theta, "theta_polar": theta, "pivot": (px, py), "rs": r}
        return nd, 0.0, {"found": "none"}, M, k
    if ell is not None:
        ev["ellipse"] = round(min(ell[1]) / max(ell[1]), 3)
    if M is not None and dist0 is not None:
        # a third estimate: the same read without undoing the tilt; where the two differ by
        # much, the (first-order) tilt correction itself is uncertain
        d0 = dial if pivot is None else (pivot[0], pivot[1], (rs / 0.95) if rs else dial[2])
        nu = find_needle(dist0, d0[0], d0[1], d0[2], pivot=pivot, rs=rs)
        if nu is not None:
            tilt = abs(angle_to_value(nu["theta"]) - angle_to_value(nd["theta"])) / SPAN * 100.0
            ev["tilt"] = round(tilt, 2)
            conf *= clamp01(1.0 - max(0.0, tilt - 2.0) / 4.0)
    return nd, conf, ev, M, k


def read_gauge():
    full, name = load_input()
    # Work at a bounded size: the cost of the polar scans and median filters grows with the
    # square of the side, while a needle a few pixels wide at a 640-pixel side already resolves
    # its angle to a fraction of a degree. Calibrated pivot and radius are fractions of the
    # image, so they hold at any size; the drawing is made on the image as received.
    work_side = int(STRATEGY.get("work_side", 640))
    f_work = 1.0
    img = full
    if work_side > 0 and max(full.shape[:2]) > work_side:
        f_work = work_side / float(max(full.shape[:2]))
        img = cv2.resize(full, None, fx=f_work, fy=f_work, interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    m = min(h, w)
    # calibrated geometry (fractions of the input image), when the ROI has it
    pivot = None
    rs = None
    try:
        pv = CAL.get("pivot")
        if pv is not None:
            pivot = (float(pv[0]) * w, float(pv[1]) * h)
        if CAL.get("radius") is not None:
            rs = float(CAL["radius"]) * m
    except (TypeError, ValueError, IndexError):
        pivot, rs = None, None
    centre = (w / 2.0, h / 2.0, 0.45 * m)
    dial = hough_dial(img) if STRATEGY.get("dial") == "hough" else None
    nd, conf, ev, M, k = read_once(img, dial or centre, pivot, rs)
    if dial is not None and conf < 0.8:
        # the circle found may be a bezel or a reflection: a crop is usually centred on its
        # dial, so read again about the crop's centre and keep the better-evidenced read
        alt = read_once(img, centre, pivot, rs)
        if alt[1] > conf:
            nd, conf, ev, M, k = alt
            ev["dial"] = "centre"
    theta = nd["theta"]
    value = angle_to_value(theta)
    # annotate on the original image: map the rectified pivot and tip back through M^-1
    out = full.copy()
    px, py = nd["pivot"]
    rsd = nd["rs"]
    tip = np.array([px + 0.85 * rsd * math.cos(math.radians(theta)), py - 0.85 * rsd * math.sin(math.radians(theta))])
    ctr = np.array([px, py])
    if M is not None:
        Mi = cv2.invertAffineTransform(M)
        tip = Mi[:, :2] @ tip + Mi[:, 2]
        ctr = Mi[:, :2] @ ctr + Mi[:, 2]
    # back to the image as received
    tip, ctr = tip / f_work, ctr / f_work
    rad = int(round(rsd / k / f_work))
    thick = max(2, min(full.shape[:2]) // 150)
    cv2.circle(out, (int(round(ctr[0])), int(round(ctr[1]))), rad, (0, 255, 0), thick, cv2.LINE_AA)
    cv2.circle(out, (int(round(ctr[0])), int(round(ctr[1]))), max(3, thick * 2), (255, 0, 255), -1, cv2.LINE_AA)
    cv2.line(out, (int(round(ctr[0])), int(round(ctr[1]))), (int(round(tip[0])), int(round(tip[1]))),
             (0, 255, 255), thick + 1, cv2.LINE_AA)
    digits = 0 if SPAN >= 100 else (1 if SPAN >= 5 else 2)
    put_label(out, ("%." + str(digits) + "f %s") % (value, UNIT), (4, full.shape[0] - 8))
    save(out)
    print("evidence: " + json.dumps(ev))
    answer = {"value": round(value, 4), "unit": UNIT, "confidence": round(conf, 3),
              "pivot": [round(float(ctr[0]) / full.shape[1], 4), round(float(ctr[1]) / full.shape[0], 4)]}
    if STRATEGY.get("debug"):
        answer["dbg"] = ev
    emit(answer)
