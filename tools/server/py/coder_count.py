# --- roilens coder: count (local background, foreground, split clusters, count against a typical part) ---
OBJECT = str(SPEC.get("object") or "objects")
EVIDENCE = {}  # the last count's evidence behind its confidence (read by tuning harnesses)
WORK_SIDE = 900  # larger inputs are counted on a copy of this size (boxes are scaled back)
VOTE_PIXELS = 250000  # an uncertain count is read twice more on crops up to this size...
VOTE_PARTS = 24  # ...holding up to this many parts (see count_parts)


def mesh_background(lab, fg, cell):
    """A local background: the median colour of the non-foreground pixels of every cell of a
    grid, cells with too few such pixels filled from their neighbours, a 3x3 median over the mesh
    (drops cells that a part dominated), then a smooth interpolation to every pixel. It follows
    lighting ramps, vignetting and broad glare without a global model."""
    h, w = lab.shape[:2]
    ny, nx = max(2, int(round(h / float(cell)))), max(2, int(round(w / float(cell))))
    ys = np.linspace(0, h, ny + 1).astype(int)
    xs = np.linspace(0, w, nx + 1).astype(int)
    grid = np.full((ny, nx, 3), np.nan, np.float32)
    for i in range(ny):
        for j in range(nx):
            pix = lab[ys[i]:ys[i + 1], xs[j]:xs[j + 1]]
            keep = fg[ys[i]:ys[i + 1], xs[j]:xs[j + 1]] == 0
            if keep.sum() >= 0.2 * keep.size:
                grid[i, j] = np.median(pix[keep], axis=0)
    valid = ~np.isnan(grid[..., 0])
    if not valid.any():
        grid[:] = np.median(lab.reshape(-1, 3), axis=0)
        valid[:] = True
    while not valid.all():  # grow valid cells into empty ones
        nxt = grid.copy()
        for i, j in zip(*np.where(~valid)):
            nb = [grid[a, b] for a in range(max(0, i - 1), min(ny, i + 2))
                  for b in range(max(0, j - 1), min(nx, j + 2)) if valid[a, b]]
            if nb:
                nxt[i, j] = np.mean(nb, axis=0)
        valid = ~np.isnan(nxt[..., 0])
        grid = nxt
    if ny >= 3 and nx >= 3:
        pad = np.pad(grid, ((1, 1), (1, 1), (0, 0)), mode="edge")
        stack = np.stack([pad[a:a + ny, b:b + nx] for a in range(3) for b in range(3)])
        grid = np.median(stack, axis=0).astype(np.float32)
    bg = cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(bg, (0, 0), max(1.0, cell / 4.0))


def gaussian_wide(img, s):
    """cv2.GaussianBlur with sigma `s`, on a copy shrunk k times (to a sigma of 16 px) and
    enlarged back when s is 64 px or more: the kernel of a wide blur spans the image many times
    over (large parts, 200 px across, took 10 s a background), and what it leaves varies slowly
    enough to interpolate."""
    if s < 64:
        return cv2.GaussianBlur(img, (0, 0), s)
    h, w = img.shape[:2]
    k = s / 16.0
    small = cv2.resize(img, (max(1, int(round(w / k))), max(1, int(round(h / k)))),
                       interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 16.0)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def masked_background(lab, fg, sigma):
    """A local background: Gaussian-weighted mean of the pixels not marked foreground (normalised
    convolution, sigma about a part's diameter); where parts leave too little background near a
    pixel, a wider one fills in."""
    wgt = (fg == 0).astype(np.float32)
    out = None
    for s in (sigma, 2.5 * sigma, 6.0 * sigma):
        num = gaussian_wide(lab * wgt[..., None], s)
        den = gaussian_wide(wgt, s)
        est = num / np.maximum(den, 1e-6)[..., None]
        if out is None:
            out, ok = est, den
        else:
            take = (ok < 0.15)[..., None]
            out = np.where(take, est, out)
            ok = np.maximum(ok, den)
        if (ok >= 0.15).all():
            break
    return out.astype(np.float32)


def smooth_surface(lab, cell):
    """The surface as one smooth field of colour: a quadratic in x and y per Lab channel, fitted
    to the median colours of a grid of cells by least squares, leaving out the cells it fits
    worst (three rounds keep the best 60%, then those within three robust spreads). Parts that
    fill whole cells, a cluster wider than a cell among them, are those left out; a lighting ramp
    or vignette is what it follows. Returns (surface, the pixels of the cells it was fitted to)."""
    h, w = lab.shape[:2]
    ny, nx = max(3, int(round(h / float(cell)))), max(3, int(round(w / float(cell))))
    ys = np.linspace(0, h, ny + 1).astype(int)
    xs = np.linspace(0, w, nx + 1).astype(int)
    med = np.array([np.median(lab[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].reshape(-1, 3), axis=0)
                    for i in range(ny) for j in range(nx)], np.float64)
    cy = np.repeat(0.5 * (ys[:-1] + ys[1:]) / h - 0.5, nx)
    cx = np.tile(0.5 * (xs[:-1] + xs[1:]) / w - 0.5, ny)

    def terms(x, y):
        return [np.ones_like(x), x, y, x * x, x * y, y * y]

    A = np.stack(terms(cx, cy), 1)
    keep = np.ones(len(med), bool)
    for it in range(10):
        coef = np.linalg.lstsq(A[keep], med[keep], rcond=None)[0]
        r = np.sqrt(((A @ coef - med) ** 2).sum(axis=1))
        if it < 3:
            nxt = r <= np.percentile(r, 60)
        else:
            nxt = r <= 3.0 * (1.4826 * float(np.median(r[keep])) + 1.0)
        if nxt.sum() < 8 or (nxt == keep).all():
            break
        keep = nxt
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    basis = terms((gx + 0.5) / w - 0.5, (gy + 0.5) / h - 0.5)
    surface = np.stack([sum(float(c) * t for c, t in zip(coef[:, k], basis)) for k in range(3)],
                       axis=2).astype(np.float32)
    fitted = np.zeros((h, w), bool)
    for idx in np.flatnonzero(keep):
        i, j = divmod(int(idx), nx)
        fitted[ys[i]:ys[i + 1], xs[j]:xs[j + 1]] = True
    return surface, fitted


def contrast_map(lab, bg):
    """Colour distance from the local background; lightness counts relative to the background's
    so that the same part reads alike in a bright and in a dim corner."""
    d = lab - bg
    rel = 100.0 / np.maximum(bg[..., 0], 25.0)  # lightness as a ratio, on the 0..255 L scale
    d[..., 0] *= np.clip(rel * 1.0, 0.6, 2.5)
    return np.sqrt((d * d).sum(axis=2))


def contrast_to(lab, sample):
    """Colour distance (as contrast_map) from one colour: the median of the `sample` pixels."""
    return contrast_map(lab, np.broadcast_to(np.median(sample, axis=0), lab.shape).astype(np.float32))


def otsu_level(dist):
    """The level that splits a colour distance map into two classes (Otsu, at half-unit steps)."""
    d8 = np.clip(dist * 2.0, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(d8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return otsu / 2.0


def guess_parts(d0, level):
    """A first guess of the parts: the distance map above `level`, opened, soft blobs dropped."""
    m = cv2.morphologyEx((d0 > level).astype(np.uint8), cv2.MORPH_OPEN,
                         cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    return drop_soft_blobs(m, d0)


def threshold_of(dist, fg, bg_sample=None, scene=None):
    """A threshold from the evidence: above the background's own spread (robust: median + 5
    MADs of the distance on background pixels) and at most half way to the parts' contrast.
    Pixels of the `scene` (surfaces other than the parts') are no evidence either way."""
    if scene is not None:
        fg, dist = fg[~scene], dist[~scene].reshape(-1, 1)
    if bg_sample is not None:
        bgd = bg_sample
    else:
        bgd = dist[fg == 0] if (fg == 0).sum() > 100 else dist.ravel()
    med = float(np.median(bgd))
    mad = float(np.median(np.abs(bgd - med))) * 1.4826
    t_noise = med + 5.0 * mad + 2.0
    t_otsu = otsu_level(dist)
    above = dist[dist > max(t_noise, t_otsu)]
    t_parts = 0.45 * float(np.percentile(above, 70)) if above.size > 30 else t_noise
    return max(t_noise, min(t_otsu, t_parts), STRATEGY.get("min_threshold", 30.0) * 0.3), t_noise


def flat_regions(sm, tol):
    """Labels the image's flat regions: flood fills that follow gradual changes (lighting ramps,
    vignetting, soft glare) up to `tol` per step and stop at sharp edges (parts, rims), seeded
    on a grid. Returns (labels, areas by label)."""
    sh, sw = sm.shape[:2]
    region = np.zeros((sh, sw), np.int32)
    areas = [0]
    step = max(4, min(sh, sw) // 16)
    for y in range(step // 2, sh, step):
        for x in range(step // 2, sw, step):
            if region[y, x]:
                continue
            m = np.zeros((sh + 2, sw + 2), np.uint8)
            cv2.floodFill(sm, m, (x, y), 0, (tol,) * 3, (tol,) * 3, 4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
            r = (m[1:-1, 1:-1] > 0) & (region == 0)
            region[r] = len(areas)
            areas.append(int(r.sum()))
    return region, areas


def part_sized(area, total):
    """Whether a blob of `area` px (or each of an array of them) has a part's size: 1/3000 to
    1/20 of an image of `total` px."""
    return (area >= 0.0003 * total) & (area <= 0.05 * total)


def part_like(mask, total):
    """The blobs of a mask that have a part's size (part_sized): (mask, how many)."""
    _, lbl, st, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    a = st[:, cv2.CC_STAT_AREA]
    ok = part_sized(a, total)
    ok[0] = False
    return ok[lbl], int(ok.sum())


def parts_surface(img):
    """The surface the parts lie on, when the image shows more than it (a tray seen with the
    table around it). Surfaces are flat regions of at least a tenth of the image; the one whose
    convex outline holds the most part-sized blobs is the parts' surface, the others are scene.
    Returns (surface, scene) masks, the scene with its blurred edge; or None when there is no
    other surface, the parts' surface holds no parts, or the others hold parts too (more than
    one in ten of the parts' surface's: then it is not the only surface with parts)."""
    h, w = img.shape[:2]
    f = min(1.0, 300.0 / max(h, w))
    sm = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1.0 else img
    sm = cv2.GaussianBlur(sm, (0, 0), 1.5)
    region, areas = flat_regions(sm, 3)
    total = float(region.size)
    big = [k for k in range(1, len(areas)) if areas[k] >= 0.1 * total]
    if len(big) < 2:
        return None
    held, outline = {}, {}
    for k in big:
        surf = (region == k).astype(np.uint8)
        outline[k] = np.zeros_like(surf)
        cv2.fillConvexPoly(outline[k], cv2.convexHull(cv2.findNonZero(surf)), 1)
        held[k] = part_like((outline[k] > 0) & (surf == 0), total)[1]
    k = max(big, key=lambda j: (held[j], areas[j]))
    if held[k] == 0:
        return None
    # the other surfaces, with the part-sized holes in them (their texture, or things lying on
    # them, which must be few)
    scene = np.isin(region, [j for j in big if j != k])
    holes, on_scene = part_like(~scene, total)
    if on_scene > 0.1 * held[k] + 1:
        return None
    grow = np.ones((5, 5), np.uint8)  # the blur's reach at this scale
    # and whatever lies outside the parts' surface's outline (the shadow a tray casts, its rim),
    # but for parts lying in the surface's corner: parts there cut the corner off its outline,
    # and the scene beyond the cut took half of two nuts (3 counted 2 at 0.97). Such a part is
    # a part-sized blob of neither surface outside the outline that touches the parts' surface
    # and fills at least 0.4 of its box (a corner cut off is a triangle, half of it) that is at
    # most three times as long as wide (a strip of the tray's rim is no part), once the band of
    # blurred pixels between tray and table (a few px wide here) is opened away.
    beyond = ((~scene) & (region != k) & (outline[k] == 0)).astype(np.uint8)
    beyond = cv2.morphologyEx(beyond, cv2.MORPH_OPEN,
                              cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    touching = cv2.dilate((region == k).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    n, lbl, st, _ = cv2.connectedComponentsWithStats(beyond, 8)
    lying = np.zeros(n, bool)
    for i in range(1, n):
        x, y, bw, bh, a = st[i]
        piece = lbl[y:y + bh, x:x + bw] == i
        lying[i] = (part_sized(a, total) and a >= 0.4 * bw * bh and max(bw, bh) <= 3 * min(bw, bh)
                    and bool(touching[y:y + bh, x:x + bw][piece].any()))
    scene = cv2.dilate((scene | holes | ((outline[k] == 0) & ~lying[lbl])).astype(np.uint8), grow)
    surf = cv2.erode((region == k).astype(np.uint8), grow)
    return (cv2.resize(surf, (w, h), interpolation=cv2.INTER_NEAREST) > 0,
            cv2.resize(scene, (w, h), interpolation=cv2.INTER_NEAREST) > 0)


def surfaces_at_border(m, b):
    """The blobs of a mask that are surfaces: at least a tenth of the image, reaching its border
    (within b px). Returns (labels, areas of the blobs 1..n-1, which of them are surfaces)."""
    h, w = m.shape
    _, lbl, st, _ = cv2.connectedComponentsWithStats(m, 8)
    x, y, bw, bh, a = (st[1:, k] for k in range(5))
    at = (x <= b) | (y <= b) | (x + bw >= w - b) | (y + bh >= h - b)
    return lbl, a, (a >= 0.1 * m.size) & at


def two_surfaces(pixels):
    """Whether a sample of Lab pixels (the image's border) falls into two colours, each at
    least 15% of it, whose centres lie at least five times their spread (root mean square
    distance to the own centre) apart: a tray and the table beside it. A lighting ramp or
    vignetting across one surface spreads its colours evenly, and two means split an even
    spread at about 3.5 times its spread apart."""
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(1)  # the same split on every read
    _, lbl, centres = cv2.kmeans(pixels.astype(np.float32), 2, None, crit, 2,
                                 cv2.KMEANS_PP_CENTERS)
    lbl = lbl.ravel()
    if min((lbl == 0).mean(), (lbl == 1).mean()) < 0.15:
        return False
    spread = math.sqrt(float(np.mean([((pixels[lbl == k] - centres[k]) ** 2).sum(1).mean()
                                      for k in (0, 1)])))
    return float(np.linalg.norm(centres[0] - centres[1])) >= 5.0 * max(spread, 1e-3)


def tray_blob(m0):
    """The tray as the first guess's largest blob, when the flood fills found no edge between
    tray and table (a vignetted or blurred tray edge ramps into the table): the blob stands out
    from the border's colour with a sharp rim (soft blobs were dropped), covers at least 30% of
    the image, and nothing part-sized stands out outside it (or outside its convex outline,
    when it fills most of that or half of it). Returns (surface, scene) as parts_surface does,
    or None."""
    n, lbl, st, _ = cv2.connectedComponentsWithStats(m0, 8)
    if n < 2:
        return None
    k = 1 + int(np.argmax(st[1:, cv2.CC_STAT_AREA]))
    if st[k, cv2.CC_STAT_AREA] < 0.3 * m0.size:
        return None
    blob = (lbl == k).astype(np.uint8)
    filled = enclosed(blob) > 0
    # Parts lying across the tray's edge are not enclosed by it (a cluster reaching a vignetted
    # corner, whose dark rim does not stand out from the border): a part-sized blob lying mostly
    # inside the tray's convex outline is the tray's, and the outline is the tray's when the
    # blob fills most of it (trays are convex), or half of it with nothing part-sized outside
    # it (a tray lit to the table's colour in one place stands out round a bay there, and the
    # parts in the bay stand out on their own).
    hull = np.zeros_like(blob)
    cv2.fillConvexPoly(hull, cv2.convexHull(cv2.findNonZero(blob)), 1)
    hull = hull > 0
    total = float(m0.size)
    sized = [i for i in range(1, n) if i != k and part_sized(st[i, cv2.CC_STAT_AREA], total)]

    def in_hull(i):  # whether blob i lies mostly inside the outline
        x, y, bw, bh, a = st[i]
        return (hull[y:y + bh, x:x + bw] & (lbl[y:y + bh, x:x + bw] == i)).sum() >= 0.5 * a

    convex = filled.sum() >= 0.85 * hull.sum() or (
        filled.sum() >= 0.5 * hull.sum() and all(in_hull(i) for i in sized))
    if convex:
        filled |= hull
    for i in sized:
        x, y, bw, bh, a = st[i]
        piece = lbl[y:y + bh, x:x + bw] == i
        if (piece & ~filled[y:y + bh, x:x + bw]).sum() == 0:
            continue  # enclosed
        if not (convex and in_hull(i)):
            return None  # something part-sized stands out outside the tray
        filled[y:y + bh, x:x + bw] |= piece
    grow = np.ones((5, 5), np.uint8)
    surf = cv2.erode(filled.astype(np.uint8), grow) > 0
    scene = cv2.dilate((~filled).astype(np.uint8), grow) > 0
    return surf, scene


def tray_grown(m0, d0, level):
    """The first guess with its largest blob grown over the pixels above `level` (the border's
    noise) connected to it: a tray under a lighting ramp darkens at one end towards the table's
    colour, below the parts' threshold but not into the table's noise; the parts lying there
    are then inside the tray, not outside it."""
    n, lbl, st, _ = cv2.connectedComponentsWithStats(m0, 8)
    if n < 2:
        return m0
    k = 1 + int(np.argmax(st[1:, cv2.CC_STAT_AREA]))
    weak = cv2.morphologyEx((d0 > level).astype(np.uint8), cv2.MORPH_OPEN,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    return (m0 | reached(lbl == k, weak)).astype(np.uint8)


def reached(seed, weak):
    """Hysteresis: the 8-connected blobs of the `weak` mask that hold a pixel of `seed` (a
    boolean mask), as a boolean mask."""
    n, lbl = cv2.connectedComponents(weak, connectivity=8)
    hit = np.zeros(n, bool)
    hit[np.unique(lbl[seed])] = True
    hit[0] = False
    return hit[lbl]


def segment(img):
    """Foreground mask from an iterated local background; returns (mask, dist, threshold, where
    the first guess came from: "border", "split" (the whole image's two-class split),
    "surface" (the parts' surface in a wider scene) or "smooth" (a smooth field fitted to the
    surface), each pixel's Lab offset from the local background, the noise level of the
    distance, how many part-like blobs were set aside with the scene where it may be the
    parts' surface: set_aside, the smoothed image in Lab that the offset is taken of, and the
    scene: the pixels of surfaces other than the parts', or None)."""
    sigma = STRATEGY.get("smooth", 1.5)
    blur = cv2.GaussianBlur(img, (0, 0), sigma)
    lab = cv2.cvtColor(blur, cv2.COLOR_BGR2LAB).astype(np.float32)
    h, w = lab.shape[:2]
    fg = np.zeros((h, w), np.uint8)
    cell = max(16, min(h, w) // 5)
    mask, dist, thr = fg, None, 0.0
    diam = None
    # First guess of where the parts are, from the border's colour (trays rarely have parts all
    # along the edge): keeps big parts that fill most of a mesh cell out of the first local
    # background. Blobs with soft rims there are lighting (vignette, ramps), not parts, and stay
    # in the background.
    b = max(2, min(h, w) // 40)
    border = np.concatenate([lab[:b].reshape(-1, 3), lab[-b:].reshape(-1, 3),
                             lab[:, :b].reshape(-1, 3), lab[:, -b:].reshape(-1, 3)])
    d0 = contrast_to(lab, border)
    edge = np.ones((h, w), bool)
    edge[b:-b, b:-b] = False
    t0, t_border = threshold_of(d0, fg, d0[edge])
    m0 = guess_parts(d0, t0)
    guess, scene = "border", None
    band = None  # scene that may be the parts' surface after all (see set_aside)
    if m0.mean() < 0.005:
        # The border is no single surface (a photo's border holds the tray, its rim and the
        # table): its spread says nothing of the noise and left no first guess. The whole image's
        # split of the colour distance into two classes (Otsu) is the first guess instead, when
        # it found part-like blobs (three or more, none a surface of a tenth of the image).
        # Such surfaces that reach the border (the tray seen against the table, a reflection
        # band) are left out of the guess first: they belong to the scene, not to the parts.
        m1 = guess_parts(d0, otsu_level(d0))
        l1, blobs1, surface = surfaces_at_border(m1, b)
        for i in np.flatnonzero(surface):
            m1[l1 == i + 1] = 0
        blobs1 = blobs1[~surface]  # removing a component leaves the others as they were
        if (blobs1 >= 20).sum() >= 3 and blobs1.max() < 0.1 * m1.size:
            m0, guess = m1, "split"
    large = (surfaces_at_border(m0, b)[1] >= 0.1 * m0.size).any()
    if (guess == "border" and (m0.mean() > 0.3 or large)) or two_surfaces(border):
        # The border is of two colours, or most of the image stands out from it, or a surface
        # does (a blob of a tenth of the image, no part: parts are at most a twentieth of it,
        # part_sized; it need not reach the border: a tray lit from one side, its light half
        # the table's colour, stands out by its dark half alone, inside the table): the border's
        # colour is not the surface the parts lie on (a tray seen with the table around it, the
        # border a mix of both; where the mix's median lies between the two, tray and table
        # stand out from it alike and neither makes a blob of its own, and where nothing stood
        # out the whole image's two-class split takes the table's grain for parts).
        # When the image holds such a surface and other, empty ones, the guess is made against
        # that surface's colour and spread, and the others are scene: never background, never
        # parts. (Not when nothing stood out from a border of one colour: on real photos of steel
        # trays with reflections the local background found the parts better than a surface cut
        # out of the reflections. Their borders spread over many shades, not two: on the 18
        # real photos no border splits at more than 4.8 spreads.)
        found = parts_surface(img)
        if found is None:
            # no edge stopped the flood fills between tray and table (a vignetted tray's rim
            # darkens into a dark table): the blob that stood out from the border is the tray
            found = tray_blob(m0)
            # or it stood out only in part: its far side dims towards the table's colour, and
            # the parts lying there stand out from the table on their own, as if outside the
            # tray; the blob grown over what stands out from the table's noise holds them (20
            # bolts on a tray dim on one side counted 3)
            grown = tray_grown(m0, d0, t_border)
            if found is None:
                found = tray_blob(grown)
            elif (grown != m0).any():
                # Where the first blob was the tray, the grown one may reach further: a
                # vignetted tray's dark corners beyond the first one's outline. Those stay
                # scene (the grown blob may take in the tray's rim), but parts seen there are
                # parts left out of the count (two dark nuts in such corners: 20 for 22).
                wider = tray_blob(grown)
                if wider is not None:
                    band = wider[0] & found[1]
            if band is None and found is not None:
                # Where nothing reached further, the blob may be no tray at all: a tray filling
                # the view through a lens that darkens its corners to a fifth of the middle's
                # light, the lit middle standing out from the dark border, the parts in the
                # margin taken for the table's (4 of 6 such scenes counted short at 0.97). A
                # table beside a tray is seldom where parts lie: part-like blobs anywhere in the
                # scene are parts left out of the count. (Taking the margin for the surface
                # where a smooth field fitted to the surface explained it counted such scenes
                # exactly, and the grain of tables beside trays as parts: 1 counted 25.)
                band = found[1]
        if found is not None and found[0].any():
            surf, scene = found
            d0 = contrast_to(lab, lab[surf])
            t0, _ = threshold_of(d0, fg, d0[surf], scene)
            m0 = guess_parts(d0, t0)
            m0[scene] = 0
            guess = "surface"
    if guess == "border" and m0.mean() < 0.005 and h * w >= 2 * cell * cell:
        # Neither guess found anything: the first local background is a mesh of cells' median
        # colours, which takes in the parts' colour wherever a cluster of them fills a cell and
        # its neighbours (19 touching capsules under a lighting ramp with a dark band along one
        # border: the pile's middle vanished into the background, its rim counted 24). The
        # surface as one smooth field, fitted to the cells it explains, is the guess when what
        # stands out from it holds a blob of two cells' area or more; smaller parts leave the
        # mesh alone, as before (and a crop smaller than two cells holds no such pile).
        surf, fitted = smooth_surface(lab, max(8, min(h, w) // 12))
        d1 = contrast_map(lab, surf)
        m1 = guess_parts(d1, threshold_of(d1, fg, d1[fitted])[0])
        n1, _, st1, _ = cv2.connectedComponentsWithStats(m1, 8)
        if n1 > 1 and st1[1:, cv2.CC_STAT_AREA].max() >= 2 * cell * cell:
            m0, guess = m1, "smooth"
    n0, _, st0, _ = cv2.connectedComponentsWithStats(m0, 8)
    a0 = st0[1:, cv2.CC_STAT_AREA]
    a0 = a0[a0 >= 20]
    if len(a0) and m0.mean() < 0.7:
        diam = 2.0 * math.sqrt(float(np.median(a0)) / math.pi)
        grow = max(1, int(round(diam / 5.0)))
        fg = cv2.dilate(m0, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
    for _ in range(3):
        if scene is not None:
            fg = np.maximum(fg, scene.astype(np.uint8))
        bg = mesh_background(lab, fg, cell) if diam is None else masked_background(lab, fg, diam)
        dist = contrast_map(lab, bg)
        thr, t_low = threshold_of(dist, fg, scene=scene)
        strong = (dist > thr).astype(np.uint8)
        weak = (dist > max(t_low, 0.6 * thr)).astype(np.uint8)
        # hysteresis: weak pixels count where they connect to strong ones (soft part edges)
        mask = reached(strong > 0, weak).astype(np.uint8)
        if scene is not None:
            mask[scene] = 0
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, k)
        n, lbl, stats, _ = cv2.connectedComponentsWithStats(mask, 8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        areas = areas[areas >= 20]
        if not len(areas):
            break
        # a typical blob's diameter, at most twice the last pass's: where touching parts merged
        # into cluster blobs, the median blob is a cluster, and a background estimated over its
        # width (and the foreground grown by a fifth of it) loses the shading round the parts
        # (four touching washers of low contrast made the median: 6 for 7)
        wide = 2.0 * math.sqrt(float(np.median(areas)) / math.pi)
        diam = wide if diam is None else min(wide, 2.0 * diam)
        cell = int(np.clip(3.0 * diam, 16, max(16, min(h, w) // 2)))
        grow = max(1, int(round(diam / 5.0)))
        # Whatever the foreground encloses stays out of the next background estimate too: the
        # light centres of parts whose rims alone stood out, and the gaps inside clusters.
        fg = cv2.dilate(enclosed(mask), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
    aside = set_aside(blur, band, mask, thr) if band is not None and scene is not None else 0
    return mask, dist, thr, guess, lab - bg, t_low, aside, lab, scene


def median_blob_area(mask):
    """The median area of the mask's blobs of 20 px or more (None when there are none)."""
    _, _, st, _ = cv2.connectedComponentsWithStats(mask, 8)
    areas = st[1:, cv2.CC_STAT_AREA]
    areas = areas[areas >= 20]
    return float(np.median(areas)) if len(areas) else None


def local_contrast(blurred, k):
    """Each pixel's Lab distance from the median colour of its k x k neighbourhood (k odd) in
    the blurred BGR image: a local background that follows a glare spot's or a dim band's own
    light."""
    lab = cv2.cvtColor(blurred, cv2.COLOR_BGR2LAB)
    return contrast_map(lab.astype(np.float32), cv2.medianBlur(lab, k).astype(np.float32))


def set_aside(blur, band, mask, thr):
    """How many part-like blobs lie in `band`, scene that may be the parts' surface: against a
    local background (the median colour over 1.5 typical parts' widths, which follows the
    band's own light) they stand out above `thr` with a sharp rim (drop_soft_blobs), of half to
    twice the area of the median blob of the `mask`, clear of the image border."""
    a1 = median_blob_area(mask)
    if a1 is None or not band.any():
        return 0
    k = int(1.5 * 2.0 * math.sqrt(a1 / math.pi)) | 1
    d = local_contrast(blur, min(k, 255))
    cand = cv2.morphologyEx(((d > thr) & band).astype(np.uint8), cv2.MORPH_OPEN,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    sharp = drop_soft_blobs(fill_holes(cand, 0.6 * a1)[0], d, a1)
    _, _, st, _ = cv2.connectedComponentsWithStats(sharp, 8)
    h, w = mask.shape
    x, y, bw, bh, a = (st[1:, i] for i in range(5))
    inside = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
    return int(((a >= 0.5 * a1) & (a <= 2.0 * a1) & inside).sum())


def faint_blobs(mask, dist, t_noise):
    """What stands above the noise level `t_noise` away from the foreground `mask` (5 px clear of
    it), opened: connected components (n, labels, stats) of it, those touching the image border
    (3 px) dropped from the stats (their area set to 0)."""
    h, w = mask.shape
    near = cv2.dilate(mask, np.ones((5, 5), np.uint8))
    weak = ((dist > t_noise) & (near == 0)).astype(np.uint8)
    weak = cv2.morphologyEx(weak, cv2.MORPH_OPEN,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    n, lbl, st, _ = cv2.connectedComponentsWithStats(weak, 8)
    x, y, bw, bh = st[:, 0], st[:, 1], st[:, 2], st[:, 3]
    st[(x <= 3) | (y <= 3) | (x + bw >= w - 3) | (y + bh >= h - 3), cv2.CC_STAT_AREA] = 0
    return n, lbl, st


def faint_rings(mask, dist, thr, t_noise):
    """Nuts and washers of low contrast: a threshold taken between the noise and the parts'
    contrast misses parts of a colour near the tray's (dark nuts on a green tray among light
    ones). What stands above the noise level `t_noise`, away from the foreground `mask` (as
    segmented, glare included: a soft spot's halo can make a ring), is a part when it is a
    ring (one hole), compact (with its hole, at least 85% of its convex outline: a washer's
    ring alone, its hole half its width, fills 0.75 of it), of half to twice the median
    blob's area, clear of the image border, and reaching 0.6 of the threshold `thr`. Over
    4,440 generated trays, such blobs above 0.6 of the threshold were missed parts 20 times of
    20; the first blob of another kind that was a ring lay at 0.55 of it, with a soft rim.
    Returns (their mask, how many rings failed only for compactness, at 60% of their convex
    outline or more)."""
    rings = np.zeros_like(mask)
    loose = 0
    a_med = median_blob_area(mask)
    if a_med is None:
        return rings, loose
    n, lbl, st = faint_blobs(mask, dist, t_noise)
    for i in range(1, n):
        x, y, bw, bh, a = st[i]
        if not 0.5 * a_med <= a <= 2.0 * a_med:
            continue
        blob = lbl[y:y + bh, x:x + bw] == i
        if float(np.percentile(dist[y:y + bh, x:x + bw][blob], 95)) < 0.6 * thr:
            continue
        # its holes: the regions of the blob's complement that do not reach the box's edge
        if cv2.connectedComponents((~np.pad(blob, 1)).astype(np.uint8), connectivity=4)[0] != 3:
            continue
        b8 = blob.astype(np.uint8)
        hull = cv2.contourArea(cv2.convexHull(cv2.findNonZero(b8)))
        filled = float(enclosed(b8).sum())
        if filled < 0.85 * hull:
            loose += filled >= 0.6 * hull
            continue
        rings[y:y + bh, x:x + bw][blob] = 1
    return rings, loose


def edge_width(blob, d, grad):
    """A blob's edge width in px: its plateau contrast (95th percentile of the contrast map `d`
    over the blob) over the steepest slope of `d` (80th percentile of `grad`) on a band 2 px
    either side of its outline. Measured at the edge's steepest, it does not depend on how far
    the blob stands above a threshold (an outline drawn at the noise level lies on the edge's
    foot)."""
    b8 = blob.astype(np.uint8)
    k = np.ones((5, 5), np.uint8)
    g = grad[(cv2.dilate(b8, k) - cv2.erode(b8, k)) > 0]
    if not g.size:
        return float("inf")
    return float(np.percentile(d[blob], 95)) / max(float(np.percentile(g, 80)), 1e-6)


def faint_parts(mask, dist, thr, t_noise):
    """Parts without a hole, of low contrast where others stand out far more: pale tablets on a
    dark steel tray with a broad bright reflection across it contrast twice as much with the
    dark steel as with the reflection, and the threshold, taken half way to the parts' contrast,
    lies above the ones in the reflection. What stands above the noise level away from the
    foreground `mask` (faint_blobs) is such a part when it has a typical part's shape: of 0.6 to
    1.6 times its area, at least 85% of its convex outline, elongated as much to within 30%,
    with an edge no more than 1.5 times as wide (edge_width; glare and shading fade out over
    many pixels). The typical part: the foreground's blobs of a quarter of the 90th percentile's
    area or more (specks and the reflection's scraps left out), their median area, and the
    median elongation and edge width of those near it. It is taken when it reaches 0.6 of the
    threshold `thr`, as faint_rings' rings; a blob of a part's shape at 0.45 to 0.6 of it is a
    part or a stain: the count may be missing it (pale discs missed in a reflection lay at 0.51
    to 0.59; over 1,500 harness trays two round glare spots among nuts lay at 0.35 and 0.38).
    Returns (the mask of those taken, how many such doubtful blobs there are)."""
    found = np.zeros_like(mask)
    h, w = mask.shape
    n_m, lbl_m, st_m, _ = cv2.connectedComponentsWithStats(mask, 8)
    ids = [i for i in range(1, n_m) if st_m[i, cv2.CC_STAT_AREA] >= 20]
    if len(ids) < 3:
        return found, 0
    areas = st_m[ids, cv2.CC_STAT_AREA].astype(np.float64)
    a_med = float(np.median(areas[areas >= 0.25 * np.percentile(areas, 90)]))
    grad = edge_gradient(dist)

    def shape(lb, st, i):  # (elongation, solidity, edge width, 95th percentile contrast)
        x, y, bw, bh = st[i, :4]
        x0, y0, x1, y1 = max(0, x - 3), max(0, y - 3), min(w, x + bw + 3), min(h, y + bh + 3)
        blob = lb[y0:y1, x0:x1] == i
        b8 = blob.astype(np.uint8)
        pts = cv2.findNonZero(b8)
        rw, rh = cv2.minAreaRect(pts)[1]
        hull = cv2.contourArea(cv2.convexHull(pts))
        d = dist[y0:y1, x0:x1]
        return (max(rw, rh) / max(1.0, min(rw, rh)), float(enclosed(b8).sum()) / max(hull, 1.0),
                edge_width(blob, d, grad[y0:y1, x0:x1]), float(np.percentile(d[blob], 95)))

    typical = [shape(lbl_m, st_m, i) for i in ids
               if 0.6 * a_med <= st_m[i, cv2.CC_STAT_AREA] <= 1.6 * a_med]
    if not typical:
        return found, 0
    e_ref = float(np.median([t[0] for t in typical]))
    w_ref = max(2.0, float(np.median([t[2] for t in typical])))
    n, lbl, st = faint_blobs(mask, dist, t_noise)
    doubtful = 0
    for i in range(1, n):
        if not 0.6 * a_med <= st[i, cv2.CC_STAT_AREA] <= 1.6 * a_med:
            continue
        el, solid, width, top = shape(lbl, st, i)
        if solid < 0.85 or abs(el / e_ref - 1.0) > 0.3 or width > 1.5 * w_ref:
            continue
        if top < 0.6 * thr:
            doubtful += top >= 0.45 * thr
            continue
        x, y, bw, bh = st[i, :4]
        found[y:y + bh, x:x + bw][lbl[y:y + bh, x:x + bw] == i] = 1
    return found, doubtful


def enclosed(mask):
    """The mask with every hole filled (all that the background outside cannot reach)."""
    h, w = mask.shape
    pad = np.zeros((h + 2, w + 2), np.uint8)
    pad[1:-1, 1:-1] = mask > 0
    reach = pad.copy()
    ff = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(reach, ff, (0, 0), 2)
    return (reach[1:-1, 1:-1] != 2).astype(np.uint8)


def edge_gradient(dist):
    """The slope of a contrast map per pixel (Sobel magnitude scaled to contrast units per px):
    with a blob's contrast it gives its edge width."""
    gx = cv2.Sobel(dist, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(dist, cv2.CV_32F, 0, 1)
    return np.sqrt(gx * gx + gy * gy) / 8.0


def blob_rims(mask, dist, typical_area=None):
    """Every blob's rim as drop_soft_blobs and skirted judge it. Returns (limit, [(x, y, area,
    the blob's pixels in its box, its rim pixels in its box, the contrast map's slope on the
    rim, the blob's median contrast)]): the limit is the widest edge (contrast / slope, px) a
    part's rim has, a fifth of a typical part's diameter and at least 6 px (the typical area,
    when not given, the median of the blobs of 20 px or more)."""
    n, lbl, stats, _ = cv2.connectedComponentsWithStats(mask, 8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if typical_area is None:
        typical_area = float(np.median(areas[areas >= 20] if (areas >= 20).any() else areas))
    limit = max(6.0, 0.2 * (2.0 * math.sqrt(typical_area / math.pi)))
    grad = edge_gradient(dist)
    rim = mask - cv2.erode(mask, np.ones((3, 3), np.uint8))
    out = []
    for i in range(1, n):
        x, y, w, h, a = stats[i]
        sub = lbl[y:y + h, x:x + w] == i
        on = sub & (rim[y:y + h, x:x + w] > 0)
        out.append((x, y, a, sub, on, grad[y:y + h, x:x + w][on],
                    float(np.median(dist[y:y + h, x:x + w][sub]))))
    return limit, out


def drop_soft_blobs(mask, dist, typical_area=None):
    """Removes components without a sharp edge: glare spots and light pools fade out over many
    pixels, a part's rim is as sharp as the optics (edge width = contrast / edge gradient, in px,
    compared with a fifth of a typical part's diameter, and at least 6 px)."""
    if not mask.any():
        return mask
    limit, rims = blob_rims(mask, dist, typical_area)
    out = mask.copy()
    for x, y, _, sub, _, edge, c in rims:
        # the sharpest fifth of the rim: a part merged with a glare pool keeps its own rim
        if edge.size and c / max(float(np.percentile(edge, 80)), 1e-6) > limit:
            out[y:y + sub.shape[0], x:x + sub.shape[1]][sub] = 0
    return out


def skirted(mask, dist, typical_area):
    """Blobs with a soft skirt: a part lying in a glare spot keeps its own sharp rim inside the
    spot's soft fringe, so its blob was kept, but over half of the blob's outline fades out
    wider than drop_soft_blobs' edge width. Returns (mask of those blobs, mask of the sharp
    stretches of their outlines)."""
    out = np.zeros(mask.shape, np.uint8)
    sharp = np.zeros(mask.shape, np.uint8)
    limit, rims = blob_rims(mask, dist, typical_area)
    for x, y, a, sub, on, edge, c in rims:
        if a < 0.5 * typical_area:
            continue
        soft = c / np.maximum(edge, 1e-6) > limit
        if edge.size and soft.mean() >= 0.5:
            out[y:y + sub.shape[0], x:x + sub.shape[1]][sub] = 1
            ys, xs = np.nonzero(on)
            sharp[y + ys[~soft], x + xs[~soft]] = 1
    return out, sharp


def parts_in_skirts(work, mask, dist, thr):
    """A part inside a glare spot whose blob was kept for the part's sharp rim (skirted): the
    part is searched for against the spot's own light (parts_in_glare), and replaces the blob
    when the parts found account for the blob's sharp rim (90% of it within 3 px of them): a
    sharp stretch far from them is another part that the spot's light hid. Returns (mask with
    the blobs replaced, how many blobs were)."""
    _, _, st, _ = cv2.connectedComponentsWithStats(mask, 8)
    areas = st[1:, cv2.CC_STAT_AREA]
    if len(areas) < 3:
        return mask, 0
    typical_area = float(np.median(areas))
    skirt, sharp = skirted(mask, dist, typical_area)
    if not skirt.any():
        return mask, 0
    _, lbl, st = cv2.connectedComponentsWithStats(skirt, 8)[:3]
    found, held = parts_in_glare(work, (lbl, st), mask * (1 - skirt), typical_area, thr)
    if not held:
        return mask, 0
    near = cv2.dilate(found, np.ones((7, 7), np.uint8)) > 0
    def accounted(j):  # share of blob j's sharp rim near the parts found (none: not theirs)
        rim = near[(lbl == j) & (sharp > 0)]
        return rim.size > 0 and rim.mean() >= 0.9

    hit = [j for j in np.unique(lbl[found > 0]) if j and accounted(j)]
    if not hit:
        return mask, 0
    gone = np.isin(lbl, hit)
    return np.where(gone, found, mask).astype(np.uint8), len(hit)


def parts_in_glare(work, dropped, kept, kept_area, thr, least=None):
    """Parts lying inside a glare spot: the spot and the part in it make one blob whose outer
    rim is the glare's soft fringe, so the blob was dropped as lighting. Against a local
    background that follows the spot (the median colour over 1.5 parts' widths) a part inside
    it stands out with a sharp rim of its own; glare alone leaves only a soft residue. Returns
    the mask of such parts (part-sized, half of `least`, the smallest typical area, up to 2.5
    typical areas `kept_area`, rim as sharp as drop_soft_blobs asks) around the part-sized
    `dropped` blobs ((labels, stats) of the dropped pixels), and how many of those blobs held
    one."""
    least = kept_area if least is None else min(least, kept_area)
    lbl, st = dropped
    out = np.zeros(lbl.shape, np.uint8)
    diam = 2.0 * math.sqrt(kept_area / math.pi)
    k = int(1.5 * diam) | 1
    if k < 5:
        return out, 0
    h, w = lbl.shape
    held = 0
    # a piece beside a kept one is that part's soft end (a bolt's head in shade), not a part
    reach = 2 * max(3, int(diam / 6)) + 1
    near = cv2.dilate(kept, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (reach, reach)))
    for i in range(1, len(st)):
        x, y, bw, bh, a = st[i]
        if a < 0.5 * kept_area:
            continue
        x0, y0 = max(0, x - k), max(0, y - k)
        x1, y1 = min(w, x + bw + k), min(h, y + bh + k)
        sm = cv2.GaussianBlur(work[y0:y1, x0:x1], (0, 0), STRATEGY.get("smooth", 1.5))
        d = local_contrast(sm, k)
        inside = cv2.dilate((lbl[y0:y1, x0:x1] == i).astype(np.uint8), np.ones((5, 5), np.uint8))
        cand = ((d > thr) & (inside > 0)).astype(np.uint8)
        cand = cv2.morphologyEx(cand, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
        cand = fill_holes(cand, 0.6 * kept_area)[0]
        m, cl, cs, _ = cv2.connectedComponentsWithStats(cand, 8)
        found = False
        for j in range(1, m):
            if not 0.5 * least <= cs[j, cv2.CC_STAT_AREA] <= 2.5 * kept_area:
                continue
            one = (cl == j).astype(np.uint8)
            if (near[y0:y1, x0:x1][one > 0]).any():
                continue
            if drop_soft_blobs(one, d, kept_area).any():  # its own rim is sharp
                out[y0:y1, x0:x1][one > 0] = 1
                found = True
        held += found
    return out, held


def ring_cut(sub, core, sides=(0, 0, 0, 0)):
    """Whether `core` cuts open the one round hole that the blob `sub` encloses (a ring, whose
    hole no longer enclosed would not count it). `sides` (top, bottom, left, right): where the
    blob's box lies on the image's border, which closes a ring cut off by it (a nut at the
    border shows an arc round its open hole)."""
    if any(sides):
        sub, core = (np.pad(m.astype(np.uint8), 1) for m in (sub, core))
        for on, line in zip(sides, (np.s_[:1, :], np.s_[-1:, :], np.s_[:, :1], np.s_[:, -1:])):
            if on:
                sub[line] = 1
                core[line] = 1
    s8 = sub.astype(np.uint8)
    hole = enclosed(s8) - s8
    n, _, st, _ = cv2.connectedComponentsWithStats(hole, 4)
    if n != 2 or st[1, cv2.CC_STAT_AREA] < 12:
        return False
    _, _, bw, bh, ha = st[1]
    if ha < 0.5 * math.pi * (0.5 * max(bw, bh)) ** 2:  # not round: a gap, not a hole
        return False
    c8 = core.astype(np.uint8)
    return int(enclosed(c8).sum()) - int(c8.sum()) < 0.5 * ha


def convex(sub):
    """Whether the blob `sub` fills at least 90% of its convex hull (its outer outline's: a ring
    is as convex as a disc)."""
    cs, _ = cv2.findContours(sub.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    c = max(cs, key=cv2.contourArea)
    return cv2.contourArea(c) >= 0.9 * cv2.contourArea(cv2.convexHull(c))


def shape_mask(mask, dist, thr):
    """Each component cut at half its own contrast: a blurred edge's true place, without the
    blur halo and the cast shadow that widen the necks between touching parts."""
    n, lbl, stats, _ = cv2.connectedComponentsWithStats(mask, 8)
    out = np.zeros_like(mask)
    areas = stats[1:, cv2.CC_STAT_AREA]
    one = float(np.median(areas[areas >= 20])) if (areas >= 20).any() else 0.0
    for i in range(1, n):
        x, y, w, h, a = stats[i]
        sub = lbl[y:y + h, x:x + w] == i
        d = dist[y:y + h, x:x + w]
        vals = d[sub & (d > thr)]
        half = 0.5 * float(np.median(vals)) if vals.size else thr
        level = max(thr, half)
        core = sub & (d >= level)
        lone = 0.5 * one <= a <= 1.6 * one  # of one part's size
        if core.sum() < 0.3 * a:
            core = sub
        elif level > 0.6 * thr and core.sum() < 0.7 * a and lone and convex(sub):
            # A lone part of little contrast (a dark washer on a dark tray, a coin under a
            # lighter patch of background) lies largely between the weak and strong thresholds
            # that took it in; cut at the strong one, it fell into fragments (half a coin) that
            # the thin and soft-rim rules then dropped. A convex blob of one part's size has no
            # neck to cut: it keeps what the hysteresis' weak level (0.6 thr) took in.
            core = sub & (d >= max(0.6 * thr, half))
        elif a <= 1.6 * one and ring_cut(sub, core, (y == 0, y + h == mask.shape[0], x == 0,
                                           x + w == mask.shape[1])):
            # a washer whose wall is dimmer on one side stays a ring (of any smaller size: a
            # nut among larger bolts)
            core = sub
        out[y:y + h, x:x + w][core] = 1
    return out


def fill_holes(mask, max_area):
    """Fills the holes of parts (nuts, washers): enclosed background that is small and round and
    convex. Gaps enclosed by several touching parts have concave sides and stay open, so that
    the parts around them keep their necks. Returns (filled mask, [(x, y)] centres of the round
    holes: each is one holed part, however the parts around it touch)."""
    inv = (1 - mask).astype(np.uint8)
    n, lbl, stats, cents = cv2.connectedComponentsWithStats(inv, 4)
    _, parts, part_stats, _ = cv2.connectedComponentsWithStats(mask, 8)
    h, w = mask.shape
    out = mask.copy()
    holes = []
    for i in range(1, n):
        x, y, ww, hh, a = stats[i]
        if x <= 0 or y <= 0 or x + ww >= w or y + hh >= h or a > 3 * max_area:
            continue
        large = a > max_area
        if large:
            # a larger part's hole (two sizes in one tray): still well inside the part
            # around it, the part (or the touching parts) enclosing it at least 1.7 times its area
            around = parts[y - 1:y + hh + 1, x - 1:x + ww + 1]
            ids = around[around > 0]
            if not ids.size or a > 0.6 * part_stats[np.bincount(ids).argmax(), cv2.CC_STAT_AREA]:
                continue
        if a >= 12:
            hole = (lbl[y:y + hh, x:x + ww] == i).astype(np.uint8)
            cs, _ = cv2.findContours(hole, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            c = max(cs, key=cv2.contourArea)
            hull = cv2.contourArea(cv2.convexHull(c))
            if hull > 0 and a / hull < 0.85:
                continue
            # round (not a sliver between parts): its area fills most of its enclosing circle
            (_, _), rad = cv2.minEnclosingCircle(c)
            if a >= 0.5 * math.pi * rad * rad:
                holes.append((float(cents[i][0]), float(cents[i][1]), float(rad)))
            elif large:
                continue
        out[lbl == i] = 1
    return out, holes


def slits(raw, filled):
    """The slit-shaped gaps that filling closed: background enclosed by the foreground (`raw`
    before, `filled` after fill_holes) at least 6 px in area and three times as long as it is
    wide. A part's own holes are round; a slit is the gap left between two parts lying side by
    side, so a piece enclosing one may be two parts."""
    gaps = ((raw == 0) & (filled > 0)).astype(np.uint8)
    n, lbl, st, _ = cv2.connectedComponentsWithStats(gaps, 4)
    out = np.zeros(gaps.shape, bool)
    for j in range(1, n):
        if st[j, cv2.CC_STAT_AREA] < 6:
            continue
        ys, xs = np.nonzero(lbl == j)
        (_, _), (a, b), _ = cv2.minAreaRect(np.stack([xs, ys], axis=1).astype(np.float32))
        if max(a, b) >= 3.0 * max(1.0, min(a, b)):
            out |= lbl == j
    return out


def rim_softness(dist, grad, outline, sel):
    """Edge width in px of the pixels `sel`: their median contrast over the gradient on the
    sharpest fifth of their outline. A part's rim is as sharp as the optics, glare and shading
    fade over many pixels."""
    rim = grad[sel & outline]
    if not rim.size:
        return 0.0
    return float(np.median(dist[sel])) / max(float(np.percentile(rim, 80)), 1e-6)


def softer(s, factor, soft_med):
    """Whether piece `s` has a rim `factor` times as wide as the median piece's (`soft_med`),
    and wider than 4 px (where every rim is sharp, twice as wide is still sharp)."""
    return s["soft"] > factor * soft_med and s["soft"] > 4.0


def glare_spots(work, fg, dist, segs, soft_med):
    """Pieces that are a specular highlight, not a part: a rim softer than most parts' (1.5 times
    the median edge width; 1.3 times for a faint piece, its median contrast under half the
    median piece's: two faint spots among bolts measured 1.31 and 1.49, and no part of the
    3,450 harness and check trays is taken by it), lighter than the tray around it (a highlight
    only adds light), no larger than a part and peaked like a light spot (its brightest
    twentieth stands a third above its median contrast) where a part's face is about level."""
    if len(segs) < 2:
        return []
    a_med = float(np.median([s["area"] for s in segs]))

    def contrast(s):
        return dist[s["pts"][:, 1].astype(int), s["pts"][:, 0].astype(int)]

    level = float(np.median([np.median(contrast(s)) for s in segs]))
    peaked = []
    for s in segs:
        if s["holed"] or s["area"] > 1.3 * a_med:
            continue
        xs, ys = s["pts"][:, 0].astype(int), s["pts"][:, 1].astype(int)
        v = contrast(s)
        faint = float(np.median(v)) < 0.5 * level
        if not softer(s, 1.3 if faint else 1.5, soft_med):
            continue
        if float(np.percentile(v, 95)) >= 1.33 * float(np.median(v)):
            peaked.append((s, xs, ys))
    if not peaked:
        return []
    L = cv2.cvtColor(work, cv2.COLOR_BGR2LAB)[:, :, 0].astype(np.float32)
    h, w = fg.shape
    around = cv2.dilate((fg > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    out = []
    for s, xs, ys in peaked:
        x, y, bw, bh = s["box"]
        pad = max(4, int(0.5 * max(bw, bh)))
        x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(w, x + bw + pad), min(h, y + bh + pad)
        ring = ~around[y0:y1, x0:x1]
        if ring.sum() < 10:
            continue
        if float(np.median(L[ys, xs])) > float(np.median(L[y0:y1, x0:x1][ring])):
            out.append(s)
    return out


def holed_parts(mask, raw, holes, dist):
    """One part per round hole, bounded by its own rim: a disc around the hole out to where the
    part ends (the lower third of the rim distances along 32 rays, so that neighbours touching
    on up to two thirds of the rim do not widen it; x1.15 takes in a nut's corners). Returns
    (pseudo-segments, the mask without those discs, so that parts without a hole touching
    holed ones (bolts) are still found in what is left, and whether the holes were all gaps
    between packed parts)."""
    h, w = mask.shape
    rest = mask.copy()
    dt = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    dt_raw = cv2.distanceTransform((raw > 0).astype(np.uint8), cv2.DIST_L2, 5)
    ang = np.linspace(0, 2 * math.pi, 32, endpoint=False)
    ca, sa = np.cos(ang), np.sin(ang)
    grad = edge_gradient(dist)
    outline = (mask > 0) & (cv2.erode(mask, np.ones((3, 3), np.uint8)) == 0)
    found = []
    for (hx, hy, hr) in holes:
        reach = []
        for c, s in zip(ca, sa):
            r = hr + 1.0
            while r < 8.0 * hr + 10:
                x, y = int(round(hx + r * c)), int(round(hy + r * s))
                if x < 0 or y < 0 or x >= w or y >= h or mask[y, x] == 0:
                    break
                r += 0.5
            reach.append(r)
        found.append((hx, hy, hr, 1.15 * float(np.percentile(reach, 33))))
    # A gap between three touching parts can pass for a small round hole: much smaller than
    # the typical hole (area under a third of the median hole's), and the rays from it run on
    # through the parts around it (over four times its radius; a nut or a washer is about
    # twice its hole's, a fender washer up to four times). A small hole in a small part of a
    # mixed tray keeps its own part's proportions.
    if len(found) >= 3:
        med = float(np.median([f[2] for f in found]))
        found = [f for f in found if f[2] >= 0.58 * med or f[3] <= 4.0 * f[2]]
    # Where the holes are all such gaps (discs packed in a block: no nut or washer to set the
    # median) the typical one's rays run on past 8 of its radii (12 to 15 in a block of discs,
    # where a ring's part reaches 2 to 4, and up to 8 through the neighbours of a nut in a row of
    # touching ones whose hole the blur has narrowed): then every hole that reaches as far is a
    # gap.
    packed = bool(found) and float(np.median([f[3] / f[2] for f in found])) > 8.0
    if packed:
        found = [f for f in found if f[3] <= 8.0 * f[2]]
    # Holes of one size in one convex piece are marks on one part (a die's pips, a button's
    # holes), not rings: parts touching one another leave notches in their outline (two touching
    # rings, about a part's radius deep: over 1.1 hole radii on the generated trays), a die's
    # face leaves none. That part is counted by its outline with the parts without a hole. (Holes
    # reaching into each other's part are no sign: overlapping rings on the generated trays lie
    # 2.7 hole radii apart, a die's pips 3.5 to 4.5.)
    _, cc = cv2.connectedComponents(mask, connectivity=8)
    by_piece = {}
    for f in found:
        by_piece.setdefault(int(cc[int(round(f[1])), int(round(f[0]))]), []).append(f)
    marks = set()
    for c, fs in by_piece.items():
        med = float(np.median([f[2] for f in fs]))
        if c == 0 or len(fs) < 2 or not all(0.7 * med <= f[2] <= 1.4 * med for f in fs):
            continue
        if deepest_notch(cc == c) < 0.5 * med:
            marks.update(id(f) for f in fs)
    found = [f for f in found if id(f) not in marks]
    # A gap enclosed by several touching holed parts (four nuts in a square) can be round: its
    # rim is then their bodies. The holes whose parts are most like a holed part (part radius
    # over hole radius lowest; a gap's rays run on through the filled parts around it) are
    # taken first, and a hole whose rim lies for the most part inside parts already taken is
    # such a gap.
    taken = []
    for (hx, hy, hr, rad) in sorted(found, key=lambda f: f[3] / max(f[2], 1.0)):
        rim = np.stack([hx + (hr + 1.5) * ca, hy + (hr + 1.5) * sa], axis=1)
        inside = np.zeros(len(rim), bool)
        for (tx, ty, _, trad) in taken:
            inside |= np.hypot(rim[:, 0] - tx, rim[:, 1] - ty) < trad
        if inside.mean() < 0.5:
            taken.append((hx, hy, hr, rad))
    segs = []
    parts = []
    owners = [int(cc[int(round(hy)), int(round(hx))]) for (hx, hy, _, _) in taken]  # pieces
    for (hx, hy, hr, rad), c in zip(taken, owners):
        disc = np.zeros_like(mask)
        cv2.circle(disc, (int(round(hx)), int(round(hy))), int(math.ceil(rad)), 1, -1)
        piece = cc == c if c and owners.count(c) == 1 and hr >= 0.25 * rad else None
        if piece is not None and deepest_notch(piece) < 0.5 * hr:
            # The only ring's hole in a piece without a notch makes the whole piece its part,
            # however far it reaches beyond the ring round the hole (a block whose hole lies off
            # its centre, a tube with a hole across it): parts touching leave notches. Only for
            # a ring's hole, over a quarter of the reach round it (0.3 or more on the blocks and
            # tubes seen; a relief on a coin, 0.12 to 0.15 on euro coins, says nothing of the
            # coin touching it), and not over a rim twice as soft as the ring's or more (a glare
            # spot beside it: 3 to 4 times on the generated trays, 1.7 at most on the blocks).
            ring = (disc > 0) & (mask > 0)
            beyond = piece & ~ring
            soft_ring = rim_softness(dist, grad, outline, ring)
            soft_beyond = rim_softness(dist, grad, outline, beyond) if beyond.any() else 0.0
            if soft_beyond <= 2.0 * soft_ring:
                disc = piece.astype(mask.dtype)
        part = (disc > 0) & (mask > 0)
        if part.any():
            rest[disc > 0] = 0
            parts.append([hx, hy, rad, part])
    # A hole off its part's centre (a relief or an imprint on a coin or a tablet that did not
    # stand out) leaves the far side of the part outside the disc: a crescent hugging it (thin,
    # running along the disc, no farther from the hole than its part's far rim could be, and
    # making a convex whole with the disc) is the same part.
    if parts:
        n, lbl, st, _ = cv2.connectedComponentsWithStats(rest, 8)
        dt_rest = cv2.distanceTransform(rest, cv2.DIST_L2, 5)
        for i in range(1, n):
            x, y, bw, bh, _ = st[i]
            sub = lbl[y:y + bh, x:x + bw] == i
            ys, xs = np.nonzero(sub)
            xs, ys = xs + x, ys + y
            thin = float(dt_rest[ys, xs].max())
            for pt in parts:
                hx, hy, rad, part = pt
                r = np.hypot(xs - hx, ys - hy)
                if r.min() > rad + 2.0 or r.max() > 2.2 * rad or thin > 0.5 * rad:
                    continue
                # a crescent runs along the disc (a neighbour's piece cut off by it is squat)
                (_, _), (rw, rh), _ = cv2.minAreaRect(np.stack([xs, ys], axis=1).astype(np.float32))
                if max(rw, rh) < 5.0 * thin:
                    continue
                piece = lbl == i
                both = part | piece
                pts = cv2.findNonZero(both.astype(np.uint8))
                if both.sum() >= 0.92 * cv2.contourArea(cv2.convexHull(pts)):
                    pt[3] = both
                    rest[piece] = 0
                    break
    for (hx, hy, rad, part) in parts:
        ys, xs = np.nonzero(part)
        segs.append({"soft": rim_softness(dist, grad, outline, part), "comp": -1 - len(segs), "area": int(xs.size),
                     "thick": float(dt[part].max()), "wall": float(dt_raw[part].max()),
                     "raw": int((raw[part] > 0).sum()), "holes": 1, "holed": True,
                     "box": (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                             int(ys.max() - ys.min() + 1)),
                     "pts": np.stack([xs, ys], axis=1).astype(np.float32)})
    return segs, rest, packed


def deepest_notch(piece):
    """The depth (px) of the deepest notch in a piece's outline (its largest convexity defect;
    0 for a convex piece). `piece` is a boolean mask."""
    rim = max(cv2.findContours(piece.astype(np.uint8), cv2.RETR_EXTERNAL,
                               cv2.CHAIN_APPROX_NONE)[0], key=cv2.contourArea)
    defects = cv2.convexityDefects(rim, cv2.convexHull(rim, returnPoints=False))
    return 0.0 if defects is None else float(defects[:, 0, 3].max()) / 256.0


def dt_peaks(dt, min_rel, min_height=0.0):
    """Significant maxima of a component's distance transform: a maximum counts when it rises
    above the saddle joining it to a higher one by at least `min_rel` of its height (and 1.5 px),
    and it is at least `min_height` high (arcs of cut rings and shafts are thinner than parts).
    Level sets from the top down; returns [(y, x, height)]."""
    top = float(dt.max())
    if top <= 0:
        return []
    peaks = []  # [y, x, height, alive]
    step = max(0.5, top / 40.0)
    level = top
    while level > 0.5:
        n, lbl = cv2.connectedComponents((dt >= level).astype(np.uint8), connectivity=8)
        owners = {}
        for p in peaks:
            if p[3]:
                owners.setdefault(int(lbl[p[0], p[1]]), []).append(p)
        for r in range(1, n):
            group = owners.get(r, [])
            if not group:
                region = lbl == r
                yx = np.unravel_index(np.argmax(np.where(region, dt, -1)), dt.shape)
                peaks.append([int(yx[0]), int(yx[1]), float(dt[yx]), True])
            elif len(group) > 1:
                group.sort(key=lambda p: -p[2])
                for p in group[1:]:
                    if p[2] - level < max(1.5, min_rel * p[2]) or p[2] < min_height:
                        p[3] = False  # a bump on a higher part's flank, not a part
                    else:
                        p[3] = "kept"
        level -= step
    return [(p[0], p[1], p[2]) for p in peaks if p[3]]


def soft_outlined(s, ref):
    """whether a piece's outline is soft over most of its length, as glare's is: its softer
    30th percentile (soft_lo) over three times ref, the median piece's rim softness"""
    return s.get("soft_lo", 0.0) > 3.0 * ref


def by_blob(segs):
    """the pieces grouped by the blob (connected component) they were cut from, in order"""
    groups = {}
    for s in segs:
        groups.setdefault(s["comp"], []).append(s)
    return list(groups.values())


def join_shaft_pieces(markers, mask, dt):
    """Joins a shaft's pieces to the part they belong to. A shaft of even width is a flat ridge
    of the distance transform, and a slight narrowing along it (a highlight eating its edge)
    makes a second maximum, so the watershed gives the shaft's end a piece of its own, cut
    across the shaft. Such a piece is much thinner than its neighbour (under 0.65 of its
    inscribed radius) and the cut nearly as thick as the piece (it rises by under 0.35 of its
    height above it), or it is itself a shaft (over twice as long as wide, up to 0.8 times as
    thick as its neighbour) met by a cut at least half as thick; either way it runs along its
    neighbour's length when that one is long. A part touching another meets it at a neck much
    thinner than itself, and two parts lying side by side are each as thick as a part: they stay
    apart. Each thin piece joins one neighbour at most. Thickness is measured clear of the cuts,
    where the neighbour widens the foreground; a piece thin only by that measure that is itself
    a head and a shaft, narrowing away from the cut, is a whole part touching the other at its
    head and stays apart. Returns (the markers with such pieces joined, the labels of joined
    pieces that took in a piece with a head at one end: a whole bolt touching another part with
    its shaft's end may have been joined as that part's shaft)."""
    ys, xs = np.nonzero((markers == -1) & (mask > 0))
    if not len(ys):
        return markers, set()
    # the two labels on either side of each boundary pixel (of its 8 neighbours)
    pad = np.pad(markers, 1)
    lo = np.full(len(ys), np.iinfo(np.int32).max)
    hi = np.full(len(ys), -1)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            v = pad[ys + 1 + dy, xs + 1 + dx]
            lo = np.where(v >= 2, np.minimum(lo, v), lo)
            hi = np.where(v >= 2, np.maximum(hi, v), hi)
    cuts = {}  # (label, label): the highest distance along the boundary between them
    for a, b, d in zip(lo, hi, dt[ys, xs]):
        if b >= 2 and a != b:
            cuts[(int(a), int(b))] = max(cuts.get((int(a), int(b)), 0.0), float(d))
    top = np.zeros(int(markers.max()) + 1)
    inside = markers >= 2
    np.maximum.at(top, markers[inside], dt[inside])
    # a piece's own thickness: its deepest point whose inscribed circle stays clear of the cuts.
    # At a cut the part beyond widens the foreground, so a shaft's end touching another part's
    # head is deepest at that cut, as thick as a head there
    to_cut = cv2.distanceTransform((markers != -1).astype(np.uint8), cv2.DIST_L2, 3)
    clear = inside & (to_cut > dt)
    own = np.zeros_like(top)
    np.maximum.at(own, markers[clear], dt[clear])
    own = np.where(own > 0, own, top)
    area = np.bincount(markers[inside], minlength=len(top))
    axes = {}
    coords = {}
    piece_dt = []  # the pieces' inscribed radii with the cuts as their edges, when first needed

    def pixels(lab):
        """(ys, xs) of a piece's pixels, found once per piece (a scan of the whole image)"""
        if lab not in coords:
            coords[lab] = np.nonzero(markers == lab)
        return coords[lab]

    def axis(lab):
        """(direction in rad, elongation: major over minor spread) of a piece's pixels"""
        if lab not in axes:
            py, px = pixels(lab)
            c = np.cov(np.stack([px, py]).astype(np.float64)) if len(px) > 2 else np.eye(2)
            ev, vec = np.linalg.eigh(c)
            axes[lab] = (math.atan2(vec[1, 1], vec[0, 1]),
                         math.sqrt(max(ev[1], 1e-9) / max(ev[0], 1e-9)))
        return axes[lab]

    def whole_part(lab, other):
        """whether a piece is itself a part with a head at its cut with other and a shaft
        beyond: its far quarter (along its length, away from the cut) at most 0.74 times as
        thick as its quarter at the cut, and its outline filling under 0.76 of its length times
        its greatest width (a shaft's end is of even width and fills about 0.8 and more)"""
        py, px = pixels(lab)
        ang = axis(lab)[0]
        along = (px - px.mean()) * math.cos(ang) + (py - py.mean()) * math.sin(ang)
        span = float(along.max() - along.min() + 1)
        at = (lo == min(lab, other)) & (hi == max(lab, other))
        cut_along = float(((xs[at] - px.mean()) * math.cos(ang) +
                           (ys[at] - py.mean()) * math.sin(ang)).mean())
        q = (along - along.min()) / span
        near, far = (q >= 0.75, q <= 0.25) if cut_along > 0 else (q <= 0.25, q >= 0.75)
        if not near.any() or not far.any():
            return False
        if not piece_dt:
            piece_dt.append(cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3))
        depth = piece_dt[0][py, px]
        fill = len(px) / (2.0 * max(float(depth.max()), 1.0) * span)
        return float(depth[far].max()) <= 0.74 * float(depth[near].max()) and fill < 0.76

    def headless(lab):
        """whether neither end of a piece is a head: its mean width across its axis over the
        quarter of its length at either end under 1.2 times the median of its eighths' widths.
        A whole bolt touching another part with its shaft's end is as elongated as a shaft's
        end cut off its head, but its head end is wider: 1.25 to 1.74 times on the five trays
        where joining such a bolt broke the count, where the shafts' ends whose joining fixed
        a count measured 0.96 to 1.17 (one of 21 trays, 1.63, was fixed by another join)"""
        py, px = pixels(lab)
        ang = axis(lab)[0]
        dx, dy = px - px.mean(), py - py.mean()
        along = dx * math.cos(ang) + dy * math.sin(ang)
        across = dy * math.cos(ang) - dx * math.sin(ang)
        span = float(along.max() - along.min()) + 1.0
        eighth = np.minimum(((along - along.min()) / span * 8).astype(int), 7)
        wide = np.array([np.ptp(across[eighth == i]) + 1.0 if (eighth == i).any() else 0.0
                         for i in range(8)])
        return max(wide[:2].mean(), wide[-2:].mean()) < 1.2 * float(np.median(wide))

    def continues(lab, thin, thick, ridge):
        """whether a piece this thin may be the shaft's end or the flank of one this thick,
        met by a cut this thick. A shaft (over twice as long as wide) may be up to 0.8 times
        as thick (a large bolt's shaft is up to 0.8 times as thick as its head, and a head half
        hidden under a neighbour is thinner than itself), another piece up to 0.65 times. A
        shaft's end beyond a slight narrowing is cut across, the cut nearly as thick as the
        piece itself, or the piece is a shaft met by a cut of some thickness (a part touching
        another meets it at a neck much thinner than itself). A piece is a shaft by its area
        over its thickness squared, or by the spread of its pixels (1.9 times as long as wide):
        where a neighbour touches a shaft, or a nut lying across it was cut out, the shaft
        bulges at one spot (on four trays, shafts about 11 px wide bulged to 15 to 20 px), and
        its thickness there says nothing of its width elsewhere."""
        shaft = area[lab] >= 2.0 * (2.0 * thin) ** 2 or (axis(lab)[1] >= 1.9 and headless(lab))
        if thin > (0.8 if shaft else 0.65) * thick:
            return False
        return thin - ridge <= 0.35 * thin or (shaft and ridge >= 0.5 * thin)

    root = list(range(len(top)))

    def find(a):
        while root[a] != a:
            a = root[a]
        return a

    # each thin piece joins the one neighbour it is the flank or the continuation of (the
    # highest cut), so that a shaft lying across two parts does not chain them into one
    best = {}
    for (a, b), ridge in cuts.items():
        (thin, t), (thick, _) = sorted(((own[a], a), (own[b], b)))
        other = a + b - t
        onward = continues(t, thin, thick, ridge)
        # thin only clear of the cut: a shaft's end, unless it is a whole part that touches
        # the other at its head
        if onward and not continues(t, top[t], top[other], ridge) and whole_part(t, other):
            onward = False
        if onward:
            # a piece continuing a long one runs along it: a thin part (a small bolt) lying
            # across a long part's end is a part of its own
            (da, ea), (db, _) = axis(other), axis(t)
            turn = abs((da - db + math.pi / 2) % math.pi - math.pi / 2)
            onward = ea < 1.8 or turn <= math.radians(25)
        if onward and ridge > best.get(t, (-1.0, 0))[0]:
            best[t] = (ridge, other)
    for t, (_, other) in best.items():
        root[find(t)] = find(other)
    lut = np.array([find(a) for a in range(len(top))], np.int32)
    if (lut == np.arange(len(top))).all():
        return markers, set()
    # Such a join is a decision the count rests on: over 2,250 harness trays the counts with one
    # were right 13 times of 18 (two bolts lying end to end, one's shaft at the other's head,
    # counted as one bolt at 0.97)
    headed = {int(lut[t]) for t in best if not headless(t)}
    out = markers.copy()
    out[inside] = lut[markers[inside]]
    # the cut between joined pieces belongs to the joined piece
    same = (hi >= 2) & (lut[np.minimum(lo, len(top) - 1)] == lut[np.maximum(hi, 0)])
    out[ys[same], xs[same]] = lut[lo[same]]
    return out, headed


def flood(markers, dt, mask):
    """Watershed by flooding the distance transform from its top down: at each level (half a
    pixel apart) every piece grows over the foreground at or above that level that it reaches,
    so pieces meet at the necks (the saddles of the distance transform) rather than half way
    between their markers. (cv2.watershed floods by the difference between neighbouring
    pixels, which on a distance transform is its slope, about the same everywhere: its pieces
    ran along the level lines and wrapped round each other, and it marked every pixel reached
    from two labels, the background's included, as a boundary, so split pieces lost their
    outline.) Returns the markers with every foreground pixel a piece's, and -1 on one side of
    each boundary between two pieces."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    fg = mask[y0:y1, x0:x1] > 0
    d = dt[y0:y1, x0:x1]
    lab = np.where(fg, markers[y0:y1, x0:x1], 0).astype(np.float32)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    level = float(d.max())
    while True:
        level = max(0.0, level - 0.5)
        free = fg & (d >= level)
        while True:
            grown = cv2.dilate(lab, cross)
            new = free & (lab == 0) & (grown >= 2)
            if not new.any():
                break
            lab[new] = grown[new]
        if level <= 0.0:
            break
    # one side of each boundary (the higher label) is the boundary, as cv2.watershed marks it
    lo = cv2.erode(np.where(lab >= 2, lab, 1e9).astype(np.float32), cross)
    edge = (lab >= 2) & (lo < lab)
    lab[edge] = -1
    out = markers.copy()
    sub = out[y0:y1, x0:x1]
    sub[fg] = lab[fg].astype(np.int32)
    return out


def split_clusters(mask, raw, dist):
    """Splits every component at the significant maxima of its distance transform (watershed
    from one marker per maximum). Returns a list of segments (region mask slices) as dicts."""
    dt = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    dt_raw = cv2.distanceTransform((raw > 0).astype(np.uint8), cv2.DIST_L2, 5)
    grad = edge_gradient(dist)
    outline = (mask > 0) & (cv2.erode(mask, np.ones((3, 3), np.uint8)) == 0)
    n, lbl, stats, _ = cv2.connectedComponentsWithStats(mask, 8)
    markers = np.zeros(mask.shape, np.int32)
    info = {}
    nxt = 2
    rel = STRATEGY.get("peak_prominence", 0.15)
    tops = [float(dt[lbl == i].max()) for i in range(1, n)]
    min_height = 0.45 * float(np.median(tops)) if tops else 0.0
    for i in range(1, n):
        x, y, w, h, a = stats[i]
        sub = lbl[y:y + h, x:x + w] == i
        d = dt[y:y + h, x:x + w] * sub
        peaks = dt_peaks(d, rel, min_height) if STRATEGY.get("split", True) else []
        if len(peaks) <= 1:
            markers[y:y + h, x:x + w][sub] = nxt
            info[nxt] = (i, float(d.max()))
            nxt += 1
            continue
        for (py, px, ph) in peaks:
            r = max(1, int(ph * 0.5))
            cv2.circle(markers[y:y + h, x:x + w], (int(px), int(py)), r, int(nxt), -1)
            info[nxt] = (i, ph)
            nxt += 1
        markers[y:y + h, x:x + w][~sub & (markers[y:y + h, x:x + w] > 0)] = 0
    markers[mask == 0] = 1
    headed = set()
    if nxt > 3:
        # watershed on the distance transform: boundaries fall on the necks between parts
        markers = flood(markers, dt, mask)
        markers, headed = join_shaft_pieces(markers, mask, dt)
    segs = []
    # pixels grouped by segment once (a full-image comparison per segment is slow on big trays)
    flat = np.where(mask.ravel() > 0, markers.ravel(), 0)
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(2, nxt + 1))
    rawf, dtf, dtrf, distf = raw.ravel() > 0, dt.ravel(), dt_raw.ravel(), dist.ravel()
    outf, gradf = outline.ravel(), grad.ravel()
    for lab_id in range(2, nxt):
        idx = order[bounds[lab_id - 2]:bounds[lab_id - 1]]
        a = int(idx.size)
        if a == 0:
            continue
        ys, xs = np.divmod(idx, mask.shape[1])
        # edge width (contrast / gradient on the sharpest fifth of the outline, px): a part's
        # rim is as sharp as the optics, glare and shading fade over many pixels
        # and the same on the softer part of the outline (its 30th percentile): a piece whose
        # rim fades over most of its length (a shaft running into a glare spot) stands out there
        rim = gradf[idx[outf[idx]]]
        soft = soft_lo = 0.0
        if rim.size:
            contrast = float(np.median(distf[idx]))
            lo, hi = np.percentile(rim, (30, 80))
            soft = contrast / max(float(hi), 1e-6)
            soft_lo = contrast / max(float(lo), 1e-6)
        segs.append({"soft": soft, "soft_lo": soft_lo, "comp": info[lab_id][0], "area": a,
                     "thick": float(dtf[idx].max()), "wall": float(dtrf[idx].max()),
                     "raw": int(rawf[idx].sum()), "headed_join": lab_id in headed,
                     "box": (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                             int(ys.max() - ys.min() + 1)),
                     "pts": np.stack([xs, ys], axis=1).astype(np.float32)})
    return segs, lbl, stats


def absorb(o, sg):
    """Piece `o` takes in piece `sg` (its pixels, area and box; the thicker wall, the sharper
    rim), counted as one more merge."""
    x, y, bw, bh = sg["box"]
    bx0, by0 = min(o["box"][0], x), min(o["box"][1], y)
    bx1 = max(o["box"][0] + o["box"][2], x + bw)
    by1 = max(o["box"][1] + o["box"][3], y + bh)
    o.update({"area": o["area"] + sg["area"], "raw": o["raw"] + sg["raw"],
              "thick": max(o["thick"], sg["thick"]), "wall": max(o["wall"], sg["wall"]),
              "soft": min(o["soft"], sg["soft"]),
              "soft_lo": min(o.get("soft_lo", 0.0), sg.get("soft_lo", 0.0)),
              "box": (bx0, by0, bx1 - bx0, by1 - by0),
              "pts": np.concatenate([o["pts"], sg["pts"]]),
              "merged": o.get("merged", 0) + 1})
    o.pop("elong", None)  # its shape changed: elongation and hull are measured again
    o.pop("hull", None)


def merge_fragments(segs, shape, a1, a_hi):
    """A piece that the distance transform cut off a larger blob and that is less than half a
    typical part (a bolt's shaft beside its head, the tail of a part under glare) is no part of
    its own: it joins the piece of the same blob it shares most boundary with, when the two
    together are no larger than a large single part. Parts on their
    own (a blob of one piece) are not touched, so small kinds in a mixed tray still count."""
    lab = np.zeros(shape, np.int32)
    for k, sg in enumerate(segs):
        p = sg["pts"].astype(int)
        lab[p[:, 1], p[:, 0]] = k + 1
    alive = [True] * len(segs)
    k3 = np.ones((5, 5), np.uint8)
    while True:
        small = [k for k, sg in enumerate(segs) if alive[k] and not sg["holed"]
                 and sg["area"] < 0.5 * a1]
        merged = False
        for k in sorted(small, key=lambda k: segs[k]["area"]):
            sg = segs[k]
            x, y, bw, bh = sg["box"]
            x0, y0 = max(0, x - 3), max(0, y - 3)
            win = lab[y0:y + bh + 3, x0:x + bw + 3]
            me = (win == k + 1).astype(np.uint8)
            ring = (cv2.dilate(me, k3) > 0) & (me == 0)
            nb = win[ring]
            nb = nb[nb > 0] - 1
            # only into a piece that stays within one large part's area with it: a fragment
            # between two whole parts is not one of them
            nb = [j for j in nb if alive[j] and segs[j]["comp"] == sg["comp"] and not segs[j]["holed"]
                  and segs[j]["area"] + sg["area"] <= 1.3 * a_hi]
            if not nb:
                continue
            j = int(np.bincount(nb).argmax())
            absorb(segs[j], sg)
            p = sg["pts"].astype(int)
            lab[p[:, 1], p[:, 0]] = j + 1
            alive[k] = False
            merged = True
            break
        if not merged:
            break
    return [sg for k, sg in enumerate(segs) if alive[k]]


def join_lookalike_pairs(segs, evidence, a_hi, h1, e1):
    """One part cut in two: a blob cut into two pieces (no hole, off the border) whose union looks
    like a part lying alone in the same tray (a blob of one piece, off the border, counted as one
    part by its area): alike in area, thickness and elongation (`similar`), and no larger than
    1.3 large single parts. Two parts touching cover twice a lone one's area. The distance
    transform cuts a bolt at its neck when the shaft is nearly as thick as the head (a glare
    spot or a highlight widens it), and `join_shaft_pieces` then keeps the two apart (three bolts
    counted four, seed 2718 tray 35). The join is a decision the count rests on: it counts as an
    ambiguous piece. Returns the pieces with such pairs joined."""
    groups = by_blob(segs)
    lone = [g[0] for g in groups if len(g) == 1 and not g[0]["on_border"]
            and not g[0]["holed"] and parts_by_area(g[0], a_hi, h1, e1) < 1.4]
    if len(lone) < 2:
        return segs
    out = []
    for g in groups:
        if len(g) == 2 and not any(s["holed"] or s["on_border"] for s in g):
            u = dict(g[0])
            absorb(u, g[1])
            if u["area"] <= 1.3 * a_hi and any(similar(u, t) for t in lone):
                evidence["joined"] += 1
                evidence["ambiguous"] += 1
                out.append(u)
                continue
        out += g
    return out


def aligned(pts):
    """A piece's pixels about their centroid, turned so that the principal axis lies along x, on
    a grid of 2 px (what two views of one shape share up to a flip)."""
    d = pts - pts.mean(axis=0)
    _, v = np.linalg.eigh(np.cov(d.T))
    ax = v[:, 1]
    x, y = d @ ax, d @ np.array([-ax[1], ax[0]])
    return np.floor(np.stack([x, y], axis=1) / 2.0).astype(np.int64)


def same_shape(a, b):
    """Intersection over union of two aligned pieces (`aligned`), the best of the four flips."""
    sa = set(zip(a[:, 0].tolist(), a[:, 1].tolist()))
    best = 0.0
    for fx in (1, -1):
        for fy in (1, -1):
            sb = set(zip((b[:, 0] * fx).tolist(), (b[:, 1] * fy).tolist()))
            inter = len(sa & sb)
            best = max(best, inter / float(len(sa) + len(sb) - inter))
    return best


def join_recurring_pairs(segs, evidence):
    """A part of two lobes (a double cross, a dumbbell) is cut in two at the saddle between
    them, and no lone piece has the shape of either piece. Where three blobs or more are cut so
    (no hole, off the border) and their wholes have one shape (intersection over union at least
    0.8 once aligned, area within 15%), the whole is the part: two parts touching lie at a new
    angle each time. The join is one decision the count rests on (one ambiguous piece). Returns
    the pieces with those joined."""
    groups = by_blob(segs)
    cut = [g for g in groups if len(g) == 2 and not any(s["holed"] or s["on_border"] for s in g)]
    if len(cut) < 3:
        return segs
    lone = [(g[0], aligned(g[0]["pts"])) for g in groups if len(g) == 1 and not g[0]["holed"]]

    def alike(s, a, t, b):  # one shape: area within 15%, aligned overlap at least 0.8
        return (abs(s["area"] - t["area"]) <= 0.15 * max(s["area"], t["area"])
                and same_shape(a, b) >= 0.8)

    pairs = []
    for g in cut:
        halves = [aligned(s["pts"]) for s in g]
        if any(alike(s, a, t, b) for s, a in zip(g, halves) for t, b in lone):
            continue  # parts like either half lie alone: two of them touching
        u = dict(g[0])
        absorb(u, g[1])
        pairs.append((g, u, aligned(u["pts"])))
    if len(pairs) < 3:
        return segs
    like = [0] * len(pairs)  # how many other wholes each one is alike (once per pair: symmetric)
    for i in range(len(pairs)):
        for j in range(i + 1, len(pairs)):
            if alike(pairs[i][1], pairs[i][2], pairs[j][1], pairs[j][2]):
                like[i] += 1
                like[j] += 1
    joined = {i for i, k in enumerate(like) if k >= 2}
    if not joined:
        return segs
    evidence["joined"] += len(joined)
    evidence["ambiguous"] += 1
    gone = {id(s) for i in joined for s in pairs[i][0]}
    return [s for s in segs if id(s) not in gone] + [pairs[i][1] for i in sorted(joined)]


def elongation(sg):
    """Length over width of a piece's minimum-area rectangle (kept with the piece, as its hull's
    area is: both are asked for after merge_fragments has joined the pieces)."""
    if "elong" not in sg:
        (_, _), (a, b), _ = cv2.minAreaRect(sg["pts"])
        sg["elong"] = max(a, b) / max(1.0, min(a, b))
    return sg["elong"]


def similar(s, t):
    """Two pieces alike in area (25%), thickness (20%) and elongation (25%): the same kind."""
    es, et = elongation(s), elongation(t)
    return (abs(s["area"] - t["area"]) <= 0.25 * max(s["area"], t["area"])
            and abs(s["thick"] - t["thick"]) <= 0.2 * max(s["thick"], t["thick"])
            and abs(es - et) <= 0.25 * max(es, et))


def scaled(s, t):
    """Two pieces of one shape at different sizes: alike in elongation and in area over
    thickness squared (15% each), which a change of size keeps."""
    es, et = elongation(s), elongation(t)
    fs = s["area"] / max(1.0, s["thick"]) ** 2
    ft = t["area"] / max(1.0, t["thick"]) ** 2
    return abs(es - et) <= 0.15 * max(es, et) and abs(fs - ft) <= 0.15 * max(fs, ft)


def parts_by_area(s, a_hi, h1, e1):
    """How many typical parts a piece's area holds: a thicker piece is a larger part of its kind
    (its area scales with the square), but only beyond the spread of one kind's thickness: two
    parts lying across each other are a little thicker where they cross and still two parts.
    Where the typical part is long (its elongation `e1` at least 2), a piece as thick as two
    lying side by side (1.5 to 2.5 times) and about half as elongated (0.45 to 0.75 times) is
    two of them: a larger part of the kind keeps its proportions."""
    scale = max(1.0, s["thick"] / (1.15 * h1))
    if e1 >= 2.0 and 1.5 * h1 <= s["thick"] <= 2.5 * h1 and 0.45 * e1 <= elongation(s) <= 0.75 * e1:
        scale = 1.0
    return s["area"] / (a_hi * scale * scale)


def hull_area(sg):
    """Area of a piece's convex hull (px): what a part covers, its hole or the notch a border
    cut leaves in it included."""
    if "hull" not in sg:
        sg["hull"] = float(cv2.contourArea(cv2.convexHull(sg["pts"]))) + 0.5 * len(sg["pts"]) ** 0.5
    return sg["hull"]


def notch_share(sg):
    """The largest notch in a piece's outline (a region of its convex cover it does not fill,
    slivers along the outline opened away), as a share of the cover's area: a ring cut by the
    border has its hole open there, a bolt's shaft leaves one on each side of its head."""
    p = sg["pts"].astype(np.int32)
    x0, y0 = p.min(axis=0) - 2
    local = np.zeros((int(p[:, 1].max() - y0) + 3, int(p[:, 0].max() - x0) + 3), np.uint8)
    cover = local.copy()
    cv2.fillConvexPoly(cover, cv2.convexHull(p - (x0, y0)), 1)
    local[p[:, 1] - y0, p[:, 0] - x0] = 1
    notch = cv2.morphologyEx(cover & (1 - local), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, _, st, _ = cv2.connectedComponentsWithStats(notch, 4)
    return float(st[1:, cv2.CC_STAT_AREA].max()) / max(1, int(cover.sum())) if n > 1 else 0.0


def at_frame(p, w, h, edge=0):
    """Which of the points `p` (x, y) lie within `edge` px of the image's outermost pixels."""
    return (p[:, 0] <= edge) | (p[:, 1] <= edge) | (p[:, 0] >= w - edge - 1) | (p[:, 1] >= h - edge - 1)


def cut_by_frame(sg, w, h):
    """Whether a piece runs into the image's outermost pixels (over 2 of them): a part the border
    cuts, not one lying close to it."""
    return int(at_frame(sg["pts"], w, h).sum()) > 2


def blob_of(sg, lbl):
    """The label that most of a piece's pixels carry in `lbl` (0 when none carry one)."""
    p = sg["pts"].astype(int)
    ids = lbl[p[:, 1], p[:, 0]]
    ids = ids[ids > 0]
    return int(np.bincount(ids).argmax()) if ids.size else 0


def border_runs(blobs, edge, limit):
    """The stretches of the image border along which the foreground runs for longer than
    `limit` px (its pixels along the border, gaps shorter than a tenth of `limit` bridged but
    not counted: a rim that the segmentation broke up is one rim; with `limit` 2.5 part
    lengths, that is a quarter of a part's length). Returns a mask of the border bands
    (edge + 1 px deep) that marks those stretches."""
    h, w = blobs.shape
    b = edge + 1
    out = np.zeros((h, w), bool)
    g = max(1, int(round(0.1 * limit)))
    for side in range(4):
        band = (blobs[:b, :], blobs[h - b:, :], blobs[:, :b].T, blobs[:, w - b:].T)[side]
        occ = band.max(axis=0).astype(np.uint8)[None, :]
        joined = cv2.morphologyEx(occ, cv2.MORPH_CLOSE, np.ones((1, 2 * g + 1), np.uint8))[0] > 0
        occ = occ[0] > 0
        run = np.zeros(occ.size, bool)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], joined.astype(np.int8), [0]])))
        for start, stop in zip(edges[::2], edges[1::2]):
            # the foreground itself, not the bridged gaps, is longer than the limit: two parts
            # cut by the border end to end do not make a rim
            if occ[start:stop].sum() > limit:
                run[start:stop] = True
        if side == 0:
            out[:b, :] |= run[None, :]
        elif side == 1:
            out[h - b:, :] |= run[None, :]
        elif side == 2:
            out[:, :b] |= run[:, None]
        else:
            out[:, w - b:] |= run[:, None]
    return out


def rim_like(s, w1, l1):
    """A thin strip lying along the frame's direction: a tray's rim, a table edge or a piece of
    one that glare or the segmentation broke off (narrower than 0.6 part widths and eight times
    as long as wide, or narrower than 0.3 part widths and five times as long as wide: a short
    reflection of a rim; at least half a part long, its long side within 10 deg of the image's
    axes). One longer than 2.5 part lengths may be up to 0.75 part widths wide (a steel tray's
    far rim, 0.62 of an oval tablet's width): a part that long and eight times as long as wide
    among parts of the typical width is rarer still.
    Rims and edges run along the frame when a camera looks down at a tray; a thin part lying so
    among parts that are not thin is rare."""
    wd, ln = s["rect"]
    thin = 8.0 if wd >= 0.3 * w1 else 5.0  # how many times as long as wide
    narrow = 0.75 if ln > 2.5 * l1 else 0.6
    if not (wd < narrow * w1 and ln >= thin * max(wd, 1.0) and ln >= 0.5 * l1):
        return False
    return along_frame(s["pts"])


def along_frame(pts):
    """whether the long side of the points' minimum-area rectangle lies within 10 deg of the
    image's axes"""
    ang = cv2.minAreaRect(pts)[2] % 90.0  # a side's direction, up to a quarter turn
    return min(ang, 90.0 - ang) <= 10.0


def drop_structures(segs, blobs, edge):
    """Drops what is longer than a part and is no part: the tray's rim, a table edge, a shadow or
    a reflection band, a cable. Two rules, both against the typical part's length and width (the
    medians of the whole pieces' minimum-area rectangles, thin strips left out):
    - foreground that runs along the image border for longer than 2.5 part lengths (gaps under a
      quarter part length bridged) is a structure the frame cuts: a part cut by the border
      touches it over at most its own length. Pieces lying at the border mostly along such a
      stretch go; pieces away from the border (parts lying against the rim) stay;
    - a piece longer than 2.5 part lengths and narrower than 0.6 part widths is a strip, not a
      part (a tray of nails has nail-shaped typical parts, so its nails stay), and so is one
      longer than six part lengths that is that narrow on average (a sagging rim; up to 0.75 part
      widths when it lies along the frame's direction, as rim_like allows); so is a
      shorter one that is eight times as long as wide, or five times when under 0.3 part widths,
      and lies along the frame's direction (rim_like; one longer than 2.5 part lengths that way
      up to 0.75 part widths); and so is a line of any shape, under 0.4 times as thick as a part
      (its inscribed radius) and longer than 2.5 part lengths (its area over its width): the
      shadow along a tray's rims, an L whose rectangle is as wide as the tray.
    With fewer than three whole pieces there is no typical width: only the first rule applies,
    against the longest of them.
    Returns (the pieces kept, how many part-like pieces went by the first rule: half a typical
    part's area or more and under 2.5 times as long as wide, a part cut by the border beside
    others as well as a rim's piece; over 2,250 harness trays the counts that dropped one were
    right 2 times of 5)."""
    whole = [s for s in segs if not s["on_border"]]
    if not whole:
        return segs, 0
    for s in segs:
        s["rect"] = sorted(cv2.minAreaRect(s["pts"])[1])  # (width, length)
    a1 = float(np.median([s["area"] for s in whole]))

    def part_like_drop(s):
        return s["area"] >= 0.5 * a1 and elongation(s) < 2.5

    if len(whole) < 3:
        # a tray of one or two parts seen with the table along its sides
        limit = 2.5 * max(s["rect"][1] for s in whole)
        along = border_runs(blobs, edge, limit)
        gone = [along_border(s, along, edge) for s in segs]
        return ([s for s, g in zip(segs, gone) if not g],
                sum(1 for s, g in zip(segs, gone) if g and part_like_drop(s)))
    typ = [s for s in whole if s["area"] <= 2.5 * a1]
    if not typ:
        return segs, 0
    w1 = float(np.median([s["rect"][0] for s in typ]))
    typ = [s for s in typ if s["rect"][0] >= 0.6 * w1]  # thin strips inside the image left out
    w1 = float(np.median([s["rect"][0] for s in typ]))
    limit = 2.5 * float(np.median([s["rect"][1] for s in typ]))
    h1 = float(np.median([s["thick"] for s in typ]))  # a part's inscribed radius
    _, lbl = cv2.connectedComponents(blobs, connectivity=8)
    along = border_runs(blobs, edge, limit)
    blob, members = [], {}
    for k, s in enumerate(segs):
        blob.append(blob_of(s, lbl))
        members.setdefault(blob[-1], []).append(k)
    def strip_like(rect, area, pts):
        # (rect: the minimum-area rectangle's (width, length)) longer than 2.5 part lengths and
        # narrower than 0.6 part widths; or, when longer than six part lengths, that narrow on
        # average (area over length): a rim that sags or widens along the frame has a wider
        # minimum-area rectangle than its width (two bolts lying end to end among nuts, about
        # four nut lengths, stay). Lying along the frame's direction, such a strip may be up to
        # 0.75 part widths on average, as a thin piece may (rim_like): a steel tray's near rim
        # widening from one end to the other, a part wide at its wide end and 0.65 on average
        # (dev/real p08), was counted by its area as seven tablets.
        wd, ln = rect
        if ln <= limit:
            return False
        if wd < 0.6 * w1:
            return True
        mean = area / ln
        return ln > 2.5 * limit and (mean < 0.6 * w1 or (mean < 0.75 * w1 and along_frame(pts)))

    strip = set()  # blobs that are strips as a whole (the pieces a strip was cut into are short)
    for b, ks in members.items():
        if b and len(ks) > 1:
            pts = np.concatenate([segs[k]["pts"] for k in ks])
            rect = sorted(cv2.minAreaRect(pts)[1])
            if strip_like(rect, sum(segs[k]["area"] for k in ks), pts):
                strip.add(b)
    out, doubtful = [], 0
    for k, s in enumerate(segs):
        # (a piece with a hole of its own in a strip's blob is a nut or washer lying against it)
        if (blob[k] in strip and not s["holed"]) or strip_like(s["rect"], s["area"], s["pts"]):
            continue
        if rim_like(s, w1, limit / 2.5):
            continue
        if s["thick"] < 0.4 * h1 and s["area"] > 2.0 * s["thick"] * limit:
            continue  # a line, bent or not, thinner than a part and longer: a rim's shadow
        if along_border(s, along, edge):
            doubtful += int(part_like_drop(s))
            continue
        out.append(s)
    return out, doubtful


def along_border(s, along, edge):
    """whether a piece at the border lies there mostly along a structure the frame cuts (the
    stretches of border_runs)"""
    if not s["on_border"]:
        return False
    h, w = along.shape
    p = s["pts"].astype(int)
    at = at_frame(p, w, h, edge)
    return bool(at.any() and along[p[at, 1], p[at, 0]].mean() > 0.5)


def lab_offset(s, offset):
    """A piece's median Lab offset from the local background (`offset`, from segment): L above
    0 where it is lighter than the surface around it, below 0 where darker."""
    xs, ys = s["pts"][:, 0].astype(int), s["pts"][:, 1].astype(int)
    return np.median(offset[ys, xs], axis=0)


def shadows(segs, offset, lab):
    """The pieces that are shadows: where the parts stand out lighter than the surface, a piece
    darker than the surface, of its colour and smaller than a part (a cast shadow, the dark gap
    between touching tablets) is no part. The parts are the larger half of the pieces (shadows,
    as many as the parts where each casts one, are smaller); smaller: under 0.6 of their median
    area, so that a dark part of typical size among light ones stays; of the surface's colour: a
    colour offset (a, b) under half the parts' (and under 12, at least 6 for grey parts).
    A cast shadow lies beside the part that casts it and can be nearly as large as it (beans lit
    low from one side), and on a strongly coloured surface it is farther from the surface's
    (a, b) than that limit (a darker blue on a blue cloth, 13 to 17): it is the surface under
    less light, whose chroma shrinks with its lightness (in Lab both follow the cube root of the
    light), so its offset (a, b) is the surface's own (a, b) times (L_shadow + 16) / (L_surface
    + 16) - 1. A darker piece under a part's area, within the limit of that darkened colour and
    within half a part's radius of a lighter piece (their shared rim, neither lighter nor darker,
    parts them: 2 to 5 px on a bean 30 px long), is one too. A dark part of that colour lying
    against a light one would be taken for a shadow; dark bolts away from light ones are not.
    (Dark parts cast shadows darker still: nothing tells those apart here.)"""
    if len(segs) < 3:
        return []
    feats = []
    for sg in segs:
        o = lab_offset(sg, offset)
        c = np.median(lab[sg["pts"][:, 1].astype(int), sg["pts"][:, 0].astype(int)], axis=0)
        bg = c - o  # the surface's colour under the piece (OpenCV's 8-bit Lab)
        q = (c[0] / 2.55 + 16.0) / (bg[0] / 2.55 + 16.0)
        off = math.hypot(*(o[1:] - (bg[1:] - 128.0) * (q - 1.0)))
        feats.append((float(o[0]), float(math.hypot(o[1], o[2])), off))
    areas = np.array([sg["area"] for sg in segs], float)
    ref = areas >= np.median(areas)
    light = np.array([f[0] for f in feats])[ref]
    if np.median(light) < 10.0 or (light > 0).mean() < 0.8:
        return []  # the parts are not lighter than the surface, or not all of them
    hue = float(np.median(np.array([f[1] for f in feats])[ref]))
    a_ref = float(np.median(areas[ref]))
    limit = max(6.0, min(12.0, 0.5 * hue))
    h, w = offset.shape[:2]
    lit = np.zeros((h, w), np.uint8)
    for sg, f in zip(segs, feats):
        if f[0] > 0.0 and sg["area"] >= 0.5 * a_ref:
            lit[sg["pts"][:, 1].astype(int), sg["pts"][:, 0].astype(int)] = 1
    # how far each pixel is from the lighter pieces: a shadow's dark core is parted from its
    # part by their shared rim, neither lighter nor darker (2 to 5 px on a bean 30 px long)
    apart = cv2.distanceTransform((lit == 0).astype(np.uint8), cv2.DIST_L2, 5)
    near = max(3.0, math.sqrt(a_ref / math.pi) / 2.0)
    out = []
    for sg, (lo, co, off) in zip(segs, feats):
        if sg["holed"] or lo > -8.0:
            continue
        if sg["area"] < 0.6 * a_ref and co < limit:
            out.append(sg)
        elif (sg["area"] < a_ref and off < limit
              and apart[sg["pts"][:, 1].astype(int), sg["pts"][:, 0].astype(int)].min() <= near):
            out.append(sg)
    return out


def typical(segs):
    """Area and thickness of a typical single part: medians over the segments, then over those
    within a factor of two of the first median (so clusters and specks do not drag it). Parts
    cut off by the border are left out when whole ones exist: they are not typical."""
    whole = [s for s in segs if not s["on_border"]]
    if whole:
        segs = whole
    areas = np.array([s["area"] for s in segs], np.float64)
    a1 = float(np.median(areas))
    near = [s for s in segs if 0.5 * a1 <= s["area"] <= 2.0 * a1] or segs
    a1 = float(np.median([s["area"] for s in near]))
    h1 = float(np.median([s["thick"] for s in near]))
    r1 = float(np.median([s["raw"] for s in near]))
    # the larger single parts: in a mixed tray a bolt outweighs a nut without being two parts
    a_hi = float(np.percentile([s["area"] for s in near], 75))
    return a1, max(h1, 1.0), max(r1, 1.0), max(a_hi, a1)


def outline_cells(work):
    """Regions that closed outlines enclose: the image's edges (the Lab gradient above its 70th
    to 90th percentile, thinned to lines, a one-pixel gap closed) at three smoothings, and the
    4-connected regions between them. A light part on a light, shiny tray (white tablets on
    steel) differs from it in colour less than the reflections around it do, and the rim of a
    tray can stand out from it as much as a part; no background model separates them, but a
    part's outline is sharp all round. Returns the convex cells (area over hull area above 0.9)
    that do not touch the image's border, as dicts with box, area, solidity and pts (the
    outline's points, as elongation() reads a piece's; the same region is found at several
    levels). None without cv2.ximgproc."""
    if not hasattr(cv2, "ximgproc"):
        return None
    h, w = work.shape[:2]
    grow = np.ones((3, 3), np.uint8)
    cells = []
    for sigma in (1.0, 1.5, 2.5):
        lab = cv2.cvtColor(cv2.GaussianBlur(work, (0, 0), sigma), cv2.COLOR_BGR2LAB).astype(np.float32)
        g = np.zeros((h, w), np.float32)
        for c in range(3):
            g += cv2.Sobel(lab[:, :, c], cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(lab[:, :, c], cv2.CV_32F, 0, 1) ** 2
        for level in np.percentile(g, (70, 75, 80, 85, 90)):
            lines = cv2.ximgproc.thinning((g > level).astype(np.uint8) * 255)
            inner = (cv2.dilate(lines, grow) == 0).astype(np.uint8)
            n, lbl, st, _ = cv2.connectedComponentsWithStats(inner, connectivity=4)
            for i in range(1, n):
                x, y, bw, bh, a = st[i]
                if a < 20 or a > 0.05 * h * w or x == 0 or y == 0 or x + bw >= w or y + bh >= h:
                    continue
                # the region grown back over the line it was cut from
                m = cv2.dilate((lbl[y:y + bh, x:x + bw] == i).astype(np.uint8), grow)
                contour = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0][0] + (x, y)
                area = float(cv2.contourArea(contour))
                solidity = area / max(float(cv2.contourArea(cv2.convexHull(contour))), 1.0)
                if solidity > 0.9:
                    cells.append({"box": [int(x) - 1, int(y) - 1, int(bw) + 2, int(bh) + 2], "area": area,
                                  "solidity": solidity, "pts": contour})
    return cells


def cells_apart(c, k):
    """the distance between two cells' box centres (px)"""
    (cx, cy, cw, ch), (kx, ky, kw, kh) = c["box"], k["box"]
    return math.hypot(cx + cw / 2.0 - kx - kw / 2.0, cy + ch / 2.0 - ky - kh / 2.0)


def distinct_cells(cells, radius):
    """One cell per place: of cells whose centres lie within radius(cell, kept cell) of each
    other, the most convex."""
    keep = []
    for c in sorted(cells, key=lambda c: -c["solidity"]):
        if all(cells_apart(c, k) > radius(c, k) for k in keep):
            keep.append(c)
    return keep


def outline_count(work):
    """A second count, independent of the background model: the closed, convex outlines of one
    kind of part (outline_cells). The typical part's area is where the cells' areas pile up (a
    histogram of their logarithms, each cell weighted by its area: the cells that print,
    texture and reflections enclose are many but small); a part is a cell of 0.6 to 1.5 times
    it, one per place. Returns (objects or None, evidence), or None when no outlines were
    found. The objects are None unless the outlines describe the whole scene as parts of one
    kind:
    - three or more, their areas spread by under 10%;
    - other convex cells of a third of a part's area or more (another kind or size of part, a
      cluster's outline, the scene's own shapes) under 15% of all;
    - every part of the parts' colour (within three times their median distance from it, and
      10) and shape (within 1.5 times their median elongation): a glare spot enclosed by its
      halo, a strip of a tray's rim are none;
    - no piece of half a part's area or more of the parts' colour outside them: a part whose
      outline did not close, or one of the parts' colour under a shadow."""
    cells = outline_cells(work)
    if not cells or len(cells) < 3:
        return None
    la = np.log([c["area"] for c in cells])
    bins = np.arange(la.min(), la.max() + 0.1, 0.1)
    if len(bins) < 2:
        return None
    hist, bins = np.histogram(la, bins=bins, weights=np.exp(la))
    k = int(np.argmax(np.convolve(hist, np.ones(3), "same")))
    a1 = float(np.exp(bins[k] + 0.05))
    r1 = math.sqrt(a1 / math.pi)
    sized = lambda c: 0.6 * a1 <= c["area"] <= 1.5 * a1
    parts = distinct_cells([c for c in cells if sized(c)], lambda c, k_: r1)
    evidence = {"outline": len(parts)}
    if len(parts) < 3:
        return None, evidence

    others = distinct_cells([c for c in cells if c["area"] >= 0.3 * a1 and not sized(c)
                             and all(cells_apart(c, p) > r1 for p in parts)],
                            lambda c, k_: math.sqrt(max(c["area"], k_["area"]) / math.pi))
    areas = np.array([c["area"] for c in parts])
    evidence["outline_spread"] = round(float(areas.std() / areas.mean()), 3)
    evidence["outline_share"] = round(len(parts) / float(len(parts) + len(others)), 3)
    if evidence["outline_spread"] >= 0.1 or evidence["outline_share"] < 0.85:
        return None, evidence
    h, w = work.shape[:2]
    lab = cv2.cvtColor(cv2.GaussianBlur(work, (0, 0), 1.5), cv2.COLOR_BGR2LAB).astype(np.float32)
    covered = np.zeros((h, w), np.uint8)
    colours = []
    for c in parts:  # each part's region, drawn within its box
        x, y, bw, bh = c["box"]
        m = np.zeros((bh, bw), np.uint8)
        cv2.drawContours(m, [c["pts"]], -1, 1, cv2.FILLED, offset=(-x, -y))
        colours.append(np.median(lab[y:y + bh, x:x + bw][m > 0], axis=0))
        covered[y:y + bh, x:x + bw] |= m
    colours = np.array(colours)
    centre = np.median(colours, axis=0)
    off = np.linalg.norm(colours - centre, axis=1)
    elong = np.array([elongation(c) for c in parts])
    e1 = float(np.median(elong))
    odd = (off > max(3.0 * float(np.median(off)), 10.0)) | (elong > 1.5 * e1) | (elong < e1 / 1.5)
    evidence["outline_odd"] = int(odd.sum())
    if odd.any():
        return None, evidence
    d = np.linalg.norm(lab - centre, axis=2)
    loose = ((d <= float(np.percentile(d[covered > 0], 90)))
             & (cv2.dilate(covered, np.ones((5, 5), np.uint8)) == 0)).astype(np.uint8)
    rr = max(1, int(r1 / 3.0))
    loose = cv2.morphologyEx(loose, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rr + 1,) * 2))
    n, _, st, _ = cv2.connectedComponentsWithStats(loose, 8)
    evidence["outline_missed"] = int((st[1:, cv2.CC_STAT_AREA] >= 0.5 * a1).sum())
    if evidence["outline_missed"]:
        return None, evidence
    return [{"box": c["box"], "score": 0.45} for c in parts], evidence


def count_parts():
    img, name = load_input()
    H, W = img.shape[:2]
    f = 1.0
    if max(H, W) > WORK_SIDE:
        f = WORK_SIDE / float(max(H, W))
        work = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    else:
        work = img
    objects, conf = count_in(work)
    EVIDENCE["first_conf"] = conf
    outlined = False
    if STRATEGY.get("split", True) and STRATEGY.get("outlines", True) and conf < 0.5:
        # A count without confidence may have failed at the background model: light parts on a
        # light, shiny tray, or the tray's rim and reflections taken for parts. Where the
        # scene's closed outlines describe it as parts of one kind (outline_count), that count
        # is reported instead. It has no second estimate to agree with and stays below the
        # default min_confidence (0.45): the value shown is the better one, still uncertain.
        found = outline_count(work)
        if found is not None:
            other, evidence = found
            EVIDENCE.update(evidence, first_count=len(objects))
            if other is not None and len(other) != len(objects):
                objects, conf, outlined = other, 0.45, True
    first_ev = dict(EVIDENCE)
    if (STRATEGY.get("split", True) and STRATEGY.get("vote", True) and conf < 0.8
            and not outlined and STRATEGY.get("max_side") is None
            and work.shape[0] * work.shape[1] <= VOTE_PIXELS and len(objects) <= VOTE_PARTS):
        # Three reads vote on an uncertain count: the first and two on finer detail, the image
        # smoothed 0.7 times as much, and enlarged 1.25 times. When the two finer reads agree
        # on another count, that count is taken with the smoothed read's parts. Over the 1,093
        # uncertain ones of 4,640 harness trays this fixed 53 counts and broke 13 (the finer
        # reads alone were right 848 and 809 times where the first read was 799); on 260 trays
        # of two unseen seeds it fixed 6 and broke none. The confidence stays the first read's:
        # reads that share their rules share their mistakes (where all three agreed, 91% of
        # these counts were right), so agreement is no evidence for it. Above 24 parts the finer
        # reads find seams that are not there more often than they fix a count (harness: 2
        # fixed, 3 broken; 40 piles of 26 touching capsules: 5 fixed, 8 broken), and large crops
        # are left to one read for time (a 480 px photo of 40 coins took 5.7 s, with the vote
        # 16.7 s), as is a retry after a timeout (the ladder sets max_side). A count taken from
        # the outlines is not put to the vote: the reads repeat the background model it replaced.
        larger = cv2.resize(work, None, fx=1.25, fy=1.25, interpolation=cv2.INTER_LINEAR)
        reads = [reread(work, 0.7), reread(larger, 1.0)]
        first_ev["votes"] = [len(objects)] + [len(r) for r in reads]
        if len(reads[0]) == len(reads[1]) != len(objects):
            objects = reads[0]
        EVIDENCE.clear()
        EVIDENCE.update(first_ev)
    # A second read: the same image smoothed 1.4 times as much (another effective zoom). The
    # count is the first read's; when the two disagree, it rests on details that smoothing
    # changes and is not trustworthy. It can only lower the confidence, so it runs only when
    # the first read is confident (>= 0.8): the others are reported as not trustworthy anyway.
    if STRATEGY.get("split", True) and STRATEGY.get("second_read", True) and conf >= 0.8:
        other = reread(work, 1.4)
        if len(other) != len(objects):
            conf = min(conf, 0.5)
        EVIDENCE.clear()
        EVIDENCE.update(first_ev, second=len(other))
    count = len(objects)
    finish(img, name, f, objects, count, conf)


def reread(image, smooth):
    """The objects of another read of `image`, smoothed `smooth` times as much as the strategy
    says (the strategy is left as it was)."""
    first = dict(STRATEGY)
    STRATEGY["smooth"] = smooth * float(first.get("smooth", 1.5))
    try:
        return count_in(image)[0]
    finally:
        STRATEGY.clear()
        STRATEGY.update(first)


def count_in(work):
    """One read of the (working size) image: returns (objects, confidence)."""
    h, w = work.shape[:2]
    mask, dist, thr, guess, offset, t_noise, aside, lab, scene = segment(work)
    before = mask
    mask = drop_soft_blobs(mask, dist)
    blobs = mask.copy()  # the foreground as segmented (unthinned): what clusters are counted by area on
    # a part-sized blob dropped for its soft rim may be a part inside a glare spot: a decision
    # the count rests on
    _, lbl_d, st_d, _ = cv2.connectedComponentsWithStats(((before > 0) & (mask == 0)).astype(np.uint8), 8)
    _, _, st_k, _ = cv2.connectedComponentsWithStats(mask, 8)
    kept = st_k[1:, cv2.CC_STAT_AREA]
    soft_drops = int((st_d[1:, cv2.CC_STAT_AREA] >= 0.5 * float(np.median(kept))).sum()) if len(kept) else 0
    # a part lying inside a glare spot went with it: searched for against the spot's own light,
    # down to half the smaller blobs' size (their lower quartile): where most parts lie in
    # clusters the median blob is a cluster (five parts' area on one tray), and a lone washer in
    # a spot is under half of it
    rescued = 0
    if soft_drops:
        found, held = parts_in_glare(work, (lbl_d, st_d), mask, float(np.median(kept)), thr,
                                     float(np.percentile(kept, 25)))
        if found.any():
            rescued = cv2.connectedComponents(found, connectivity=8)[0] - 1
            soft_drops -= held  # the blobs left are those with no part found in them
            mask = np.maximum(mask, found)
    # rings too faint for the threshold: nuts and washers of low contrast (found ones are a
    # decision the count rests on, and where some were this faint others may be fainter)
    rings, loose = faint_rings(before, dist, thr, t_noise)
    if STRATEGY.get("split", True):
        # and solid parts as faint (doubtful ones, like loose rings, are close decisions)
        solid, doubtful = faint_parts(np.maximum(before, rings), dist, thr, t_noise)
        rings = np.maximum(rings, solid)
        loose += doubtful
    faint = cv2.connectedComponents(rings, connectivity=8)[0] - 1
    if faint:
        mask = np.maximum(mask, rings)
        blobs = np.maximum(blobs, rings)
    if STRATEGY.get("split", True):
        kept_mask = mask
        mask, skirts = parts_in_skirts(work, mask, dist, thr)
        if skirts:
            rescued += skirts
            # the blobs clusters are counted on lose the skirts too
            blobs = np.where(mask != kept_mask, mask, blobs).astype(np.uint8)
    n0, _, st0, _ = cv2.connectedComponentsWithStats(mask, 8)
    comp_areas = st0[1:, cv2.CC_STAT_AREA]
    big = comp_areas[comp_areas >= 20]
    prelim = float(np.median(big)) if len(big) else 50.0
    if STRATEGY.get("split", True):
        mask = shape_mask(mask, dist, thr)
    raw = mask.copy()
    mask, holes = fill_holes(mask, 0.6 * prelim)
    mask = (cv2.morphologyEx(mask, cv2.MORPH_OPEN,
                             cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))) > 0).astype(np.uint8)
    # every round hole is one holed part (nuts, washers), however its neighbours touch it; the
    # rest of the mask (parts without a hole) is split at the necks of its distance transform
    holed, rest, packed = (holed_parts(mask, raw, holes, dist) if STRATEGY.get("split", True)
                           else ([], mask, False))
    rest = (cv2.morphologyEx(rest, cv2.MORPH_OPEN,
                             cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))) > 0).astype(np.uint8)
    segs, lbl, stats = split_clusters(rest, raw, dist)
    for sg in segs:
        sg["holes"] = 0
        sg["holed"] = False
    segs = [s for s in segs if s["area"] >= 12] + holed
    slit = slits(raw, rest)
    for sg in segs:
        xs, ys = sg["pts"][:, 0].astype(int), sg["pts"][:, 1].astype(int)
        sg["slit"] = (not sg["holed"]) and bool(slit[ys, xs].any())
    edge = 2 + int(STRATEGY.get("smooth", 1.5))  # blur and opening eat an edge pixel or two
    for s in segs:
        x, y, bw, bh = s["box"]
        s["on_border"] = x <= edge or y <= edge or x + bw >= w - edge or y + bh >= h - edge
    along_drops = 0
    if segs:
        # Thin structures are not parts: scratches, tray rims and edges, cables. A part's
        # thickest wall (inscribed radius of its unfilled shape: a ring's wall, a cut ring's
        # arc, a bolt's head) is at least about a third of a typical part's.
        walls = [s["wall"] for s in segs if not s["on_border"]] or [s["wall"] for s in segs]
        w1 = float(np.median(walls))
        segs = [s for s in segs if s["holed"] or s["wall"] >= 0.35 * w1]
        # a piece that is mostly a filled hole is its neighbour's hole, not a part
        segs = [s for s in segs if s["holed"] or s["raw"] >= 0.25 * s["area"]]
        # Glare and light pools fade out over many pixels while every part in one image has a
        # rim as sharp as the same optics make it: a piece whose edge is more than twice as wide
        # as the median piece's (and wider than 4 px) is lighting, not a part. With an even
        # number of pieces the sharper of the two middle ones is the median: of two pieces, a
        # part and a glare spot, the mean of the two rims would hide the spot.
        soft_med = sorted(s["soft"] for s in segs)[(len(segs) - 1) // 2] if segs else 0.0
        glare = [s for s in segs if softer(s, 2.0, soft_med)]
        segs = [s for s in segs if not softer(s, 2.0, soft_med)]
        spots = glare_spots(work, before, dist, segs, soft_med)
        glare += spots
        segs = [s for s in segs if not any(s is g for g in spots)]
        segs, along_drops = drop_structures(segs, blobs, edge)
        shade = shadows(segs, offset, lab)
        segs = [s for s in segs if not any(s is t for t in shade)]
    objects = []
    # decisions the count rests on: close ones lower the confidence, whichever way they went
    # (parts packed so densely that the gaps between them are enclosed, every hole a gap: the
    # count of their clusters rests on the clusters' area; a pile of capsules took 24 for 26 at
    # 0.58 once its gaps were no holes)
    evidence = {"ambiguous": int(packed), "splits": 0, "near_miss": 0, "joined": 0,
                "soft_drops": soft_drops, "rescued": rescued, "faint": faint,
                "split_guess": int(guess == "split"), "surface": int(guess == "surface"),
                "set_aside": aside, "loose_rings": loose}
    # faint rings left out only for their outline are near misses; a part-like blob left out
    # with the scene (a part not counted, if the scene there was the parts' surface after all)
    # stands out above the threshold with a part's area and a sharp rim: no measure of it is
    # close, the count rests on the scene's being no surface, and it weighs as an ambiguous
    # piece (as a near miss, one alone left a vignetted tray's count short at 0.81)
    evidence["near_miss"] += loose
    evidence["ambiguous"] += aside + along_drops
    if segs:
        # a part-sized piece dropped as glare with a rim not far beyond the limit may be a part
        # under a highlight
        a_med = float(np.median([s["area"] for s in segs]))
        evidence["near_miss"] += sum(1 for s in glare
                                     if s["soft"] <= 3.0 * soft_med and s["area"] >= 0.5 * a_med)
    if segs:
        a1, h1, r1, a_hi = typical(segs)
        if STRATEGY.get("split", True):
            segs = merge_fragments(segs, mask.shape, a1, a_hi)
            a1, h1, r1, a_hi = typical(segs)
        whole = [t for t in segs if not t["on_border"]] or segs
        # the typical part's hull area and elongation (length over width)
        typ = [t for t in whole if 0.5 * a1 <= t["area"] <= 2.0 * a1] or whole
        c1 = float(np.median([hull_area(t) for t in typ]))
        e1 = float(np.median([elongation(t) for t in typ]))
        # most parts of the typical size have a hole (nuts, washers): touching ones keep their
        # holes and are counted one per hole (holed_parts)
        typ_holed = sum(1 for t in typ if t["holed"]) > 0.5 * len(typ)
        # and how convex it is (area over hull area)
        sol1 = float(np.median([t["area"] / hull_area(t) for t in typ]))
        # Every whole part of part size has a hole or a shaft (nuts, washers, bolts; none is a
        # compact solid piece such as a tablet): then a compact border piece with neither is
        # less than half of a part. A nut or washer half in or more shows its hole (the hole is
        # round its centre), open to the border if not whole; a bolt half in shows its shaft.
        # Only a ring's rim beyond its hole, or a bolt's head, lies in the image.
        all_shaped = any(t["holed"] for t in whole) and not any(
            not t["holed"] and t["area"] >= 0.5 * a1 and elongation(t) < 1.6 for t in whole)
        # a part whose end runs into a glare spot makes one blob with it, cut in two at the
        # neck between them: the part, and its end with the spot, a piece whose outline is soft
        # over most of its length (its softer 30th percentile over three times the median
        # piece's rim). That piece is glare, the other one the part. The count rests on that
        # decision (a part lying under the spot would be lost).
        rim_med = float(np.median([s["soft"] for s in segs]))
        gone = []
        for g in by_blob(segs):
            soft = [s for s in g if soft_outlined(s, rim_med)]
            if len(g) == 2 and len(soft) == 1:
                gone += soft
        if gone:
            evidence["ambiguous"] += len(gone)
            segs = [s for s in segs if not any(s is d for d in gone)]
        if STRATEGY.get("split", True):
            segs = join_lookalike_pairs(segs, evidence, a_hi, h1, e1)
            segs = join_recurring_pairs(segs, evidence)
        # the blobs of the foreground as segmented, and how many pieces each was cut into
        cc = cv2.connectedComponentsWithStats(blobs, 8)
        lit = {id(s): float(lab_offset(s, offset)[0]) > 0.0 for s in segs}
        n_lit = sum(lit.values())
        # the scene's edge cuts what lies across it, as the image border does
        at_scene = (cv2.dilate(scene.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
                    if scene is not None else None)
        cut = {}
        for s in segs:
            s["_blob"] = blob_of(s, cc[1])
            cut[s["_blob"]] = cut.get(s["_blob"], 0) + 1
        for s in segs:
            x, y, bw, bh = s["box"]
            on_border = s["on_border"]
            # Border rule: a part cut off by the image border counts when at least half of a
            # typical part's area is visible (compared without filling holes, which a cut part
            # no longer encloses; 0.45: the cut outline loses a pixel or so to the blur that a
            # whole part's does not); elsewhere anything above 15% of it counts (small kinds in a
            # mixed tray), smaller specks are noise.
            # (or its convex hull at least half a typical one's: a cut nut or washer loses more
            # of its ring than of its cover, its hole being open to the border)
            seen = max(s["raw"] / (0.9 * r1), hull_area(s) / c1) if on_border else 1.0
            # a round part (nut, washer, tablet, coin) shows its own size: the share of the
            # circle its outline follows that lies inside the image (in a mixed tray the
            # typical part may be of another kind and size)
            disc = circle_seen(s, w, h, edge, whole) if on_border else None
            # when the circle says half to 90% of it is in and the area says under half of a
            # typical part, the decision rests on which kind the piece is: a small round part
            # mostly in, or a larger one mostly out (a nut's corner pointing in follows a smaller
            # circle). Over 900 harness trays such pieces were in 3 times of 6. (A circle
            # wholly in is a small part touching the border, not cut by it.)
            kind_rests = disc is not None and 0.5 <= disc < 0.9 and seen < 0.5
            if disc is not None:
                seen = disc
            # how close to the border rule's decision: a circle's share is measured, an area
            # ratio against a typical part only estimated
            close = (0.35, 0.65) if disc is not None else (0.33, 0.85)
            if (on_border and all_shaped and not s["holed"] and seen >= 0.5 and cut_by_frame(s, w, h)
                    and elongation(s) < 2.2 and notch_share(s) < 0.02):
                # a part's rim or head, the rest beyond the border: not counted (it decides the
                # count; a compact part of a kind the tray shows no whole one of would be lost)
                evidence["near_miss"] += 1
                continue
            if seen < 0.5:
                if seen >= close[0]:
                    evidence["near_miss"] += 1
                continue
            if s["area"] < 0.15 * a1 and not (s["holed"] and cut[s["_blob"]] == 1):
                # (a ring lying alone, its round hole and all, is a part however small: three
                # small rubber rings beside pads 7 times their area; one cut from a blob with
                # other pieces may be a relief on a coin)
                continue
            # Long parts lying across each other make a piece far stubbier (under 0.6 times as
            # elongated) and far less convex (0.75 times) than one of them, where a larger part
            # of the kind keeps its proportions: it is counted by its area against the typical
            # part's (the larger single parts, a_hi, may be such crossings themselves), not by
            # its thickness, which is largest where they cross, and crossings alike are no
            # larger kind of part (sticks crossed in pairs among lone ones counted 13 for 17)
            crossed = (e1 >= 2.5 and not s["holed"] and elongation(s) < 0.6 * e1
                       and s["area"] < 0.75 * sol1 * hull_area(s))
            ratio = s["area"] / a1 if crossed else parts_by_area(s, a_hi, h1, e1)
            n = max(1, int(math.floor(ratio + 0.3)))  # 1.7 typical areas make two parts
            kin = 0
            if not STRATEGY.get("split", True) or s["holed"]:
                n = 1  # a holed part is one part (its disc was cut to its own rim)
            elif n > 1 and not crossed:
                # a large piece without a neck is a larger kind of part when the tray holds
                # others like it (same area, thickness and elongation): in a mixed tray a bolt
                # is not two nuts
                kin = sum(1 for t in segs if t is not s and similar(s, t))
                # or a single part of the same shape, only smaller: area grows with the square
                # of thickness for a larger size of one kind (a long bolt beside short ones),
                # while parts lying side by side or end to end change the proportions
                kin = kin or sum(1 for t in segs if t is not s and not t["holed"]
                                 and t["area"] < s["area"] and parts_by_area(t, a_hi, h1, e1) < 1.4
                                 and scaled(s, t))
                # so a long piece without a hole among them is another kind, not several of
                # them: a bolt among nuts (over 2.3 times as long as wide; two bolts lying side
                # by side or crossed make a stubbier piece)
                if not kin and typ_holed and elongation(s) >= 2.3:
                    kin = 1
                if kin:
                    n = 1
            elif (n == 1 and typ_holed and 0.7 <= ratio < 1.5 and elongation(s) < 2.3
                  and s["area"] < 0.65 * hull_area(s)):
                # and a piece without a hole among them that is far from convex and not long,
                # of 0.7 to 1.5 typical parts' area, is two small bolts in a V or crossed, not
                # one bolt (a larger one, 1.62 typical areas on seed 4669 tray 15, was one bolt
                # with a neighbour's shaft end)
                n = 2
            margin = abs(ratio + 0.3 - round(ratio + 0.3))  # distance to a decision boundary
            # within a fifth of a part's area of the decision: the spread of single parts' areas
            # could tip it either way
            score = clamp01(0.5 + margin * 1.0) if n > 1 or ratio > 1.2 else 0.95
            if kin:
                score = 0.7  # look-alikes could be clusters like it
            if s.get("merged") and s["area"] > 1.1 * a1:
                score = min(score, 0.7)  # fragments joined into more than a typical part
            if kind_rests:
                score = min(score, 0.6)  # the border rule's decision rests on the piece's kind
            # close to the border rule's decision (its score cap is laid on below)
            border_call = seen < close[1]
            if softer(s, 1.5, soft_med):
                score = min(score, 0.6)  # a soft rim: glare or shading may have made it
            if n == 1 and s.get("headed_join"):
                score = min(score, 0.6)  # a whole bolt joined to another as its shaft's end?
            if (n == 1 and not on_border and not s["holed"] and s["area"] < 0.85 * a1
                    and at_scene is not None
                    and at_scene[s["pts"][:, 1].astype(int), s["pts"][:, 0].astype(int)].any()):
                # smaller than a part and touching the scene (the table beside the tray): a part
                # the scene's edge cut, counted or not by what is left of it as by the border
                # rule, with no circle or hole to tell. Over 2,250 harness trays the counts with
                # such a piece were right 7 times of 13 (3 nuts counted 2 at 0.9).
                score = min(score, 0.6)
            if s["slit"] and n == 1:
                score = min(score, 0.6)  # one part round a slit: two lying side by side?
            if n == 1 and not s["holed"] and s["area"] < 0.65 * hull_area(s):
                score = min(score, 0.6)  # far from convex: two parts crossing, or in a V?
            if (n == 1 and not s["holed"] and s["area"] < 0.5 * a1 and s["_blob"] > 0
                    and cut[s["_blob"]] > 1):
                # under half a typical part, cut from a blob with other parts: a small part, or
                # a fragment of a neighbour (a shaft's end beyond a washer lying across it).
                # Over 3,450 harness trays and 990 on seven unseen seeds, confident counts
                # with such a piece were right 18 times of 22; its area does not tell which
                score = min(score, 0.6)
            if (n == 1 and not s["holed"] and not on_border and s["area"] < 0.75 * a1
                    and lit[id(s)] and n_lit == 1 and len(lit) >= 4):
                # under 0.75 of a typical part and the only piece lighter than the surface
                # around it, where every other one is darker: a small glare spot with a sharp
                # rim, or a small light part (it is counted; the count rests on it). Over 2,136
                # harness trays this took in two pieces: that glare spot (17 dark bolts counted
                # 18 at 0.93) and one in a count already below 0.8.
                score = min(score, 0.6)
            if score < 0.8:
                evidence["ambiguous"] += 1
            elif border_call:
                # A border decision near its threshold weighs as a near miss whichever way it
                # went, as it does where it left a piece out (above): on 1,500 harness trays of
                # six seeds the counts whose one close decision counted a border piece were
                # right 14 times of 14; 8 of them reach 0.8 now, and no wrong count does.
                evidence["near_miss"] += 1
            if border_call:
                score = min(score, 0.6)
            s["score"] = score
            if n > 1:
                # n parts from one piece's area alone: each part beyond the first is a decision
                # (the area's spread grows with the square root of n, and a piece of many
                # parts' area without a neck may be no parts at all: a tray's shadow band)
                evidence["splits"] += n - 1
            if n == 1:
                objects.append({"box": [x, y, bw, bh], "score": score, "_seg": s})
            else:
                # one segment holding n parts: its pixels split into n groups for the boxes
                objects.extend(split_boxes(s["pts"], n, score, s))
        if STRATEGY.get("split", True):
            objects = recount_clusters(objects, cc, w, h, edge, evidence)
        for o in objects:
            o.pop("_seg", None)
    # confidence: agreement of the count by parts with the count by total area, the spread of
    # single-part areas, how many decisions were close, and how far the parts stand above the
    # threshold (segmentation margin)
    count = len(objects)
    conf = 0.3
    if count:
        total = sum(s["area"] for s in segs if s["area"] >= 0.15 * a1)
        by_area = total / a1
        agree = abs(by_area - count) / max(1.0, math.sqrt(count))
        singles = [s["area"] for s in segs if 0.5 * a1 <= s["area"] <= 2.0 * a1]
        spread = float(np.std(singles) / (np.mean(singles) + 1e-6)) if len(singles) > 1 else 0.2
        strength = float(np.median(dist[mask > 0])) / max(thr, 1e-6)
        conf = 0.97
        conf -= 0.25 * min(1.0, max(0.0, agree - 0.5))
        conf -= 0.5 * min(1.0, max(0.0, spread - 0.3))
        # One ambiguous piece alone takes a count below 0.8: over 1000 generated trays (seeds
        # 31337, 77, 424242, 5001, 90210) a count resting on one was right 11 times of 13,
        # short of the 99% that 0.8 stands for. A border or glare decision near its threshold
        # (near_miss), a part found inside a glare spot (rescued), a part-sized blob dropped as
        # glare with no part found in it (soft_drops) and a first guess from the whole image's
        # two-class split (split_guess) weigh less: over 2,050 harness trays a count with one
        # or more of them and no ambiguous piece or split was right 379 times of 389. Alone,
        # one near miss or one rescued part leaves a clean count at 0.8 or more (two do not);
        # with these weights 53 more counts reach 0.8 there, none of them wrong.
        conf -= 0.18 * evidence["ambiguous"] + 0.16 * evidence["near_miss"]
        conf -= 0.03 * evidence["soft_drops"] + 0.09 * (evidence["rescued"] + evidence["faint"])
        conf -= 0.05 * evidence["split_guess"]
        # every blob that had to be split into parts is a decision the count rests on: one
        # split by area alone (no neck between the parts) weighs most; one at necks weighs
        # little when every piece looks like a single part (area within 35% of the typical
        # one), more when a piece is odd (a shaft, a half ring, a piece of glare). Where the
        # tray has glare (a blob dropped as glare, or a part found inside a spot) a piece's
        # outline may be the glare's: a bolt whose shaft runs into a spot is cut into a head
        # and a shaft-and-spot piece of part size. Over 2,066 harness trays a confident count
        # with a clean split and glare in the tray was wrong 5 times of 6. A spot that the shaft
        # took in whole is never dropped as glare, so it is seen on the piece itself: an outline
        # soft over most of its length (softness at its 30th percentile more than three times
        # the median piece's) makes the split odd, and so does a split of one part's area.
        pieces = by_blob(segs)
        necked = 0.0
        glare_seen = evidence["soft_drops"] + evidence["rescued"] > 0
        soft_ref = float(np.median([s["soft"] for s in segs])) if segs else 0.0
        # Two parts touching cover about twice a lone part's area: a blob split at a neck whose
        # pieces together cover less than 1.5 lone parts (the median blob of one piece, away
        # from the border, when there are two or more) may be one part cut in two.
        lone = [g[0]["area"] for g in pieces if len(g) == 1 and not g[0]["on_border"]]
        a_lone = float(np.median(lone)) if len(lone) >= 2 else 0.0
        for group in pieces:
            if len(group) > 1:
                clean = all(0.65 * a1 <= s["area"] <= 1.35 * a_hi
                            and not soft_outlined(s, soft_ref) for s in group)
                clean = clean and sum(s["area"] for s in group) >= 1.5 * a_lone
                necked += 0.07 if clean and not glare_seen else 0.2
        conf -= min(0.6, 0.22 * evidence["splits"] + necked)
        conf -= 0.3 * min(1.0, max(0.0, 2.0 - strength))
        conf = clamp01(conf)
        EVIDENCE.clear()
        EVIDENCE.update(evidence, agree=agree, spread=spread, necked=necked, strength=strength,
                        by_area=by_area, count=count)
    return objects, conf


def circle_seen(s, w, h, edge, whole):
    """The share of a border piece's circle inside the image, when its convex outline away from
    the border follows a circle (least squares; RMS off it under 6% of the radius, over at least a
    third of a turn) and whole round parts of that circle's size lie in the image (0.6 to 1.6
    times its area, length under 1.3 widths: a bolt's head is round too, but a bolt is not);
    else None."""
    x, y, bw, bh = s["box"]
    local = np.zeros((bh + 2, bw + 2), np.uint8)
    # the convex cover's outline: a cut ring's hole, open to the border, is no part of it
    cv2.fillConvexPoly(local, cv2.convexHull(s["pts"].astype(np.int32) - (x - 1, y - 1)), 1)
    cs, _ = cv2.findContours(local, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not cs:
        return None
    c = max(cs, key=len).reshape(-1, 2).astype(np.float64) + (x - 1, y - 1)
    free = ((c[:, 0] > edge + 1) & (c[:, 1] > edge + 1) & (c[:, 0] < w - 2 - edge)
            & (c[:, 1] < h - 2 - edge))
    c = c[free]
    if len(c) < 12:
        return None
    a = np.column_stack([c[:, 0], c[:, 1], np.ones(len(c))])
    sol = np.linalg.lstsq(a, -(c[:, 0] ** 2 + c[:, 1] ** 2), rcond=None)[0]
    cx, cy = -sol[0] / 2.0, -sol[1] / 2.0
    r2 = cx * cx + cy * cy - sol[2]
    if r2 <= 4.0:
        return None
    r = math.sqrt(r2)
    off = np.hypot(c[:, 0] - cx, c[:, 1] - cy) - r
    turn = np.unique(np.floor((np.arctan2(c[:, 1] - cy, c[:, 0] - cx) + math.pi) / (math.pi / 18.0)))
    if math.sqrt(float(np.mean(off * off))) > 0.06 * r or len(turn) < 12:
        return None
    disc = math.pi * r2
    if not any(0.6 * disc <= hull_area(t) <= 1.6 * disc and elongation(t) < 1.3
               for t in whole if not t["on_border"]):
        return None
    # the disc's share inside the image, on a grid of the disc's bounding square
    g = np.linspace(-r, r, 41)
    gx, gy = np.meshgrid(cx + g, cy + g)
    inside_disc = (gx - cx) ** 2 + (gy - cy) ** 2 <= r2
    inside_img = (gx >= 0) & (gx <= w - 1) & (gy >= 0) & (gy <= h - 1)
    return float((inside_disc & inside_img).sum()) / max(1, int(inside_disc.sum()))


def split_boxes(pts, n, score, seg):
    """Objects for n parts in one set of pixels: the pixels split into n groups (k-means on
    their positions), a box around each group."""
    if n > 1:
        crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
        cv2.setRNGSeed(1)  # the same boxes for the same pixels, whatever ran before
        _, lab_k, _ = cv2.kmeans(pts, n, None, crit, 2, cv2.KMEANS_PP_CENTERS)
        lab_k = lab_k.ravel()
    else:
        lab_k = np.zeros(len(pts), np.int32)
    out = []
    for k in range(n):
        p = pts[lab_k == k]
        if not len(p):
            p = pts
        x0, y0 = p.min(axis=0)
        x1, y1 = p.max(axis=0)
        out.append({"box": [int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)], "score": score,
                    "_seg": seg})
    return out


def pixels_of(group):
    """The pixels of the pieces a group of objects was counted from (each piece once)."""
    return np.concatenate([sg["pts"] for sg in {id(o["_seg"]): o["_seg"] for o in group}.values()])


class PartFitter:
    """Counts a blob by laying copies of a lone part's silhouette on it.

    Parts in a cluster touch along sides, cross shafts and lie head to tail, where the distance
    transform finds no neck and the area spreads with the parts' sizes; the silhouette of a part
    seen alone says what one part covers. Copies are turned in steps that move the far end of
    the part by about 3 px at a radius of 16 px (the search then tries half steps either side),
    mirrored when the shape is not symmetric, and sized 0.8 to 1.25 times (one kind's sizes
    vary). Work is at a scale where the part's radius is at most 24 px: at 16 px a copy's
    outline misses about a tenth of a part, as much as a glare spot joined to it."""

    SIZES = (0.8, 0.9, 1.0, 1.12, 1.25)

    def __init__(self, sil):
        ys, xs = np.nonzero(sil)
        radius = math.sqrt(float(((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2).max()))
        self.f = min(1.0, 24.0 / max(radius, 1.0))
        self.area = float(len(ys))
        sil = self._scaled(sil)
        ys, xs = np.nonzero(sil)
        cy, cx = float(ys.mean()), float(xs.mean())
        self.radius = math.sqrt(float(((ys - cy) ** 2 + (xs - cx) ** 2).max()))
        R = int(math.ceil(self.radius * 1.2)) + 2
        size = 2 * R + 1
        base = cv2.warpAffine(sil.astype(np.float32), np.float32([[1, 0, R - cx], [0, 1, R - cy]]),
                              (size, size), flags=cv2.INTER_LINEAR)
        self.shapes = [base]
        # mirrored about its principal axis: a second shape only when it differs
        m = cv2.moments((base > 0.5).astype(np.uint8), True)
        axis = 0.5 * math.degrees(math.atan2(2 * m["mu11"], m["mu20"] - m["mu02"]))
        flat = cv2.warpAffine(base, cv2.getRotationMatrix2D((R, R), axis, 1.0), (size, size))
        mirror = cv2.warpAffine(cv2.flip(flat, 0), cv2.getRotationMatrix2D((R, R), -axis, 1.0),
                                (size, size))
        a, b = base > 0.5, mirror > 0.5
        if (a & b).sum() < 0.9 * (a | b).sum():
            self.shapes.append(mirror)
        self.step = min(15.0, max(5.0, math.degrees(3.0 / max(min(self.radius, 16.0), 1.0))))
        self.cache = {}

    def _scaled(self, m):
        if self.f >= 1.0:
            return m.astype(np.uint8)
        small = cv2.resize(m.astype(np.float32), None, fx=self.f, fy=self.f,
                           interpolation=cv2.INTER_AREA)
        return (small >= 0.5).astype(np.uint8)

    def stencil(self, shape, angle, scale):
        """The silhouette turned by `angle` and sized by `scale`: (kernel, area, half size)."""
        key = (shape, round(angle, 2), round(scale, 3))
        if key not in self.cache:
            base = self.shapes[shape]
            c = (base.shape[0] - 1) / 2.0
            R = int(math.ceil(c * max(1.0, scale)))
            size = 2 * R + 1
            rot = cv2.getRotationMatrix2D((c, c), angle, scale)
            rot[:, 2] += R - c
            k = (cv2.warpAffine(base, rot, (size, size)) > 0.5).astype(np.float32)
            self.cache[key] = (k, float(k.sum()), R)
        return self.cache[key]

    def one_larger(self, blob):
        """How well a single copy sized to the blob's area covers it (best intersection over
        union over the turns): a larger part of the same shape is one part."""
        blob = self._scaled(blob)
        area = float(blob.sum())
        scale = math.sqrt(area / max(1.0, self.area * self.f * self.f))
        best = 0.0
        padded = {}  # the blob padded by each stencil's half size (one size for all turns)
        for shape in range(len(self.shapes)):
            for t in np.arange(0.0, 360.0, self.step):
                k, ka, R = self.stencil(shape, t, scale)
                if R not in padded:
                    padded[R] = np.pad(blob.astype(np.float32), R)
                v = float(cv2.filter2D(padded[R], -1, k, borderType=cv2.BORDER_CONSTANT).max())
                best = max(best, v / (area + ka - v))
        return best

    def count(self, blob, most):
        """Lays k copies for k = 1, 2, ... and keeps the last k whose copy explained at least a
        fifth of a part's area more of the blob. The cost of a layout is the blob left uncovered,
        plus three times the copies' area outside the blob, plus the blob covered twice; each new
        copy goes where it lowers the cost most, then every copy whose window it overlaps (itself
        too) is taken up and laid again where it lowers the cost most given the others (a copy
        laid across two touching parts, which leaves room for neither, moves to one of them).
        Returns (the boxes of the copies, in the blob's pixels; the cost left and the blob left
        uncovered, each as a share of the blob's area)."""
        blob = self._scaled(blob)
        P = int(math.ceil(self.radius * 1.2 * max(self.SIZES))) + 4
        inb = np.pad(blob.astype(np.float32), P)
        out_b = 1.0 - inb
        h, w = blob.shape
        turns = [(s, t) for s in range(len(self.shapes)) for t in np.arange(0.0, 360.0, self.step)]
        half = 0.5 * self.step

        def window(c):  # (kernel, the canvas window it covers)
            s, t, z, x, y = c
            k, _, R = self.stencil(s, t, z)
            return k, (slice(y, y + 2 * R + 1), slice(x, x + 2 * R + 1))

        def cost(C):  # (the layout's cost, the blob left uncovered)
            cov = np.minimum(C, 1.0)
            uncovered = (inb * (1.0 - cov)).sum()
            return (float(uncovered + 3.0 * (out_b * cov).sum() +
                          (inb * np.maximum(C - 1.0, 0.0)).sum()), float(uncovered))

        # Each placement correlates the gain with every candidate stencil: by the DFT, the gain's
        # spectrum once per placement and each stencil's once per blob (a canvas-sized array
        # each, kept up to 64 MB), where filter2D transformed both for every pair (p13, 31
        # tablets in piles: 9.1 s of 13.3 in filter2D). Windows read lie P or more from the
        # canvas's edge and no stencil reaches further, so the circular correlation is the
        # linear one there. The gains and stencils are whole numbers, so the sums are rounded
        # to them: ties fall to the first place in raster order and the first stencil, not to
        # the transform's rounding noise.
        M = (cv2.getOptimalDFTSize(inb.shape[0]), cv2.getOptimalDFTSize(inb.shape[1]))
        spectra = {}

        def spectrum(s, t, z):
            key = (s, round(t, 2), round(z, 3))
            if key in spectra:
                return spectra[key]
            k, _, R = self.stencil(s, t, z)
            centred = np.zeros(M, np.float32)
            centred[:2 * R + 1, :2 * R + 1] = k
            sp = cv2.dft(np.roll(centred, (-R, -R), axis=(0, 1)))
            if (len(spectra) + 1) * sp.nbytes <= 64 << 20:
                spectra[key] = sp
            return sp

        def best_of(gain, cands):  # the copy that lowers the cost most: (gain, centre, s, t, z)
            g = np.zeros(M, np.float32)
            g[:gain.shape[0], :gain.shape[1]] = gain
            G = cv2.dft(g)
            top = None
            for (s, t, z) in cands:
                S = cv2.idft(cv2.mulSpectrums(G, spectrum(s, t, z), 0, conjB=True),
                             flags=cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT)
                _, v, _, loc = cv2.minMaxLoc(np.rint(S[P:P + h, P:P + w]))
                if top is None or v > top[0]:
                    top = (v, loc, s, t, z)
            return top

        def lay(C):  # all turns at the part's own size, then the best turn's neighbours and sizes
            free = (C < 0.5).astype(np.float32)
            gain = free * (inb - 3.0 * out_b) - (1.0 - free) * inb
            _, loc, s, t, z = best_of(gain, [(s, t, 1.0) for (s, t) in turns])
            _, loc, s, t, z = best_of(gain, [(s, t + dt, z) for dt in (-half, 0.0, half)
                                             for z in self.SIZES])
            R = self.stencil(s, t, z)[2]
            return (s, t, z, loc[0] + P - R, loc[1] + P - R)

        C = np.zeros_like(inb)
        copies, layouts, costs = [], [[]], [cost(C)]
        step_needed = 0.2 * self.area * self.f * self.f

        def near(a, b):  # whether two windows overlap
            return (a[0].start < b[0].stop and b[0].start < a[0].stop and
                    a[1].start < b[1].stop and b[1].start < a[1].stop)

        while len(copies) < most:
            copies.append(lay(C))
            k, new_win = window(copies[-1])
            C[new_win] += k
            # a copy away from the new one keeps its best place: only those it touches move
            for i in [i for i in range(len(copies)) if near(window(copies[i])[1], new_win)]:
                k, win = window(copies[i])
                C[win] -= k
                copies[i] = lay(C)
                k, win = window(copies[i])
                C[win] += k
            layouts.append(list(copies))
            costs.append(cost(C))
            if costs[-2][0] - costs[-1][0] < step_needed:
                break
        n = 0
        while n + 1 < len(costs) and costs[n][0] - costs[n + 1][0] >= step_needed:
            n += 1
        boxes = []
        for c in layouts[n]:
            k, win = window(c)
            ys, xs = np.nonzero(k * inb[win])
            if not len(ys):
                continue
            x, y = win[1].start, win[0].start
            x0, y0 = (x + xs.min() - P) / self.f, (y + ys.min() - P) / self.f
            x1, y1 = (x + xs.max() + 1 - P) / self.f, (y + ys.max() + 1 - P) / self.f
            boxes.append([int(x0), int(y0), int(math.ceil(x1 - x0)), int(math.ceil(y1 - y0))])
        area = max(1.0, float(blob.sum()))
        return boxes, costs[n][0] / area, costs[n][1] / area


def one_shape(lbl, stats, ids, tb):
    """Whether at least 80% of the lone parts `ids` have the elongation of `tb` (within 25%):
    lone parts of several kinds give no one silhouette to count by."""
    def elong(b):
        x, y, bw, bh, _ = stats[b]
        ys, xs = np.nonzero(lbl[y:y + bh, x:x + bw] == b)
        return elongation({"pts": np.stack([xs, ys], 1).astype(np.float32)})

    e = elong(tb)
    others = [elong(b) for b in ids]
    alike = sum(1 for o in others if abs(o - e) <= 0.25 * max(e, o))
    return alike >= 0.8 * len(ids)


def recount_clusters(objects, cc, w, h, edge, evidence):
    """Counts every cluster of touching parts without holes against a lone part.

    The pieces the distance transform cuts a cluster into are unreliable where parts touch
    along a side or where thin parts (a bolt's shaft) lie against others, and the typical area
    taken over all pieces drifts when most parts lie in clusters. Lone parts are what a single
    part looks like: blobs of the unthinned foreground that hold one counted part, none
    holed, away from the border. A cluster is counted by laying copies of a lone part's
    silhouette on it (PartFitter); where no copy fits it, by area: a blob of several parts
    covers about as many times their median area (parts touch, they do not overlap), when at
    least three lone parts of one size say what that area is. Where either disagrees with the
    pieces' count, it is taken and the decision is marked ambiguous. `cc` is the foreground's
    connected components (cv2.connectedComponentsWithStats), each piece's label in its
    "_blob"."""
    lbl_n, lbl, stats, _ = cc
    if lbl_n <= 2:
        return objects
    groups = {}
    for o in objects:
        groups.setdefault(o["_seg"]["_blob"], []).append(o)

    def plain(b):  # a blob away from the border whose parts have no holes
        x, y, bw, bh, _ = stats[b]
        inside = x > edge and y > edge and x + bw < w - edge and y + bh < h - edge
        return b > 0 and inside and not any(o["_seg"]["holed"] for o in groups[b])

    def area_of(b):
        return float(stats[b, cv2.CC_STAT_AREA])

    def blob_mask(b):
        x, y, bw, bh, _ = stats[b]
        return (lbl[y:y + bh, x:x + bw] == b).astype(np.uint8)

    lone_ids = [b for b, g in groups.items()
                if plain(b) and len(g) == 1 and not g[0]["_seg"].get("merged")]
    if not lone_ids:
        return objects
    a_lone = float(np.median([area_of(b) for b in lone_ids]))
    near = [b for b in lone_ids if 0.6 * a_lone <= area_of(b) <= 1.6 * a_lone]
    # by area: three lone parts or more, of one size (kind), alike enough to count by
    by_area = len(lone_ids) >= 3 and len(near) >= max(3, 0.8 * len(lone_ids))
    spread = 1.0
    if by_area:
        a_lone = float(np.median([area_of(b) for b in near]))
        spread = float(np.std([area_of(b) for b in near]) / max(a_lone, 1e-6))
        by_area = spread <= 0.3
    # the silhouette: the lone part nearest the median (the larger one when there are only one or
    # two, which may lie against the border of a crowd), when the lone parts are of one shape
    fitter = None
    if by_area or len(lone_ids) < 3:
        tb = (min(near, key=lambda b: abs(area_of(b) - a_lone)) if by_area
              else max(lone_ids, key=area_of))
        if one_shape(lbl, stats, lone_ids, tb):
            fitter = PartFitter(blob_mask(tb))
    soft_ref = float(np.median([o["_seg"]["soft"] for o in objects]))
    out = []
    for b, g in groups.items():
        area = area_of(b)
        pieces = len({id(o["_seg"]) for o in g})
        if not plain(b):
            out.extend(g)
            continue
        # (a blob of more than 12 parts' area is a pile: copies laid one by one do not untangle
        # it, and laying them costs seconds per part)
        if fitter is not None and (pieces > 1 or area >= 1.5 * fitter.area) and \
                area <= 12 * fitter.area:
            m = blob_mask(b)
            # the copies may change the pieces' count by at most this; no more are laid
            slack = max(2.0, 0.3 * len(g))
            laid, residual, uncovered = fitter.count(
                m, min(int(1.5 * area / fitter.area) + 2, len(g) + int(slack) + 1))
            # a blob that one larger copy covers and the copies lay one on is one larger part
            # (parts come in sizes), even where the distance transform cut it in two at its
            # narrowest. Otherwise the copies count it where they explain it: they cover it (a
            # copy's outline at this scale leaves about a tenth uncovered; a glare spot joined to
            # a part leaves more) without lying outside it or on each other, and they add or take
            # away at most two parts or 30% of the pieces' count (a silhouette taken from a
            # fragment tiles a blob with many copies)
            if fitter.one_larger(m) >= 0.8:
                fits = len(laid) == 1
            else:
                fits = residual <= 0.3 and uncovered <= 0.2 and abs(len(laid) - len(g)) <= slack
            if laid and fits:
                if len(laid) != len(g):
                    evidence["ambiguous"] += 1
                    evidence["fitted"] = evidence.get("fitted", 0) + 1
                    x, y = int(stats[b, cv2.CC_STAT_LEFT]), int(stats[b, cv2.CC_STAT_TOP])
                    g = [{"box": [x + bx, y + by, bw, bh], "score": 0.5, "_seg": g[0]["_seg"]}
                         for (bx, by, bw, bh) in laid]
                out.extend(g)
                continue
        # a blob of one piece (no neck) may be a larger part: parts come in sizes, and a
        # lone part's area says nothing about the next size up. One the count above already took
        # for several parts by its area is a cluster either way (how many, the lone parts say),
        # unless its outline is soft over most of its length: a glare spot joined to parts, whose
        # area is no part's.
        one_part = pieces == 1 and (len(g) == 1 or soft_outlined(g[0]["_seg"], soft_ref))
        if not by_area or one_part:
            out.extend(g)
            continue
        ratio = area / a_lone
        n = max(1, int(round(ratio)))
        # The pieces' count stands while the area is consistent with it: k parts' areas spread
        # by sqrt(k) times one part's spread, and the lone parts' median is itself uncertain by
        # about 1.25 / sqrt(m) spreads (m lone parts), which a ratio multiplies by k.
        had = len(g)
        sd = spread * math.sqrt(had + 1.57 * had * had / len(near))
        if n == had or abs(ratio - had) <= 1.5 * sd:
            out.extend(g)
            continue
        evidence["ambiguous"] += 1
        evidence["recounted"] = evidence.get("recounted", 0) + 1
        out.extend(split_boxes(pixels_of(g), n, clamp01(0.5 - abs(ratio - n)), g[0]["_seg"]))
    return out


def finish(img, name, f, objects, count, conf):
    """Boxes back to the input's pixels, the annotated image and the answer line."""
    H, W = img.shape[:2]
    # boxes in the pixels of the loaded image (drawn), then of the input as sent (reported;
    # load_input may have shrunk it)
    for o in objects:
        o["box"] = [int(round(v / f)) for v in o["box"]]
        o["score"] = round(float(o["score"]), 3)
    objects.sort(key=lambda o: (o["box"][1] // max(1, int(20 / f)), o["box"][0]))
    out = img.copy()
    thick = max(1, min(H, W) // 200)
    for k, o in enumerate(objects):
        x, y, bw, bh = o["box"]
        cv2.rectangle(out, (x, y), (x + bw, y + bh), (0, 255, 0), thick)
        put_label(out, str(k + 1), (x, y - 2), scale=max(0.35, min(H, W) / 700.0), colour=(0, 0, 200))
    put_label(out, "%d %s" % (count, OBJECT), (4, H - 6))
    save(out)
    g = 1.0
    if STRATEGY.get("max_side"):
        sent = cv2.imread(name, cv2.IMREAD_UNCHANGED)
        if sent is not None and sent.shape[1] != W:
            g = sent.shape[1] / float(W)
    for o in objects:
        o["box"] = [int(round(v * g)) for v in o["box"]]
    emit({"count": int(count), "confidence": round(conf, 3), "objects": objects})
