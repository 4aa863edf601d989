"""Every tuned number of the 1:N first stage (screening), with its unit.

Geometry is in pixels at the matcher's reference resolution (``matcher.params.REF_DPI``), the
frame a :class:`~biostation.matcher.SearchTemplate` is in; directions in radians.
"""

#: minutia pairs closer than this are not coded (pixels): neighbours a ridge apart are unstable
PAIR_MIN_DIST = 16.0
#: ... nor pairs at least this far apart (pixels): long segments suffer most from skin distortion
PAIR_MAX_DIST = 208.0
#: distance bins over [PAIR_MIN_DIST, PAIR_MAX_DIST) (bins)
PAIR_DIST_BINS = 12
#: bins per turn of each end's direction relative to the segment joining the pair (bins)
PAIR_ANGLE_BINS = 8
#: length of a screening code (bits): one per (distance, angle, angle) cell, so 12 * 8 * 8
CODE_BITS = PAIR_DIST_BINS * PAIR_ANGLE_BINS * PAIR_ANGLE_BINS
#: bytes of one screening code
CODE_BYTES = CODE_BITS // 8
#: bits set in every screening code (bits): those of the histogram's strongest cells. Every code
#: sets the same number, so ranking by Hamming distance is ranking by overlap. Measured on the
#: mated FVC2000/2002 searches (89 exhaustive rank-1 hits among 20,000 synthetic templates, and
#: among the other fingers' FVC impressions): 320 of 768 ranks mates about twice as high as a cut
#: at the median (384), both for the typical and for the worst-ranked mates; 256 and 192 less so
CODE_SET_BITS = 320

#: default share of the gallery the first stage passes to the matcher (fraction, 0..1]; the
#: operating point ``biostation bench identify`` reports is chosen by the rank-1 parity rule
PENETRATION = 0.2
#: first stages a single-finger search can screen with: ``"codes"`` (the screening codes above,
#: a Hamming scan), ``"local"`` (the matcher's local-similarity screen,
#: :func:`biostation.matcher.screen_many`: every reference's minutiae, about a thirtieth of a
#: comparison's cost in C) or ``"cascade"`` (the codes keep :data:`CASCADE_CODES_PENETRATION` of
#: the gallery, the local screen ranks only those). The codes scan costs about 10 ns a reference,
#: the local screen about 0.35 us; the local screen keeps far more of the mates in a small shortlist,
#: and the cascade pays for it on the codes' shortlist only (see docs/capacity-plan.md)
SCREENS = ("codes", "local", "cascade")
#: the local screen sums the best local similarities of this many probe minutiae (minutiae). Chosen
#: on the mated FVC2000/2002 searches among 20,000 synthetic templates and the other fingers'
#: impressions: 4, 8 and 12 keep alike (98.1-98.7 % of the exhaustive hits within 1 % of the real
#: strangers, 99.6-99.8 % of the synthetic ones); the top 16 pairs (not minutiae) keep fewer
LOCAL_SCREEN_TOP = 8
#: default share of the gallery the local screen passes to the matcher (fraction, 0..1]. On the
#: same searches a 0.5 % shortlist of 20,080 references kept 473 of the 475 exhaustive rank-1 hits
#: and found 487 (it drops strangers that outscore a mate); 1 % kept 474
LOCAL_PENETRATION = 0.01
#: default share of the gallery the codes pass to the local screen in the cascade (fraction, 0..1];
#: the local screen then passes ``penetration`` (default :data:`LOCAL_PENETRATION`) of the
#: gallery to the matcher. Over all 490 mated FVC2000/2002 searches (every impression but the
#: enrolled one of 70 fingers) among 10^5 synthetic templates, the cascade kept the exhaustive
#: search's 426 rank-1 hits from a 31.6 % share on (the local screen passing 200 references):
#: 422 at 25 %, 404 at 10 %. Over 100 of them (the benchmark's default) every hit was kept from
#: 10 % on. The codes alone needed the whole gallery, the local screen alone its smallest share
CASCADE_CODES_PENETRATION = 0.32
#: the shortlist never holds fewer references than this (references): small galleries and
#: shards are then re-ranked nearly in full
MIN_SHORTLIST = 200

#: ten-print first stage: the code distance a finger the reference lacks counts (bits), so that a
#: missing finger neither helps nor sinks a person. The median screening-code distance between
#: impressions of different fingers over the eight FVC2000/2002 set B databases (640 templates:
#: 294; 5th..95th percentile 216..370; per database 268..300; mates' median 194)
FUSION_MISSING_DISTANCE = 294

#: a person's fused score (the sum over compared fingers) from which ABIS flags a candidate as a
#: match, by the number of fingers compared (1..10): the 0.01 % impostor quantile of the sum of
#: that many impostor finger scores. Measured on 77,280 impostor scores of the biostation
#: extractor's FVC2000/2002 B templates (impressions 1-2 of every finger against every impression
#: of every other finger; FVC2000 DB2_B left out, it holds DB1_B's fingers), summed over fingers
#: drawn independently (4 x 10^6 sums per count). Independence is an assumption: the fingers of one
#: real person are not independent, so the true FMR at these thresholds may be somewhat higher.
#: One finger gives 3,324, within 5 % of the matcher's calibrated 0.01 % threshold (3,182)
FUSED_MATCH_THRESHOLDS = (3324, 4161, 4920, 5786, 6460, 7234, 7812, 8342, 8893, 9492)

# --- synthetic background templates (identify/synthetic.py) --------------------------------------
# Figures fitted to the biostation extractor's templates of FVC2000 and FVC2002 set B (640
# views): minutiae per template 37 mean, 17 standard deviation, 5th..95th percentile 16..67.
#: log-normal minutiae count: mean and standard deviation of log(count) (natural log)
SYN_LOG_COUNT_MEAN = 3.52
SYN_LOG_COUNT_STD = 0.45
#: fewest and most minutiae of a synthetic template (minutiae)
SYN_MIN_COUNT, SYN_MAX_COUNT = 6, 120
#: image sizes drawn from (pixels at 500 dpi): the eight FVC2000/2002 sensors
SYN_SIZES = ((300, 300), (256, 364), (448, 478), (240, 320), (388, 374), (296, 560), (288, 384), (300, 300))
#: minutiae keep at least this distance from each other (pixels): about one ridge period
SYN_MIN_SPACING = 9.0
#: the finger's print area: an ellipse with semi-axes this share of the image's half sizes (real
#: impressions rarely fill the sensor; with the whole window, synthetic pair distances ran long
#: and the synthetic templates' screening codes sat farther from real probes than real strangers)
SYN_ELLIPSE = (0.77, 0.81)
#: ridge-flow classes of the print area drawn: arch, loop, whorl (probabilities). Not the Henry
#: class frequencies of whole fingers (arches are a few percent of those): an FVC-sized sensor
#: often shows no singular point, so the flow in view is arch-like. Chosen with SYN_ELLIPSE and
#: SYN_DIR_NOISE against the FVC templates on two figures at once, the matcher's impostor scores
#: and the screening codes' impostor distances (KS distances 0.03 and 0.13, against 0.03 and 0.17
#: before the print area was shrunk; more loops and whorls lower the impostor scores, direction
#: noise lowers them much faster)
SYN_CLASSES = (0.4, 0.4, 0.2)
#: spread of a minutia's direction around the ridge flow (radians)
SYN_DIR_NOISE = 0.0
#: spread of the finger's tilt on the sensor: the flow's base direction (radians, standard deviation)
SYN_FLOW_TILT = 0.25
#: minutia quality (1..100): normal, mean and standard deviation fitted to the same FVC templates
#: (median 45, 5th..95th percentile 15..68); the matcher weighs an unpaired minutia by it
SYN_QUALITY_MEAN = 44.0
SYN_QUALITY_STD = 17.0
