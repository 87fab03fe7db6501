// CUDA graphs of the engine's steps: once a step's shapes were seen (its buffers allocated, its convolutions' algorithms
// chosen), the next step of the same shapes is captured from the stream — the forward pass with the loss kernel as one
// graph, the backward pass as another, since the host reads the loss between them — and later steps launch the two
// graphs instead of a few hundred kernels and library calls one by one. The optimizer's update (two launches, its
// learning rate and step count change between steps) and the batch (built on the device from a 16-byte-a-row plan)
// stay outside. A graph replays its addresses, so every graph is dropped when a buffer was released since it was
// captured, or when an activation slot was swapped. STE_CUDA_GRAPHS=0 turns graphs off (the step runs directly).
import Foundation
import NN

/// Device work recorded once and launched again with the same arguments.
protocol DeviceGraph: AnyObject {
    func launch()
}

/// An instantiated CUDA graph (cudaGraphExec_t), launched on the device's stream.
final class CUDAGraph: DeviceGraph {
    unowned let device: CUDADevice
    let executable: Ptr

    init(_ device: CUDADevice, _ executable: Ptr) { (self.device, self.executable) = (device, executable) }
    deinit { _ = device.libraries.runtime.graphExecDestroy(executable) }

    func launch() { device.check(device.libraries.runtime.graphLaunch(executable, device.stream), "cudaGraphLaunch") }
}

extension CUDADevice {
    static let withoutGraphs = " (STE_CUDA_GRAPHS=0 runs the steps without graphs)"

    /// Captures `body`'s work on the stream (thread-local mode: a call that cannot be captured fails rather than run)
    /// and instantiates it; nil after a failure, recorded as a device error (the captured work did not run).
    func capture(_ body: () -> Void) -> DeviceGraph? {
        let rt = libraries.runtime
        let begun = rt.streamBeginCapture(stream, CUDARuntime.captureModeThreadLocal)
        guard begun == 0 else {
            fail("CUDA: cudaStreamBeginCapture failed: \(CUDADevice.runtimeMessage(rt, begun))" + CUDADevice.withoutGraphs)
            return nil
        }
        capturing = true
        body()
        capturing = false
        var graph: Ptr = nil
        let ended = rt.streamEndCapture(stream, &graph)
        guard ended == 0, graph != nil else {
            fail("CUDA: cudaStreamEndCapture failed (a call of the step cannot be captured): "
                 + CUDADevice.runtimeMessage(rt, ended) + CUDADevice.withoutGraphs)
            return nil
        }
        defer { _ = rt.graphDestroy(graph) }
        var executable: Ptr = nil
        let made = rt.graphInstantiateWithFlags(&executable, graph, 0)
        guard made == 0 else {
            fail("CUDA: cudaGraphInstantiateWithFlags failed: \(CUDADevice.runtimeMessage(rt, made))" + CUDADevice.withoutGraphs)
            return nil
        }
        return CUDAGraph(self, executable)
    }
}

/// One step's graphs: the forward pass with the loss kernel, its logits, and (for a training step) the backward pass.
final class StepGraph {
    let forward: DeviceGraph
    let logits: DeviceTensor
    var backward: DeviceGraph?

    init(forward: DeviceGraph, logits: DeviceTensor) { (self.forward, self.logits) = (forward, logits) }
}

/// The engine's graphs by what a step depends on: the input's address and shape, the labels' address, the mode.
struct StepKey: Hashable {
    let input: UnsafeMutableRawPointer, labels: UnsafeMutableRawPointer
    let shape: [Int]
    let training: Bool, gradient: Bool
}

final class StepGraphs {
    var enabled = ProcessInfo.processInfo.environment["STE_CUDA_GRAPHS"] != "0"
    private var graphs: [StepKey: StepGraph] = [:]
    /// Keys whose step ran once directly (buffers allocated, algorithms chosen): the next one is captured.
    private var seen: Set<StepKey> = []
    private var releases = -1
    private var activations: [Activation] = []

    /// The forward pass of `key`: the recorded graph launched, or `body` captured (the graph then launched), or `body`
    /// run directly the first time. Returns the logits and the graph the backward pass belongs with (nil: run directly).
    func forward(_ key: StepKey, _ gpu: ComputeDevice, _ network: Network, _ body: () -> DeviceTensor)
        -> (DeviceTensor, StepGraph?) {
        guard enabled else { return (body(), nil) }
        let slots = network.activationsInOrder
        if gpu.releases != releases || slots != activations {
            (graphs, seen, releases, activations) = ([:], [], gpu.releases, slots)
        }
        if let g = graphs[key] {
            g.forward.launch()
            return (g.logits, g)
        }
        guard seen.contains(key) else {
            seen.insert(key)
            return (body(), nil)
        }
        var logits: DeviceTensor?
        guard let graph = gpu.capture({ logits = body() }) else {
            enabled = false
            return (logits!, nil)
        }
        graph.launch()
        let step = StepGraph(forward: graph, logits: logits!)
        if !key.gradient { graphs[key] = step }  // a training step's is kept once its backward pass is captured too
        return (logits!, step)
    }

    /// The backward pass of the step whose forward pass gave `step`: its graph launched, or captured with `body` now.
    func backward(_ key: StepKey, _ step: StepGraph?, _ gpu: ComputeDevice, _ body: () -> Void) {
        guard let step, enabled else { return body() }
        if let graph = step.backward { return graph.launch() }
        guard let graph = gpu.capture(body) else {
            enabled = false
            return
        }
        graph.launch()
        step.backward = graph
        if gpu.releases == releases { graphs[key] = step }
    }
}
