// The decoded dataset file (data/mnist.h5, data/cifar10.h5): its schema, written once here by
// both decoders and read back by `loadDataset(path:)` for the trainer.
//   /train/images uint8 [N,28,28] (NHW) or [N,3,32,32] (NCHW), contiguous, uncompressed
//   /train/labels uint8 [N]; /test/images, /test/labels likewise
//   root attributes: provenance + dataset, layout, n_train, n_test, decoder_version,
//   mean and std (per channel, of the train pixels / 255)
import Storage

/// Version of the decoders' output schema and logic; bump when either changes.
public let datasetDecoderVersion = 1
/// Both datasets have classes 0...9.
public let datasetClassCount = 10

/// How images are laid out in a dataset file.
public enum DatasetLayout: String, Sendable {
    /// [N, H, W]: one channel (MNIST).
    case nhw = "NHW"
    /// [N, C, H, W] (CIFAR-10, as in its binary records).
    case nchw = "NCHW"
}

/// One split (train or test) of a decoded dataset, in memory.
public struct DatasetSplit: Sendable, Equatable {
    /// Pixels 0...255, shape (count, channels, height, width), row-major.
    public var images: [UInt8]
    /// Class of each image, 0..<10.
    public var labels: [UInt8]
    public let count: Int
    public let channels: Int
    public let height: Int
    public let width: Int

    public init(
        images: [UInt8], labels: [UInt8], count: Int, channels: Int, height: Int, width: Int
    ) {
        precondition(
            images.count == count * channels * height * width && labels.count == count,
            "DatasetSplit: buffer sizes do not match count \(count) × \(channels)×\(height)×\(width)"
        )
        self.images = images
        self.labels = labels
        self.count = count
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// Pixels per image.
    public var imageSize: Int { channels * height * width }
}

/// What a decoder wrote.
public struct DecodeSummary: Sendable {
    public let dataset: String
    public let output: String
    public let trainCount: Int
    public let testCount: Int
    /// Per channel, of the train pixels / 255.
    public let mean: [Double]
    public let std: [Double]
}

// MARK: - Statistics

/// Per-channel mean and (population) standard deviation of pixels / 255, from exact integer
/// histograms, so the result does not depend on summation order.
public func channelStatistics(_ split: DatasetSplit) -> (mean: [Double], std: [Double]) {
    let plane = split.height * split.width
    var histogram = [Int](repeating: 0, count: split.channels * 256)
    // Raw-pointer loop: also fast enough in debug builds, where the tests decode real MNIST.
    split.images.withUnsafeBufferPointer { pixels in
        histogram.withUnsafeMutableBufferPointer { h in
            guard var p = pixels.baseAddress, let h = h.baseAddress else { return }
            for _ in 0..<split.count {
                for c in 0..<split.channels {
                    let bins = h + c * 256
                    let end = p + plane
                    while p < end {
                        bins[Int(p.pointee)] &+= 1
                        p += 1
                    }
                }
            }
        }
    }
    var mean: [Double] = []
    var std: [Double] = []
    for c in 0..<split.channels {
        var n = 0
        var sum = 0
        var sumSquares = 0
        for v in 0..<256 {
            let k = histogram[c * 256 + v]
            n += k
            sum += k * v
            sumSquares += k * v * v
        }
        let m = Double(sum) / Double(max(n, 1))
        let variance = max(0, Double(sumSquares) / Double(max(n, 1)) - m * m)
        mean.append(m / 255)
        std.append(variance.squareRoot() / 255)
    }
    return (mean, std)
}

// MARK: - Writing

/// Writes both splits and the root attributes into `writer` (the caller commits or discards).
func writeDatasetFile(
    _ writer: H5Writer, dataset: String, layout: DatasetLayout,
    train: DatasetSplit, test: DatasetSplit, provenance: Provenance
) throws -> DecodeSummary {
    for (name, split) in [("train", train), ("test", test)] {
        let imageShape =
            layout == .nhw
            ? [split.count, split.height, split.width]
            : [split.count, split.channels, split.height, split.width]
        try writer.write("/\(name)/images", split.images, shape: imageShape)
        try writer.write("/\(name)/labels", split.labels, shape: [split.count])
    }
    let stats = channelStatistics(train)
    try provenance.write(to: writer)
    try writer.setAttributes([
        "dataset": .string(dataset),
        "layout": .string(layout.rawValue),
        "n_train": .int(Int64(train.count)),
        "n_test": .int(Int64(test.count)),
        "decoder_version": .int(Int64(datasetDecoderVersion)),
        "mean": .doubles(stats.mean),
        "std": .doubles(stats.std),
    ])
    return DecodeSummary(
        dataset: dataset, output: writer.path, trainCount: train.count,
        testCount: test.count, mean: stats.mean, std: stats.std)
}

/// Opens the writer, runs `body`, and commits; on any error nothing is left at `output` or its
/// temporary name.
func writeAtomically(_ output: String, _ body: (H5Writer) throws -> DecodeSummary) throws
    -> DecodeSummary
{
    let writer = try H5Writer(path: output)
    do {
        let summary = try body(writer)
        try writer.commit()
        return summary
    } catch {
        writer.discard()
        throw error
    }
}

// MARK: - Reading

/// Reads a file written by `ste decode`: both splits and the per-channel mean/std of the train
/// pixels / 255. Shapes, dtypes, counts and labels are checked; errors name the file.
public func loadDataset(path: String) throws
    -> (train: DatasetSplit, test: DatasetSplit, mean: [Double], std: [Double])
{
    let hint = "decode it with `ste decode mnist` or `ste decode cifar10`"
    do {
        let reader = try H5Reader(path: path)
        let attributes = try reader.attributes(on: "/")
        guard let layoutName = attributes["layout"]?.stringValue,
            let layout = DatasetLayout(rawValue: layoutName)
        else {
            throw DatasetError(
                file: path,
                "not a dataset file: root attribute 'layout' is missing or not NHW/NCHW", hint: hint
            )
        }
        let train = try readSplit(reader, "train", layout: layout, declared: attributes["n_train"])
        let test = try readSplit(reader, "test", layout: layout, declared: attributes["n_test"])
        guard test.channels == train.channels, test.height == train.height,
            test.width == train.width
        else { throw DatasetError(file: path, "train and test images have different shapes") }
        guard case .doubles(let mean)? = attributes["mean"],
            case .doubles(let std)? = attributes["std"],
            mean.count == train.channels, std.count == train.channels
        else {
            throw DatasetError(
                file: path,
                "root attributes 'mean'/'std' missing or not \(train.channels) doubles", hint: hint)
        }
        return (train, test, mean, std)
    } catch let e as StorageError {
        throw DatasetError(file: e.file, (e.object.map { "\($0): " } ?? "") + e.message, hint: hint)
    }
}

private func readSplit(
    _ reader: H5Reader, _ name: String, layout: DatasetLayout,
    declared: AttributeValue?
) throws -> DatasetSplit {
    let imagesPath = "/\(name)/images"
    let labelsPath = "/\(name)/labels"
    let rank = layout == .nhw ? 3 : 4
    let (images, shape) = try reader.read(
        imagesPath, as: UInt8.self,
        shape: [Int](repeating: -1, count: rank))
    let count = shape[0]
    let (labels, _) = try reader.read(labelsPath, as: UInt8.self, shape: [count])
    if let declared, declared.intValue != Int64(count) {
        throw DatasetError(
            file: reader.path,
            "\(imagesPath) holds \(count) images but attribute n_\(name) says \(declared)")
    }
    if let bad = labels.firstIndex(where: { Int($0) >= datasetClassCount }) {
        throw DatasetError(
            file: reader.path,
            "\(labelsPath)[\(bad)] is \(labels[bad]), labels must be 0..<\(datasetClassCount)")
    }
    let channels = layout == .nhw ? 1 : shape[1]
    return DatasetSplit(
        images: images, labels: labels, count: count, channels: channels,
        height: shape[rank - 2], width: shape[rank - 1])
}
