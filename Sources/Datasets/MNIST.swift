// MNIST: the four official IDX .gz files → data/mnist.h5 (layout NHW, see DatasetFile.swift); Fashion-MNIST
// (FashionMNIST.swift) shares the format and this decoder.
// Each file is gunzipped in-process; magic, dimensions, exact length, image/label agreement,
// the expected counts and label range are checked before anything is written.
import Foundation
import Storage

/// The four official file names, in the order train images, train labels, test images, test labels.
public let mnistFileNames = [
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
]

/// Decodes the four MNIST .gz files in `rawDir` into the HDF5 dataset file `output`.
/// - Parameters:
///   - expectedTrainCount, expectedTestCount: the official 60000 / 10000; tests pass small
///     values to decode small fixtures.
/// - Throws: `DatasetError` naming the file and the problem; nothing is left at `output`.
@discardableResult
public func decodeMNIST(
    rawDir: String, output: String, expectedTrainCount: Int = 60000,
    expectedTestCount: Int = 10000
) throws -> DecodeSummary {
    try decodeIDXDataset(
        "mnist", rawDir: rawDir, output: output, expectedTrainCount: expectedTrainCount,
        expectedTestCount: expectedTestCount,
        missingHint: "run `ste fetch mnist --raw-dir \(rawDir)` or place the official file there")
}

/// Any data set in MNIST's four-file IDX format (MNIST, Fashion-MNIST) → `output`, recorded as `dataset`.
func decodeIDXDataset(
    _ dataset: String, rawDir: String, output: String, expectedTrainCount: Int, expectedTestCount: Int,
    missingHint: String
) throws -> DecodeSummary {
    let paths = mnistFileNames.map { (rawDir as NSString).appendingPathComponent($0) }
    for path in paths where !FileManager.default.fileExists(atPath: path) {
        throw DatasetError(file: path, "file is missing", hint: missingHint)
    }
    return try writeAtomically(output) { writer in
        let train = try readMNISTSplit(
            images: paths[0], labels: paths[1], expected: expectedTrainCount)
        let test = try readMNISTSplit(
            images: paths[2], labels: paths[3], expected: expectedTestCount)
        let configuration =
            "{\"dataset\":\"\(dataset)\",\"expected_train\":\(expectedTrainCount),"
            + "\"expected_test\":\(expectedTestCount),\"decoder_version\":\(datasetDecoderVersion)}"
        let provenance = try Provenance(
            stage: "decode", configuration: configuration, inputs: paths,
            libraries: ["zlib": zlibVersionString])
        return try writeDatasetFile(
            writer, dataset: dataset, layout: .nhw, train: train, test: test,
            provenance: provenance)
    }
}

/// One split from its image and label files.
func readMNISTSplit(images imagePath: String, labels labelPath: String, expected: Int) throws
    -> DatasetSplit
{
    let imageBytes = try gunzip(file: imagePath)
    let images = try parseIDX(imageBytes, file: imagePath, rank: 3, itemName: "images")
    guard images.dims[1] == 28, images.dims[2] == 28 else {
        throw DatasetError(
            file: imagePath,
            "images are \(images.dims[1])×\(images.dims[2]), expected 28×28 (the MNIST format)")
    }
    let labelBytes = try gunzip(file: labelPath)
    let labels = try parseIDX(labelBytes, file: labelPath, rank: 1, itemName: "labels")
    guard labels.count == images.count else {
        throw DatasetError(
            file: labelPath,
            "holds \(labels.count) labels but \((imagePath as NSString).lastPathComponent) "
                + "holds \(images.count) images")
    }
    guard images.count == expected else {
        throw DatasetError(file: imagePath, "holds \(images.count) images, expected \(expected)")
    }
    let labelValues = Array(labelBytes[labels.dataOffset...])
    if let bad = labelValues.firstIndex(where: { Int($0) >= datasetClassCount }) {
        throw DatasetError(
            file: labelPath,
            "label \(bad) is \(labelValues[bad]), labels must be 0..<\(datasetClassCount)")
    }
    return DatasetSplit(
        images: Array(imageBytes[images.dataOffset...]), labels: labelValues,
        count: images.count, channels: 1, height: 28, width: 28)
}
