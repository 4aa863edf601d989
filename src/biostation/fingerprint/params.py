"""Tuned numbers of the minutiae extractor, each with its unit.

Every length is given in pixels at :data:`WORK_DPI` (500 pixels per inch, the FBI/ISO reference
resolution); the extractor resamples other resolutions to it first, so these numbers hold for
any sensor. Lengths that depend on the finger are given as multiples of the local ridge period
(pixels from one ridge to the next, about 9 px at 500 dpi for an adult finger: Maltoni et al.,
*Handbook of Fingerprint Recognition*, 2nd ed., sec. 3.6, inter-ridge distance 8-12 px at 500 dpi).
"""

from __future__ import annotations

# --- input ----------------------------------------------------------------------------------
#: resolution every stage works at (pixels per inch)
WORK_DPI = 500.0
#: a resolution within this relative distance of WORK_DPI is used as is (no resampling)
DPI_TOLERANCE = 0.03
#: accepted input resolutions (pixels per inch)
MIN_DPI, MAX_DPI = 250.0, 2000.0
#: smallest accepted image side (pixels at WORK_DPI): about 3 ridges across
MIN_SIDE = 32
#: largest accepted image side and area (input pixels): a 1000 ppi FBI slap is 3200 x 3000
MAX_SIDE = 8192
MAX_PIXELS = 24_000_000

# --- normalization and segmentation ---------------------------------------------------------
#: Gaussian sigma (px) of the local mean and contrast used to normalize the image
NORM_SIGMA = 8.0
#: band-pass (difference of Gaussians) sigmas (px): keeps periods of about 4..20 px
BANDPASS_SIGMAS = (0.9, 4.0)
#: Gaussian sigma (px) of the local ridge energy and coherence windows used for segmentation
SEG_SIGMA = 7.0
#: foreground = energy above this fraction of the image's robust top energy, or above the lower
#: fraction where connected to such an area (hysteresis) ...
SEG_ENERGY_FRACTION = 0.14
SEG_ENERGY_FRACTION_LOW = 0.11
#: ... and orientation coherence above this (0..1)
SEG_MIN_COHERENCE = 0.20
#: percentile of the energy taken as the image's "top" energy
SEG_TOP_PERCENTILE = 95.0
#: structuring element diameter (px) of the morphological clean-up of the mask
SEG_CLOSE_DIAMETER = 15
SEG_OPEN_DIAMETER = 11
#: a foreground region smaller than this fraction of the largest one is dropped
SEG_MIN_REGION_FRACTION = 0.15
#: an enclosed background region (a hole in the mask) is filled when its area is at most this
#: fraction of the image; larger ones are background ringed by edge artefacts
SEG_MAX_HOLE_FRACTION = 0.25
#: inside the finger, an area whose ridge energy is below this fraction of the image's top
#: energy holds no ridges (a smudge saturated to black, a blank patch): it is taken out of the
#: mask again after closing and hole filling (0 = off), when it is at least SEG_VOID_DIAMETER
#: (px) across. Left in, the normalization amplifies its sensor noise into ridges and minutiae
#: (FVC2000 DB3's dark smudges below the crease). The fraction is a noise floor, well below
#: the faintest ridges the hysteresis accepts (SEG_ENERGY_FRACTION_LOW)
SEG_VOID_ENERGY_FRACTION = 0.02
SEG_VOID_DIAMETER = 11
#: after hole filling and void removal the regions are judged again (True): small ones by
#: SEG_MIN_REGION_FRACTION, and any region nowhere wider than SEG_MIN_REGION_WIDTH (px) is
#: dropped: such a band (the platen's edge along an image side, a strip joined by hole
#: filling) cannot hold a minutia far enough from its border (BORDER_DISTANCE, QUALITY_BORDER)
SEG_FINAL_REGION_CHECK = True
SEG_MIN_REGION_WIDTH = 24
#: smallest usable foreground (px^2 at WORK_DPI): about 2 x 2 mm
MIN_FOREGROUND_AREA = 40 * 40
#: a foreground whose orientation coherence at this percentile is below MIN_FOREGROUND_COHERENCE
#: holds no ridge pattern (noise). A high percentile, because a faint or dry finger has a
#: coherent part even where most of it is poor: on the 640 FVC2000 and FVC2002 B images the
#: 90th percentile is 0.42 or more, on the uniform, Gaussian and salt noise of the unit tests
#: 0.28..0.33 (the median would leave no margin: 0.26 on a faint FVC2000 finger, up to 0.25 on noise)
FOREGROUND_COHERENCE_PERCENTILE = 90.0
MIN_FOREGROUND_COHERENCE = 0.37
#: largest image the extractor works on, after resampling to WORK_DPI (px^2): about 4 x 4 inches,
#: room for a four-finger flat slap (3.2 x 3.0 inches)
MAX_WORK_PIXELS = 2048 * 2048
#: images whose grey levels have a standard deviation below this are blank (grey levels)
MIN_CONTRAST = 2.0

# --- orientation field ----------------------------------------------------------------------
#: sigma (px) of the Gaussian applied before the gradient
GRADIENT_SIGMA = 1.0
#: sigma (px) of the structure-tensor window of the orientation (about 1.4 ridge periods)
ORIENTATION_SIGMA = 13.0
#: sigma (px) of the structure-tensor window of the coherence
COHERENCE_SIGMA = 7.0

# --- ridge frequency ------------------------------------------------------------------------
#: sigma (px) of the windows of the local gradient-to-signal energy ratio
FREQUENCY_SIGMA = 12.0
#: accepted ridge periods (px at WORK_DPI)
MIN_PERIOD, MAX_PERIOD = 5.0, 16.0
#: period assumed where it cannot be measured (px)
DEFAULT_PERIOD = 9.0

# --- enhancement (Gabor filter bank applied in the frequency domain) ------------------------
#: number of orientation channels over 180 degrees; pixels interpolate between the two nearest
GABOR_ORIENTATIONS = 8
#: Gaussian envelope sigmas, as multiples of the ridge period: across and along the ridges
#: (Hong, Wan, Jain 1998 used 4 px for a period of about 9 px, i.e. 0.44)
GABOR_SIGMA_ACROSS = 0.55
GABOR_SIGMA_ALONG = 0.75

#: sigma (px) of the windows of the reliability map (enhanced / input energy)
RELIABILITY_SIGMA = 6.0

#: margin (px) kept around the foreground's bounding box for the later stages
CROP_MARGIN = 12

# --- minutiae -------------------------------------------------------------------------------
#: radius (ridge periods) of the skeleton stretch used to measure a minutia's direction
DIRECTION_RADIUS = 1.1
#: a minutia closer than this (ridge periods) to the foreground border is dropped
BORDER_DISTANCE = 0.9
#: a ridge segment shorter than this (ridge periods) that ends in two endings is a dot/short
#: ridge, one with an ending and a bifurcation is a spur, one between bifurcations is a bridge
SHORT_RIDGE = 1.6
SPUR_LENGTH = 1.1
BRIDGE_LENGTH = 1.0
#: two endings closer than this (ridge periods), facing each other, are a broken ridge
BROKEN_RIDGE_GAP = 1.6
#: cosine of the largest angle between the gap and the two endings' directions for a break
BROKEN_RIDGE_ALIGNMENT = 0.6
#: a minutia with more than this many others within CLUSTER_RADIUS is noise (ridge periods)
CLUSTER_RADIUS = 1.2
CLUSTER_MAX_NEIGHBOURS = 2
#: minutiae where the orientation coherence is below this are dropped (0..1). Off: the quality
#: (below) carries the coherence to the matcher, which gives an unpaired minutia of low quality
#: little weight, while a dropped true minutia can pair with nothing. On noisy or faint fingers
#: most of the coherence is low, and a threshold left them with too few minutiae to match
MIN_MINUTIA_COHERENCE = 0.0
#: minutiae where the reliability (enhanced / input energy, relative to the image's best) is
#: below this are dropped (0..1)
MIN_MINUTIA_RELIABILITY = 0.0
#: a minutia's quality is 100 x its orientation coherence, scaled down where the reliability is
#: below QUALITY_RELIABILITY_FULL (in proportion: half at half of it) and falling linearly to 0
#: over QUALITY_BORDER (ridge periods) from the foreground border. The matcher weighs unpaired
#: minutiae by it. (On the eight FVC2000/FVC2002 B databases this ranks minutiae better for the
#: matcher than 100 x sqrt(coherence x reliability): reliability above about a sixth of the
#: image's best says little more about a minutia. Once voids were taken out of the mask, 0.15 was
#: the choice of six of the eight leave-one-database-out folds against 0.3; see
#: benchmarks/accuracy_loo.py.)
QUALITY_RELIABILITY_FULL = 0.15
QUALITY_BORDER = 3.0
#: most minutiae kept per view, by quality (ISO/IEC 19794-2 allows 255)
MAX_MINUTIAE = 120
