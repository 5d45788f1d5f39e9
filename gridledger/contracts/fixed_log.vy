# pragma version 0.4.3
"""
@title fixed_log
@notice Base-2 logarithm on 1e18 fixed point by the binary-digit method (integer part from the
        bit length, then 48 squarings, one fractional bit each). Pure; used by RETB for the
        renewable incentive. gridledger.market.clearing.log2_fp reproduces it bit for bit.
"""

ONE: constant(uint256) = 10**18
FRACTION_BITS: constant(uint256) = 48


@internal
@pure
def _log2_fp(v: uint256) -> uint256:
    """log2(v / 1e18) * 1e18, rounded down step by step; v >= 1e18"""
    assert v >= ONE, "log2 argument below 1"
    n: uint256 = 0
    y: uint256 = v // ONE
    for i: uint256 in range(256):
        if y < 2:
            break
        y >>= 1
        n = unsafe_add(n, 1)
    z: uint256 = v >> n  # in [1e18, 2e18): the squarings below cannot overflow
    result: uint256 = unsafe_mul(n, ONE)
    bit: uint256 = ONE
    for i: uint256 in range(FRACTION_BITS):
        z = unsafe_div(unsafe_mul(z, z), ONE)
        bit >>= 1
        if z >= 2 * ONE:
            z >>= 1
            result = unsafe_add(result, bit)
    return result
