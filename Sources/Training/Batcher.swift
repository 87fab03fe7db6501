// Data feeding: a seeded shuffle (own Fisher–Yates over SplitMix64), batches with the last partial
// batch kept, uint8 → float NCHW with per-channel normalisation (torchvision ToTensor + Normalize:
// (p/255 − mean)/std), and the CIFAR-10 augmentation of the authors' code (RandomCrop(32, padding=4)
// with zero padding, then RandomHorizontalFlip). Everything random is a pure function of
// (seed, epoch, batch index), so a run resumed from a checkpoint sees the same batches.
import Kernels

public enum Augmentation: Sendable, Equatable {
    case none
    /// Random crop of the original size from the image zero-padded by `padding` on every side, then a
    /// horizontal flip with probability ½ (padding 4 for CIFAR-10).
    case cropAndFlip(padding: Int)
}

/// One batch: `x` [count, c, h, w] (a tensor the batcher reuses: read it before the next call) and labels.
public struct Batch {
    public let x: Tensor
    public let labels: [Int32]
    /// Dataset indices of the rows, in order.
    public let indices: [Int]
    public var count: Int { labels.count }

    public init(x: Tensor, labels: [Int32], indices: [Int]) { (self.x, self.labels, self.indices) = (x, labels, indices) }
}

public enum BatcherError: Error, CustomStringConvertible, Equatable {
    case badInput(String)
    public var description: String { if case .badInput(let m) = self { return m } else { return "" } }
}

public final class Batcher {
    public let count: Int, channels: Int, height: Int, width: Int
    public let batchSize: Int
    public let shuffle: Bool
    public let augmentation: Augmentation
    public let seed: UInt64
    /// The data set as given: count·c·h·w bytes, image-major CHW, and count labels (an engine that keeps the data
    /// set in its own memory builds its batches from these, `lookup` and `rows`).
    public let images: [UInt8]
    public let labels: [UInt8]
    /// lookup[c·256 + p] = (p/255 − mean[c]) / std[c], exactly the torchvision arithmetic in Float.
    public let lookup: [Float]
    private var order: [Int]
    private var epoch = -1
    private var fullBatch: Tensor?, lastBatch: Tensor?

    /// `images`: count·c·h·w bytes, image-major CHW (CIFAR records, MNIST with c = 1); `labels`: count bytes.
    public init(images: [UInt8], labels: [UInt8], count: Int, channels: Int, height: Int, width: Int,
                batchSize: Int, mean: [Float], std: [Float], shuffle: Bool, augmentation: Augmentation = .none,
                seed: UInt64) throws {
        guard count > 0, channels > 0, height > 0, width > 0, batchSize > 0 else {
            throw BatcherError.badInput("batcher: count \(count), shape \(channels)x\(height)x\(width), batch \(batchSize)")
        }
        guard images.count == count * channels * height * width else {
            throw BatcherError.badInput("batcher: \(images.count) image bytes for \(count)x\(channels)x\(height)x\(width)")
        }
        guard labels.count == count else {
            throw BatcherError.badInput("batcher: \(labels.count) labels for \(count) images")
        }
        guard mean.count == channels, std.count == channels, std.allSatisfy({ $0 > 0 }) else {
            throw BatcherError.badInput("batcher: mean/std need \(channels) entries, std > 0")
        }
        if case .cropAndFlip(let p) = augmentation, p < 0 {
            throw BatcherError.badInput("batcher: negative crop padding \(p)")
        }
        self.images = images
        self.labels = labels
        self.count = count
        self.channels = channels
        self.height = height
        self.width = width
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.augmentation = augmentation
        self.seed = seed
        var table = [Float](repeating: 0, count: channels * 256)
        for c in 0..<channels {
            for p in 0..<256 { table[c * 256 + p] = (Float(p) / 255 - mean[c]) / std[c] }
        }
        lookup = table
        order = Array(0..<count)
    }

    public var batchesPerEpoch: Int { (count + batchSize - 1) / batchSize }

    /// The order of the dataset in `epoch`: identity without shuffling, else Fisher–Yates driven by
    /// SplitMix64 seeded from (seed, epoch).
    public func permutation(epoch: Int) -> [Int] {
        var p = Array(0..<count)
        guard shuffle else { return p }
        var rng = Batcher.stream(seed, .shuffle, UInt64(epoch), 0)
        for i in stride(from: count - 1, to: 0, by: -1) { p.swapAt(i, rng.next(below: i + 1)) }
        return p
    }

    /// The number of rows of batch `index` (the last one may be short).
    public func count(ofBatch index: Int) -> Int { min(batchSize, count - index * batchSize) }

    /// The data set rows of batch `index` (from 0) of `epoch`, permutation(epoch)[index·batchSize ..< +batchSize],
    /// and their crop/flip draws: everything a batch is made of but its pixels.
    public func rows(epoch: Int, index: Int) -> (rows: [Int], draws: [(top: Int, left: Int, flip: Bool)]) {
        precondition(index >= 0 && index < batchesPerEpoch, "batch \(index) of \(batchesPerEpoch)")
        if epoch != self.epoch {
            order = permutation(epoch: epoch)
            self.epoch = epoch
        }
        let start = index * batchSize
        let rows = Array(order[start..<min(start + batchSize, count)])
        return (rows, augmentationDraws(epoch: epoch, index: index, count: rows.count))
    }

    /// Batch `index` (from 0) of `epoch`: the pixels of `rows(epoch:index:)`, normalised and augmented.
    public func batch(epoch: Int, index: Int) -> Batch {
        let (rows, draws) = self.rows(epoch: epoch, index: index)
        let x: Tensor
        if rows.count == batchSize {
            if fullBatch == nil { fullBatch = Tensor(zeros: [batchSize, channels, height, width]) }
            x = fullBatch!
        } else {
            if lastBatch?.shape[0] != rows.count { lastBatch = Tensor(zeros: [rows.count, channels, height, width]) }
            x = lastBatch!
        }
        let plane = height * width, imageSize = channels * plane
        images.withUnsafeBufferPointer { src in
            lookup.withUnsafeBufferPointer { table in
                for (r, row) in rows.enumerated() {
                    let image = src.baseAddress! + row * imageSize
                    let out = x.pointer + r * imageSize
                    switch augmentation {
                    case .none:
                        for c in 0..<channels {
                            let t = table.baseAddress! + c * 256
                            for i in 0..<plane { out[c * plane + i] = t[Int(image[c * plane + i])] }
                        }
                    case .cropAndFlip:
                        let (top, left, flip) = draws[r]
                        for c in 0..<channels {
                            let t = table.baseAddress! + c * 256
                            for i in 0..<height {
                                let si = i + top
                                for j in 0..<width {
                                    let sj = (flip ? width - 1 - j : j) + left
                                    let inside = si >= 0 && si < height && sj >= 0 && sj < width
                                    let pixel = inside ? image[c * plane + si * width + sj] : 0  // zero padding
                                    out[c * plane + i * width + j] = t[Int(pixel)]
                                }
                            }
                        }
                    }
                }
            }
        }
        return Batch(x: x, labels: rows.map { Int32(labels[$0]) }, indices: rows)
    }

    /// The crop offsets (relative to the unpadded image, in −padding...padding) and flips of the `count` rows of
    /// batch `index` of `epoch`, in row order; empty without augmentation. torchvision's order per image: the
    /// crop's (top, left) in 0...2·padding of the padded image, then the flip coin.
    public func augmentationDraws(epoch: Int, index: Int, count: Int) -> [(top: Int, left: Int, flip: Bool)] {
        guard case .cropAndFlip(let padding) = augmentation else { return [] }
        var rng = Batcher.stream(seed, .augmentation, UInt64(epoch), UInt64(index))
        return (0..<count).map { _ in
            let top = rng.next(below: 2 * padding + 1) - padding
            let left = rng.next(below: 2 * padding + 1) - padding
            return (top, left, rng.nextUniform() < 0.5)
        }
    }

    /// An independent generator for (purpose, epoch, batch): the run seed mixed through SplitMix64.
    static func stream(_ seed: UInt64, _ purpose: RandomStream, _ epoch: UInt64, _ batch: UInt64) -> SplitMix64 {
        var mix = SplitMix64(seed: seed &+ purpose.rawValue)
        var e = SplitMix64(seed: mix.next() ^ epoch)
        var b = SplitMix64(seed: e.next() ^ (batch &* 0x9E37_79B9_7F4A_7C15))
        return SplitMix64(seed: b.next())
    }
}
