// CIFAR-10: the official cifar-10-binary.tar.gz → data/cifar10.h5 (layout NCHW, see DatasetFile.swift).
// The archive is gunzipped and walked in-process; data_batch_1..5.bin (in that order) become the
// 50000 train images, test_batch.bin the 10000 test images. Each record is 1 label byte + 3072
// pixel bytes (R, G, B planes of 32×32) and is kept in that CHW order.
import Foundation
import Storage

public let cifar10ArchiveName = "cifar-10-binary.tar.gz"
/// Members read from the archive (any folder; officially cifar-10-batches-bin/).
public let cifar10BatchNames = [
    "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
    "data_batch_5.bin", "test_batch.bin",
]
/// 1 label byte + 3 × 32 × 32 pixel bytes.
public let cifar10RecordSize = 3073

/// Decodes the CIFAR-10 binary archive into the HDF5 dataset file `output`.
/// - Parameters:
///   - recordsPerBatch: records in each of the six batch files, officially 10000 (each file
///     30,730,000 bytes); tests pass small values to decode small fixtures.
/// - Throws: `DatasetError` naming the archive (and member) and the problem; nothing is left at `output`.
@discardableResult
public func decodeCIFAR10(archive: String, output: String, recordsPerBatch: Int = 10000) throws
    -> DecodeSummary
{
    guard FileManager.default.fileExists(atPath: archive) else {
        throw DatasetError(
            file: archive, "file is missing",
            hint: "place the official \(cifar10ArchiveName) there, or run `ste fetch cifar10`")
    }
    return try writeAtomically(output) { writer in
        let (train, test) = try readCIFAR10Archive(archive, recordsPerBatch: recordsPerBatch)
        let configuration =
            "{\"dataset\":\"cifar10\",\"records_per_batch\":\(recordsPerBatch),"
            + "\"decoder_version\":\(datasetDecoderVersion)}"
        let provenance = try Provenance(
            stage: "decode", configuration: configuration, inputs: [archive],
            libraries: ["zlib": zlibVersionString])
        return try writeDatasetFile(
            writer, dataset: "cifar10", layout: .nchw, train: train, test: test,
            provenance: provenance)
    }
}

/// Both splits from the archive; every batch file must be present once and have the exact size.
func readCIFAR10Archive(_ archive: String, recordsPerBatch: Int) throws
    -> (train: DatasetSplit, test: DatasetSplit)
{
    let imageSize = cifar10RecordSize - 1
    let batchBytes = recordsPerBatch * cifar10RecordSize
    let trainCount = 5 * recordsPerBatch
    var trainImages = [UInt8](repeating: 0, count: trainCount * imageSize)
    var trainLabels = [UInt8](repeating: 0, count: trainCount)
    var testImages = [UInt8](repeating: 0, count: recordsPerBatch * imageSize)
    var testLabels = [UInt8](repeating: 0, count: recordsPerBatch)
    var found = Set<String>()

    let tar = TarReader(try GzipReader(path: archive), archive: archive)
    while let entry = try tar.next() {
        let base = (entry.name as NSString).lastPathComponent
        guard entry.isRegularFile, let batch = cifar10BatchNames.firstIndex(of: base) else {
            continue
        }
        guard found.insert(base).inserted else {
            throw DatasetError(file: archive, "holds \(base) twice")
        }
        guard entry.size == batchBytes else {
            throw DatasetError(
                file: archive,
                "member \(entry.name) is \(entry.size) bytes, expected \(batchBytes) "
                    + "(\(recordsPerBatch) records of \(cifar10RecordSize) bytes)")
        }
        let data = try tar.readData(entry)
        let member = "member \(entry.name)"
        if batch == 5 {
            try unpackRecords(
                data, count: recordsPerBatch, first: 0, into: &testImages, &testLabels,
                archive: archive, member: member)
        } else {
            try unpackRecords(
                data, count: recordsPerBatch, first: batch * recordsPerBatch,
                into: &trainImages, &trainLabels, archive: archive, member: member)
        }
    }
    let missing = cifar10BatchNames.filter { !found.contains($0) }
    guard missing.isEmpty else {
        throw DatasetError(
            file: archive,
            "archive has no \(missing.joined(separator: ", ")) "
                + "(expected cifar-10-batches-bin/data_batch_1..5.bin and test_batch.bin)",
            hint: "use the official \(cifar10ArchiveName) (MD5 \(cifar10ArchiveMD5))")
    }
    return (
        DatasetSplit(
            images: trainImages, labels: trainLabels, count: trainCount,
            channels: 3, height: 32, width: 32),
        DatasetSplit(
            images: testImages, labels: testLabels, count: recordsPerBatch,
            channels: 3, height: 32, width: 32)
    )
}

/// Splits `count` records into labels and CHW images at positions `first...`; checks each label.
private func unpackRecords(
    _ data: [UInt8], count: Int, first: Int, into images: inout [UInt8],
    _ labels: inout [UInt8], archive: String, member: String
) throws {
    let imageSize = cifar10RecordSize - 1
    try data.withUnsafeBufferPointer { records in
        try images.withUnsafeMutableBufferPointer { images in
            try labels.withUnsafeMutableBufferPointer { labels in
                for r in 0..<count {
                    let record = records.baseAddress! + r * cifar10RecordSize
                    guard Int(record[0]) < datasetClassCount else {
                        throw DatasetError(
                            file: archive,
                            "\(member): record \(r) has label \(record[0]), "
                                + "labels must be 0..<\(datasetClassCount)")
                    }
                    labels[first + r] = record[0]
                    (images.baseAddress! + (first + r) * imageSize).update(
                        from: record + 1, count: imageSize)
                }
            }
        }
    }
}
