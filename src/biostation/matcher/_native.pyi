"""Type stubs of the C kernels (native/matcher.c). Arrays: C-contiguous, native byte order."""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

PARAM_NAMES: tuple[str, ...]

def configure(params: Sequence[int], cos: npt.NDArray[np.int64], sin: npt.NDArray[np.int64],
              atan: npt.NDArray[np.int64]) -> None: ...
def score_pair(ax: npt.NDArray[np.int32], ay: npt.NDArray[np.int32], at: npt.NDArray[np.int32],
               adesc: npt.NDArray[np.uint64], acnt: npt.NDArray[np.int32], aw: npt.NDArray[np.int32], akey: int,
               bx: npt.NDArray[np.int32], by: npt.NDArray[np.int32], bt: npt.NDArray[np.int32],
               bdesc: npt.NDArray[np.uint64], bcnt: npt.NDArray[np.int32], bw: npt.NDArray[np.int32], bkey: int) -> int: ...
def score_many(px: npt.NDArray[np.int32], py: npt.NDArray[np.int32], pt: npt.NDArray[np.int32],
               pdesc: npt.NDArray[np.uint64], pcnt: npt.NDArray[np.int32], pw: npt.NDArray[np.int32], pkey: int,
               gx: npt.NDArray[np.int32], gy: npt.NDArray[np.int32], gt: npt.NDArray[np.int32],
               gdesc: npt.NDArray[np.uint64], gcnt: npt.NDArray[np.int32], gw: npt.NDArray[np.int32], offsets: npt.NDArray[np.int64],
               keys: npt.NDArray[np.uint64], index: npt.NDArray[np.int64], out: npt.NDArray[np.int32]) -> None: ...
def screen_many(px: npt.NDArray[np.int32], py: npt.NDArray[np.int32], pt: npt.NDArray[np.int32],
                pdesc: npt.NDArray[np.uint64], pcnt: npt.NDArray[np.int32], pw: npt.NDArray[np.int32], pkey: int,
                gx: npt.NDArray[np.int32], gy: npt.NDArray[np.int32], gt: npt.NDArray[np.int32],
                gdesc: npt.NDArray[np.uint64], gcnt: npt.NDArray[np.int32], gw: npt.NDArray[np.int32],
                offsets: npt.NDArray[np.int64], keys: npt.NDArray[np.uint64], index: npt.NDArray[np.int64],
                out: npt.NDArray[np.int32], top: int) -> None: ...
def screen_isa(allow_avx512: bool = ...) -> str: ...
