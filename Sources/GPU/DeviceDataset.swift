// The data set kept in device memory: a batcher's image bytes, labels and normalisation table uploaded once, and each
// batch built on the device by `gather_batch` (KernelSource.swift) from the batcher's rows and crop/flip draws — the
// same floats as the host batcher's (Training/Batcher.swift), with 16 bytes a row crossing the bus instead of the
// pixels. Also a batch uploaded once and reused (the benchmark's fixed batch, as the PyTorch peer keeps its own).
import Kernels
import Training

final class DeviceDataset {
    /// The batcher it was uploaded from (kept, so that its identity cannot be taken by another).
    let batcher: Batcher
    private let images: DeviceBuffer, imageLabels: DeviceBuffer, lookup: DeviceBuffer
    private let plan: DeviceBuffer
    private let gpu: ComputeDevice

    init(_ batcher: Batcher, _ gpu: ComputeDevice) {
        self.batcher = batcher
        self.gpu = gpu
        images = DeviceDataset.upload(batcher.images, gpu)
        imageLabels = DeviceDataset.upload(batcher.labels, gpu)
        lookup = DeviceDataset.upload(batcher.lookup, gpu)
        plan = DeviceBuffer(gpu, bytes: 16 * batcher.batchSize)
    }

    private static func upload<T>(_ values: [T], _ gpu: ComputeDevice) -> DeviceBuffer {
        values.withUnsafeBytes { raw in
            let buffer = DeviceBuffer(gpu, bytes: raw.count)
            buffer.upload(raw.baseAddress!, bytes: raw.count)
            return buffer
        }
    }

    /// Builds batch `index` of `epoch` into `x` (its shape set here) and `labels` (≥ 4 bytes a row); returns the rows.
    func build(epoch: Int, index: Int, into x: inout ReusableDeviceTensor, labels: DeviceBuffer) -> (DeviceTensor, Int) {
        let (rows, draws) = batcher.rows(epoch: epoch, index: index)
        var entries = [Int32](repeating: 0, count: 4 * rows.count)
        for (r, row) in rows.enumerated() {
            entries[4 * r] = Int32(row)
            if r < draws.count {
                entries[4 * r + 1] = Int32(draws[r].top)
                entries[4 * r + 2] = Int32(draws[r].left)
                entries[4 * r + 3] = draws[r].flip ? 1 : 0
            }
        }
        entries.withUnsafeBytes { plan.upload($0.baseAddress!, bytes: $0.count) }
        let shape = [rows.count, batcher.channels, batcher.height, batcher.width]
        let tensor = x.get(gpu, shape)
        gpu.gatherBatch(.elements(tensor.count), x: tensor.pointer, labels: labels.pointer, images: images.pointer,
            imageLabels: imageLabels.pointer, lookup: lookup.pointer, plan: plan.pointer, count: Int32(rows.count),
            c: Int32(batcher.channels), h: Int32(batcher.height), w: Int32(batcher.width))
        return (tensor, rows.count)
    }
}

/// A batch uploaded once (pixels and labels), for steps that reuse it.
public final class ResidentBatch {
    let x: DeviceTensor
    let labels: DeviceBuffer
    var count: Int { x.shape[0] }

    init(_ batch: Batch, _ gpu: ComputeDevice) {
        x = DeviceTensor(buffer: DeviceBuffer(gpu, floats: batch.x.count), shape: batch.x.shape)
        x.buffer.upload(batch.x)
        labels = DeviceBuffer(gpu, bytes: 4 * batch.count)
        batch.labels.withUnsafeBytes { labels.upload($0.baseAddress!, bytes: 4 * batch.count) }
    }
}
