"""Every tuned number of the matcher, with its unit. Nothing else in the matcher is tuned.

Geometry is measured at the reference resolution :data:`REF_DPI`: templates at other
resolutions are scaled to it when they are prepared, so a 1000 dpi template and a 500 dpi one of
the same finger compare at the same scale. Directions are integer codes, :data:`ANGLE_STEPS` per
turn (the ISO/IEC 19794-2 unit, 1.40625 degrees).
"""

#: resolution every template is scaled to before matching (pixels per inch)
REF_DPI = 500.0
#: direction codes per full turn (so 64 = 90 degrees)
ANGLE_STEPS = 256
#: largest coordinate after scaling to REF_DPI (pixels; 41 cm): bounds keep the kernels' squared
#: distances within 32 bits
MAX_COORD = 8191

# --- local descriptor (binary neighbourhood code, built once per template) ---------------------
#: radius of a minutia's neighbourhood (pixels at REF_DPI)
DESC_RADIUS = 80.0
#: grid cells per side of the square neighbourhood grid (cells)
DESC_CELLS = 8
#: relative-direction bins per turn (bins)
DESC_DIR_BINS = 4
#: a neighbour marks every cell whose centre lies this close (pixels at REF_DPI)
DESC_SPREAD = 16.0
#: ... and every direction bin whose centre is this close to its relative direction (codes)
DESC_DIR_SPREAD = 40
#: 64-bit words per descriptor (DESC_CELLS**2 * DESC_DIR_BINS / 64)
DESC_WORDS = DESC_CELLS * DESC_CELLS * DESC_DIR_BINS // 64

# --- pairing ------------------------------------------------------------------------------------
#: minutiae whose directions differ by more than this are never paired (codes; 64 = 90 deg)
PAIR_MAX_DIR = 64
#: local similarity scale: Dice coefficient times this (integer units)
SIM_SCALE = 1024
#: two descriptors with fewer set bits between them than this are not compared (bits)
SIM_MIN_BITS = 8
#: best local pairs kept for the consistency step (pairs)
TOP_PAIRS = 16

# --- consistency of two pairs (rotation/translation invariant) ----------------------------------
#: segment lengths may differ by this much (pixels at REF_DPI) ...
CONS_DIST_ABS = 11
#: ... or by this fraction of the mean length, in 1/256 units (elastic distortion). Set together
#: with CONS_DIST_ABS on the eight FVC2000/FVC2002 B databases and the SecuGen ISO templates of
#: FVC2002 (benchmarks/accuracy_loo.py): 11 px / 20 (about 8 %) sits in a flat region (REL
#: 18..24 at 11 px score alike), tighter than the former 12 px / 26, which let more
#: chance-consistent pairs of similar-pattern impostors through; 8 px rejects genuine pairs
CONS_DIST_REL = 20
#: segment direction relative to each end's minutia direction (codes; 14 = 19.7 deg)
CONS_ANGLE = 14
#: relative direction of the two minutiae (codes)
CONS_DIR = 14

# --- global alignment -----------------------------------------------------------------------------
#: seeds (best-supported pairs) tried for global alignment
SEEDS = 1
#: a transformed minutia matches one at most this far (pixels at REF_DPI) ...
ALIGN_DIST = 16
#: ... plus this much per pixel of distance from the seed minutia, in 1/256 (elastic distortion)
ALIGN_GROW = 12
#: ... whose direction differs by at most this much (codes; 18 = 25 deg)
ALIGN_DIR = 18
#: margin around a template's minutiae bounding box counted as its overlap area (pixels)
OVERLAP_MARGIN = 12
#: floor on the overlap minutia counts in the score denominator (minutiae)
MIN_OVERLAP = 12
#: an unpaired minutia inside the overlap counts in the score denominator with a weight from its
#: quality: WEIGHT_STEPS units at quality QUALITY_FULL or above, proportionally fewer below (at
#: least 1 unit); a paired minutia, or one of unreported quality (0, as ISO/IEC 19794-2 allows),
#: counts in full. A spurious minutia in a poor region then costs a genuine comparison less than
#: a clear minutia that found no partner (weight units per minutia; quality 1..100)
WEIGHT_STEPS = 4
QUALITY_FULL = 60
#: each paired minutia counts its local similarity plus this bonus (SIM_SCALE units) ...
PAIR_BONUS = 64
#: ... and this much weight counts as one paired minutia (SIM_SCALE units): a pair of half local
#: similarity. The score scale follows from it: SCORE_SCALE is a template whose overlapping
#: minutiae all pair at half similarity, and fingerprint/sequence.py SAME_FINGER_SCORE and
#: matcher.THRESHOLDS are calibrated on it
PAIR_UNIT = SIM_SCALE // 2 + PAIR_BONUS
#: score scale: a score is (weighted pairs / PAIR_UNIT)^2 * SCORE_SCALE / (n1' * n2') (integer; n1', n2'
#: the overlap counts, unpaired minutiae weighted by quality: see WEIGHT_STEPS)
SCORE_SCALE = 10000
#: the highest score, reached only when every overlapping minutia pairs perfectly (a template
#: against itself). Nothing clamps scores, so strong genuine candidates keep distinct scores.
SCORE_MAX = SCORE_SCALE * (SIM_SCALE + PAIR_BONUS) ** 2 // PAIR_UNIT ** 2
#: fixed-point bits of the rotation tables
TRIG_BITS = 14
#: resolution of the arctangent table (entries over [0, 1])
ATAN_RES = 1024
