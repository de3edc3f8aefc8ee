#!/usr/bin/env python3
"""Known-answer vectors of rass's keyed RNG (lib/rass/core/rng.hpp), computed
independently from the documented construction with Python integers:

  stream_seed(seed, key, stream) = mix64(fnv1a64(stream, fnv1a64(b"\\0", fnv1a64(key, mix64(seed)))))
  mix64 = SplitMix64's output function applied to x + 0x9e3779b97f4a7c15
  Rng(s): xoshiro256** state = the first four SplitMix64 outputs from state s
  uniform() = (next >> 11) * 2^-53;  below(n): rejection of next >= 2^64 - 2^64 mod n, then next mod n

It also prints SplitMix64's first outputs for seed 1234567, which match the
published reference (Vigna's splitmix64.c / Java's SplittableRandom):
6457827717110365317, 3203168211198807973, ...

Run: python3 tests/core/make_rng_vectors.py  (pinned in tests/core/test_core.cpp)
"""
M = (1 << 64) - 1


def mix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M
    return x ^ (x >> 31)


def fnv1a64(data, h=0xCBF29CE484222325):
    for c in data:
        h = ((h ^ c) * 0x100000001B3) & M
    return h


def stream_seed(seed, key, stream):
    h = fnv1a64(key.encode(), mix64(seed))
    h = fnv1a64(b"\0", h)
    h = fnv1a64(stream.encode(), h)
    return mix64(h)


def splitmix64(state, n):
    out = []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & M
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        out.append(z ^ (z >> 31))
    return out


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


class Xoshiro256ss:
    def __init__(self, seed):
        self.s = splitmix64(seed, 4)

    def next(self):
        s = self.s
        result = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53

    def below(self, n):
        limit = M - M % n
        while True:
            x = self.next()
            if x < limit:
                return x % n


def main():
    print("splitmix64(1234567):", splitmix64(1234567, 3))
    for seed, key, stream in [(0, "", "params"), (0, "astronaut", "params"), (42, "a/b#v1", "noise1"),
                              (2**64 - 1, "img", "params")]:
        print('stream_seed(%d, "%s", "%s") = %d' % (seed, key, stream, stream_seed(seed, key, stream)))
        r = Xoshiro256ss(stream_seed(seed, key, stream))
        print("  next_u64:", [r.next() for _ in range(4)])
        print("  uniform: ", [repr(r.uniform()) for _ in range(2)])
        print("  below(21):", [r.below(21) for _ in range(4)])
    r = Xoshiro256ss(0)
    print("Rng(0).next_u64:", [r.next() for _ in range(3)])


if __name__ == "__main__":
    main()
