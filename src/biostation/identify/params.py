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

#: default share of the gallery the first stage passes to the matcher (fraction, 0..1]; the
#: operating point ``biostation bench identify`` reports is chosen by the rank-1 parity rule
PENETRATION = 0.2
#: the shortlist never holds fewer references than this (references): small galleries and
#: shards are then re-ranked nearly in full
MIN_SHORTLIST = 200

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
#: the finger's print area: an ellipse with semi-axes this share of the image's half sizes
SYN_ELLIPSE = (0.90, 0.95)
#: ridge-flow classes of the print area drawn: arch, loop, whorl (probabilities). Not the Henry
#: class frequencies of whole fingers (arches are a few percent of those): an FVC-sized sensor
#: often shows no singular point, so the flow in view is arch-like. Chosen, with SYN_DIR_NOISE,
#: so that synthetic impostor scores follow FVC's (KS distance 0.03 against 0.26 with Henry
#: frequencies and 0.12 rad of spread, whose impostor scores ran too low)
SYN_CLASSES = (0.6, 0.3, 0.1)
#: spread of a minutia's direction around the ridge flow (radians)
SYN_DIR_NOISE = 0.0
