import PolicyCore

/// A small seeded generator, so randomized tests reproduce their failures.
public typealias SeededGenerator = SplitMix64
