// The oneDNN 2.6 convolution backend. EVERY oneDNN call of the project is in this file: the 2.6
// op-descriptor C API is gone in oneDNN 3.x, so a port touches one file.
// Recipe: primitives are created ONCE per geometry and
// reused; `dnnl_format_tag_any` lets oneDNN pick its blocked layouts. Activations handed over in the
// blocked layout the primitive wants (nChw16c / nChw8c, `nativeLayouts`) are used in place; plain NCHW
// ones are reordered at the call — by Kernels/Layout.swift for nChw16c/nChw8c (faster than oneDNN's
// reorder here), anything else by a oneDNN reorder. Weights are reordered every step since forward and
// backward-data want different weight layouts.
import CDNNL
import Kernels

public final class OneDNNBackend: ConvolutionBackend {
    public let name = "oneDNN \(dnnl_version().pointee.major).\(dnnl_version().pointee.minor).\(dnnl_version().pointee.patch)"
    let engine: dnnl_engine_t
    let stream: dnnl_stream_t

    private init(engine: dnnl_engine_t, stream: dnnl_stream_t) {
        self.engine = engine
        self.stream = stream
    }

    /// nil when oneDNN cannot create a CPU engine and stream.
    public static func make() -> OneDNNBackend? {
        var engine: dnnl_engine_t?
        guard dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success, let engine else { return nil }
        var stream: dnnl_stream_t?
        guard dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue) == dnnl_success, let stream
        else { return nil }
        return OneDNNBackend(engine: engine, stream: stream)
    }

    /// oneDNN threads through Debian's libgomp: its OpenMP pool size. The Kernels' parallel loops are
    /// routed into the same pool (GOMP_parallel, GCC's OpenMP ABI), so no second pool competes with it.
    public static func setThreads(_ n: Int) {
        omp_set_num_threads(Int32(n))
        Parallel.runner = { parts, body in
            withoutActuallyEscaping(body) { body in
                var job = OpenMPJob(parts: parts, body: body)
                withUnsafeMutablePointer(to: &job) { GOMP_parallel(runOpenMPJob, UnsafeMutableRawPointer($0), UInt32(parts), 0) }
            }
        }
    }
    public static var threads: Int { Int(omp_get_max_threads()) }

    /// Run the passes `ConvolutionPasses.direct(for:)` picks on the direct NCHW kernels (narrow
    /// channel counts); false: every pass on oneDNN (`ste bench --convs` compares the two).
    public var usesDirectKernels = true

    public func convolution(_ geometry: Conv2DGeometry, bias: Bool) -> Convolution2D {
        let library = OneDNNConvolution(geometry, bias: bias, backend: self)
        let direct = usesDirectKernels ? ConvolutionPasses.direct(for: geometry) : []
        return direct.isEmpty ? library : MixedConvolution(geometry, bias: bias, direct: direct, library: library)
    }
}

@inline(__always)
private func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
    precondition(status == dnnl_success, "oneDNN: \(what()) failed with status \(status.rawValue)")
}

private func memoryDesc(_ dims: [Int], _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
    var md = dnnl_memory_desc_t()
    check(dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), dims.map(Int64.init), dnnl_f32, tag), "memory desc \(dims)")
    return md
}

/// One argument of a primitive: the caller's plain buffer, and, when the primitive wants another
/// layout, its own buffer plus the reorder between the two — or, for an activation the caller already
/// holds in the wanted channel-blocked layout, the caller's buffer itself.
private final class Port {
    let user: dnnl_memory_t
    let inner: dnnl_memory_t?
    let reorder: dnnl_primitive_t?
    let toInner: Bool
    /// Activations wanted as nChw16c / nChw8c: reordered by Kernels/Layout.swift instead of oneDNN.
    let channelBlocks: (n: Int, c: Int, spatial: Int, block: Int)?
    /// The wanted layout over the caller's buffer (activations wanted channel-blocked only).
    private let inPlace: dnnl_memory_t?
    /// The latest `bind` handed the buffer over in the wanted layout: no reorder.
    private var boundInPlace = false
    var memory: dnnl_memory_t { boundInPlace ? inPlace! : (inner ?? user) }
    /// The layout a caller may hand this argument over in to skip the reorder.
    var nativeLayout: ActivationLayout { channelBlocks.map { .channelBlocked($0.block) } ?? .nchw }

    init(plain: dnnl_memory_desc_t, wanted: dnnl_memory_desc_t, input: Bool, engine: dnnl_engine_t, dims: [Int]) {
        var plain = plain, wanted = wanted
        var u: dnnl_memory_t?
        check(dnnl_memory_create(&u, &plain, engine, nil), "user memory")
        user = u!
        toInner = input
        if dnnl_memory_desc_equal(&plain, &wanted) != 0 {
            inner = nil
            reorder = nil
            channelBlocks = nil
            inPlace = nil
            return
        }
        var m: dnnl_memory_t?
        check(dnnl_memory_create(&m, &wanted, engine, shim_DNNL_MEMORY_ALLOCATE()), "inner memory")
        inner = m
        channelBlocks = dims.count == 4 ? [(dnnl_nChw16c, 16), (dnnl_nChw8c, 8)].lazy.compactMap { tag, block in
            var candidate = memoryDesc(dims, tag)
            let spatial = dims[2] * dims[3]
            guard dnnl_memory_desc_equal(&candidate, &wanted) != 0,
                  channelBlockingSupported(channels: dims[1], spatial: spatial, block: block) else { return nil }
            return (dims[0], dims[1], spatial, block)
        }.first : nil
        if channelBlocks != nil {
            var p: dnnl_memory_t?
            check(dnnl_memory_create(&p, &wanted, engine, nil), "in-place memory")
            inPlace = p
        } else {
            inPlace = nil
        }
        var pd: dnnl_primitive_desc_t?
        if input {
            check(dnnl_reorder_primitive_desc_create(&pd, &plain, engine, &wanted, engine, nil), "reorder pd")
        } else {
            check(dnnl_reorder_primitive_desc_create(&pd, &wanted, engine, &plain, engine, nil), "reorder pd")
        }
        var r: dnnl_primitive_t?
        check(dnnl_primitive_create(&r, pd), "reorder primitive")
        dnnl_primitive_desc_destroy(pd)
        reorder = r
    }

    deinit {
        dnnl_memory_destroy(user)
        if let inner { dnnl_memory_destroy(inner) }
        if let inPlace { dnnl_memory_destroy(inPlace) }
        if let reorder { dnnl_primitive_destroy(reorder) }
    }

    /// Hands over the caller's buffer, in NCHW (or the argument's fixed plain layout) or in `nativeLayout`.
    func bind(_ p: UnsafeRawPointer, layout: ActivationLayout = .nchw) {
        let handle = UnsafeMutableRawPointer(mutating: p)
        if layout == .nchw {
            boundInPlace = false
            check(dnnl_memory_set_data_handle(user, handle), "set handle")
        } else {
            precondition(layout == nativeLayout && inPlace != nil, "oneDNN argument wanted in \(nativeLayout), got \(layout)")
            boundInPlace = true
            check(dnnl_memory_set_data_handle(inPlace!, handle), "set handle")
        }
    }

    /// Reorders between the caller's buffer and the inner one, in the port's direction (nothing to do
    /// when the buffer was handed over in place).
    func sync(_ stream: dnnl_stream_t) {
        guard let reorder, let inner, !boundInPlace else { return }
        if let b = channelBlocks {
            var userData: UnsafeMutableRawPointer?, innerData: UnsafeMutableRawPointer?
            check(dnnl_memory_get_data_handle(user, &userData), "get handle")
            check(dnnl_memory_get_data_handle(inner, &innerData), "get handle")
            let plain = userData!.assumingMemoryBound(to: Float.self)
            let blocked = innerData!.assumingMemoryBound(to: Float.self)
            if toInner {
                reorderToChannelBlocks(blocked, from: plain, n: b.n, c: b.c, spatial: b.spatial, block: b.block)
            } else {
                reorderFromChannelBlocks(plain, from: blocked, n: b.n, c: b.c, spatial: b.spatial, block: b.block)
            }
            return
        }
        var args = toInner
            ? [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: user), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: inner)]
            : [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: inner), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: user)]
        check(dnnl_primitive_execute(reorder, stream, 2, &args), "reorder")
    }
}

private func wantedDesc(_ pd: dnnl_primitive_desc_t, _ arg: Int32) -> dnnl_memory_desc_t {
    dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg)!.pointee
}

private func implementationName(_ pd: dnnl_primitive_desc_t) -> String {
    var s: UnsafePointer<CChar>?
    guard dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) == dnnl_success, let s else { return "?" }
    return String(cString: s)
}

/// A convolution on oneDNN: forward-training, backward-data and backward-weights primitives of one
/// geometry, each with its reorders, created at init and reused on every call; and, where oneDNN has a
/// faster kernel for inference only, a forward-inference primitive for eval (`InferenceForward`).
public final class OneDNNConvolution: Convolution2D {
    public let geometry: Conv2DGeometry
    public let hasBias: Bool
    /// The kernels of the three passes, and eval's where it differs.
    public var implementation: String {
        passImplementations + (inference.map { ", eval \($0.implementation)" } ?? "")
    }
    private let passImplementations: String
    private let stream: dnnl_stream_t
    private let fwd: dnnl_primitive_t, bwdData: dnnl_primitive_t, bwdWeights: dnnl_primitive_t
    private let fSrc: Port, fWei: Port, fDst: Port, fBias: Port?
    private let dDiffDst: Port, dWei: Port, dDiffSrc: Port
    private let wSrc: Port, wDiffDst: Port, wDiffWei: Port, wDiffBias: Port?
    /// backward-weights can take forward's reordered input / backward-data's reordered dy as they are.
    private let srcShared: Bool, diffDstShared: Bool
    private var lastForwardInput: (pointer: UnsafeRawPointer, layout: ActivationLayout)?
    /// Activation layouts oneDNN computes in that callers may hand over directly: the source side only
    /// when forward, backward-data and backward-weights all want the same one (likewise the destination).
    public let nativeLayouts: ConvolutionLayouts
    /// Eval's forward, where oneDNN has a faster kernel for inference only (see `InferenceForward`).
    private let inference: InferenceForward?
    /// The kernel of `forwardInference` when it is not the training forward's (nil: the same primitive).
    public var inferenceImplementation: String? { inference?.implementation }

    init(_ g: Conv2DGeometry, bias: Bool, backend: OneDNNBackend) {
        geometry = g
        hasBias = bias
        stream = backend.stream
        let engine = backend.engine
        let srcDims = [g.batch, g.inChannels, g.height, g.width]
        let weiDims = [g.outChannels, g.inChannels, g.kernel, g.kernel]
        let dstDims = [g.batch, g.outChannels, g.outHeight, g.outWidth]
        var src = memoryDesc(srcDims, dnnl_format_tag_any), wei = memoryDesc(weiDims, dnnl_format_tag_any)
        var dst = memoryDesc(dstDims, dnnl_format_tag_any)
        let b = memoryDesc([g.outChannels], dnnl_format_tag_any)
        let plainSrc = memoryDesc(srcDims, dnnl_nchw), plainWei = memoryDesc(weiDims, dnnl_oihw)
        let plainDst = memoryDesc(dstDims, dnnl_nchw), plainBias = memoryDesc([g.outChannels], dnnl_x)
        let strides: [Int64] = [Int64(g.stride), Int64(g.stride)]
        let padL: [Int64] = [Int64(g.padding), Int64(g.padding)]
        // PyTorch floors the output size; oneDNN wants the right padding that makes the sizes consistent.
        let padR: [Int64] = [Int64((g.outHeight - 1) * g.stride + g.kernel - g.height - g.padding),
                             Int64((g.outWidth - 1) * g.stride + g.kernel - g.width - g.padding)]

        var fd = dnnl_convolution_desc_t()
        let biasStorage = UnsafeMutablePointer<dnnl_memory_desc_t>.allocate(capacity: 1)
        biasStorage.initialize(to: b)
        defer { biasStorage.deallocate() }
        let biasDesc = bias ? biasStorage : nil
        check(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &src, &wei,
                                                 biasDesc, &dst, strides, padL, padR), "conv fwd desc \(g)")
        var fpd: dnnl_primitive_desc_t?
        check(dnnl_primitive_desc_create(&fpd, &fd, nil, engine, nil), "conv fwd pd \(g)")
        var dd = dnnl_convolution_desc_t()
        check(dnnl_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &src, &wei, &dst, strides,
                                                       padL, padR), "conv bwd-data desc \(g)")
        var dpd: dnnl_primitive_desc_t?
        check(dnnl_primitive_desc_create(&dpd, &dd, nil, engine, fpd), "conv bwd-data pd \(g)")
        var wd = dnnl_convolution_desc_t()
        check(dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &src, &wei,
                                                          biasDesc, &dst, strides, padL, padR),
              "conv bwd-weights desc \(g)")
        var wpd: dnnl_primitive_desc_t?
        check(dnnl_primitive_desc_create(&wpd, &wd, nil, engine, fpd), "conv bwd-weights pd \(g)")
        defer { dnnl_primitive_desc_destroy(fpd); dnnl_primitive_desc_destroy(dpd); dnnl_primitive_desc_destroy(wpd) }

        func make(_ pd: dnnl_primitive_desc_t?) -> dnnl_primitive_t {
            var p: dnnl_primitive_t?
            check(dnnl_primitive_create(&p, pd), "conv primitive \(g)")
            return p!
        }
        fwd = make(fpd)
        bwdData = make(dpd)
        bwdWeights = make(wpd)
        passImplementations = "fwd \(implementationName(fpd!)), bwd-data \(implementationName(dpd!)), bwd-weights \(implementationName(wpd!))"

        fSrc = Port(plain: plainSrc, wanted: wantedDesc(fpd!, DNNL_ARG_SRC), input: true, engine: engine, dims: srcDims)
        fWei = Port(plain: plainWei, wanted: wantedDesc(fpd!, DNNL_ARG_WEIGHTS), input: true, engine: engine, dims: weiDims)
        fDst = Port(plain: plainDst, wanted: wantedDesc(fpd!, DNNL_ARG_DST), input: false, engine: engine, dims: dstDims)
        fBias = bias ? Port(plain: plainBias, wanted: wantedDesc(fpd!, DNNL_ARG_BIAS), input: true, engine: engine, dims: [g.outChannels]) : nil
        dDiffDst = Port(plain: plainDst, wanted: wantedDesc(dpd!, DNNL_ARG_DIFF_DST), input: true, engine: engine, dims: dstDims)
        dWei = Port(plain: plainWei, wanted: wantedDesc(dpd!, DNNL_ARG_WEIGHTS), input: true, engine: engine, dims: weiDims)
        dDiffSrc = Port(plain: plainSrc, wanted: wantedDesc(dpd!, DNNL_ARG_DIFF_SRC), input: false, engine: engine, dims: srcDims)
        wSrc = Port(plain: plainSrc, wanted: wantedDesc(wpd!, DNNL_ARG_SRC), input: true, engine: engine, dims: srcDims)
        wDiffDst = Port(plain: plainDst, wanted: wantedDesc(wpd!, DNNL_ARG_DIFF_DST), input: true, engine: engine, dims: dstDims)
        wDiffWei = Port(plain: plainWei, wanted: wantedDesc(wpd!, DNNL_ARG_DIFF_WEIGHTS), input: false, engine: engine, dims: weiDims)
        wDiffBias = bias ? Port(plain: plainBias, wanted: wantedDesc(wpd!, DNNL_ARG_DIFF_BIAS), input: false,
                                engine: engine, dims: [g.outChannels]) : nil
        var a = wantedDesc(fpd!, DNNL_ARG_SRC), bw = wantedDesc(wpd!, DNNL_ARG_SRC)
        srcShared = dnnl_memory_desc_equal(&a, &bw) != 0
        var c = wantedDesc(dpd!, DNNL_ARG_DIFF_DST), cw = wantedDesc(wpd!, DNNL_ARG_DIFF_DST)
        diffDstShared = dnnl_memory_desc_equal(&c, &cw) != 0
        func common(_ ports: [Port]) -> ActivationLayout {
            Set(ports.map(\.nativeLayout)).count == 1 ? ports[0].nativeLayout : .nchw
        }
        nativeLayouts = ConvolutionLayouts(source: common([fSrc, dDiffSrc, wSrc]), destination: common([fDst, dDiffDst, wDiffDst]))
        inference = bias ? nil : InferenceForward(g, training: implementationName(fpd!), layouts: nativeLayouts,
                                                  strides: strides, padL: padL, padR: padR, engine: engine)
    }

    deinit {
        dnnl_primitive_destroy(fwd)
        dnnl_primitive_destroy(bwdData)
        dnnl_primitive_destroy(bwdWeights)
    }

    private func run(_ p: dnnl_primitive_t, _ args: [(Int32, dnnl_memory_t)]) {
        var a = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1) }
        check(dnnl_primitive_execute(p, stream, Int32(a.count), &a), "conv execute \(geometry)")
        check(dnnl_stream_wait(stream), "stream wait")
    }

    public func forward(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        output: UnsafeMutablePointer<Float>) {
        forward(input: input, weight: weight, bias: bias, output: output, layouts: .nchw)
    }

    public func forward(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        output: UnsafeMutablePointer<Float>, layouts: ConvolutionLayouts) {
        precondition((bias != nil) == hasBias, "conv \(geometry): bias \(bias != nil) vs built with \(hasBias)")
        fSrc.bind(input, layout: layouts.source); fSrc.sync(stream)
        fWei.bind(weight); fWei.sync(stream)
        fDst.bind(output, layout: layouts.destination)  // before reading `memory`: binding in place swaps it
        var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, fSrc.memory), (DNNL_ARG_WEIGHTS, fWei.memory),
                                              (DNNL_ARG_DST, fDst.memory)]
        if let fBias, let bias {
            fBias.bind(bias); fBias.sync(stream)
            args.append((DNNL_ARG_BIAS, fBias.memory))
        }
        run(fwd, args)
        fDst.sync(stream)
        lastForwardInput = (UnsafeRawPointer(input), layouts.source)
    }

    public func forwardInference(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                 output: UnsafeMutablePointer<Float>, layouts: ConvolutionLayouts) {
        guard let inference, layouts == inference.layouts, bias == nil else {
            return forward(input: input, weight: weight, bias: bias, output: output, layouts: layouts)
        }
        check(dnnl_memory_set_data_handle(inference.source, UnsafeMutableRawPointer(mutating: input)), "set handle")
        check(dnnl_memory_set_data_handle(inference.destination, output), "set handle")
        inference.weights.bind(weight); inference.weights.sync(stream)
        run(inference.primitive, [(DNNL_ARG_SRC, inference.source), (DNNL_ARG_WEIGHTS, inference.weights.memory),
                                  (DNNL_ARG_DST, inference.destination)])
    }

    public func backwardData(outputGrad: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                             inputGrad: UnsafeMutablePointer<Float>) {
        dDiffDst.bind(outputGrad); dDiffDst.sync(stream)
        dataPass(weight: weight, inputGrad: inputGrad, layout: .nchw)
    }

    private func dataPass(weight: UnsafePointer<Float>, inputGrad: UnsafeMutablePointer<Float>, layout: ActivationLayout) {
        dWei.bind(weight); dWei.sync(stream)
        dDiffSrc.bind(inputGrad, layout: layout)
        run(bwdData, [(DNNL_ARG_DIFF_DST, dDiffDst.memory), (DNNL_ARG_WEIGHTS, dWei.memory),
                      (DNNL_ARG_DIFF_SRC, dDiffSrc.memory)])
        dDiffSrc.sync(stream)
    }

    public func backwardWeights(input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>,
                                weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>?) {
        wDiffDst.bind(outputGrad); wDiffDst.sync(stream)
        weightPass(input: input, layout: .nchw, diffDst: wDiffDst.memory, weightGrad: weightGrad, biasGrad: biasGrad,
                   reuseSource: false)
    }

    private func weightPass(input: UnsafePointer<Float>, layout: ActivationLayout, diffDst: dnnl_memory_t,
                            weightGrad: UnsafeMutablePointer<Float>, biasGrad: UnsafeMutablePointer<Float>?,
                            reuseSource: Bool) {
        precondition((biasGrad != nil) == hasBias, "conv \(geometry): bias grad \(biasGrad != nil) vs \(hasBias)")
        let src: dnnl_memory_t
        if reuseSource {
            src = fSrc.memory
        } else {
            wSrc.bind(input, layout: layout); wSrc.sync(stream)
            src = wSrc.memory
        }
        wDiffWei.bind(weightGrad)
        var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, src), (DNNL_ARG_DIFF_DST, diffDst),
                                              (DNNL_ARG_DIFF_WEIGHTS, wDiffWei.memory)]
        if let wDiffBias, let biasGrad {
            wDiffBias.bind(biasGrad)
            args.append((DNNL_ARG_DIFF_BIAS, wDiffBias.memory))
        }
        run(bwdWeights, args)
        wDiffWei.sync(stream)
        wDiffBias?.sync(stream)
    }

    /// Both backward passes sharing one reorder of dy, and forward's reorder of x when `input` is the
    /// buffer of the latest forward (the layer contract: backward follows its forward).
    public func backward(input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                         biasGrad: UnsafeMutablePointer<Float>?) {
        backward(input: input, outputGrad: outputGrad, weight: weight, inputGrad: inputGrad, weightGrad: weightGrad,
                 biasGrad: biasGrad, layouts: .nchw)
    }

    public func backward(input: UnsafePointer<Float>, outputGrad: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                         biasGrad: UnsafeMutablePointer<Float>?, layouts: ConvolutionLayouts) {
        let reuse = srcShared && lastForwardInput.map { $0.pointer == UnsafeRawPointer(input) && $0.layout == layouts.source } == true
        if let inputGrad {
            dDiffDst.bind(outputGrad, layout: layouts.destination); dDiffDst.sync(stream)
            dataPass(weight: weight, inputGrad: inputGrad, layout: layouts.source)
            if diffDstShared {
                weightPass(input: input, layout: layouts.source, diffDst: dDiffDst.memory, weightGrad: weightGrad,
                           biasGrad: biasGrad, reuseSource: reuse)
                return
            }
        }
        wDiffDst.bind(outputGrad, layout: layouts.destination); wDiffDst.sync(stream)
        weightPass(input: input, layout: layouts.source, diffDst: wDiffDst.memory, weightGrad: weightGrad, biasGrad: biasGrad,
                   reuseSource: reuse)
    }
}

/// A forward-inference primitive over the same activation bytes as the training one. With 16 channels on
/// both sides, nChw16c and NHWC are one layout, and for such a convolution oneDNN 2.6 offers a brgemm
/// kernel to inference only ("brgconv", NHWC): ResNet-20's first stage, 16 → 16 channels on 32×32, runs
/// about 20 % faster with it (docs/performance.md). Used only when oneDNN picks a kernel other than the
/// training one; it sums in another order, so eval outputs agree with training-mode ones to rounding.
private final class InferenceForward {
    let primitive: dnnl_primitive_t
    let source: dnnl_memory_t, destination: dnnl_memory_t
    let weights: Port
    let layouts = ConvolutionLayouts(source: .channelBlocked(16), destination: .channelBlocked(16))
    let implementation: String

    init?(_ g: Conv2DGeometry, training: String, layouts native: ConvolutionLayouts, strides: [Int64], padL: [Int64],
          padR: [Int64], engine: dnnl_engine_t) {
        guard g.inChannels == 16, g.outChannels == 16, native == layouts else { return nil }
        let srcDims = [g.batch, g.inChannels, g.height, g.width], dstDims = [g.batch, g.outChannels, g.outHeight, g.outWidth]
        let weiDims = [g.outChannels, g.inChannels, g.kernel, g.kernel]
        var src = memoryDesc(srcDims, dnnl_nhwc), dst = memoryDesc(dstDims, dnnl_nhwc)
        var wei = memoryDesc(weiDims, dnnl_format_tag_any)
        var d = dnnl_convolution_desc_t()
        var pd: dnnl_primitive_desc_t?
        guard dnnl_convolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_convolution_direct, &src, &wei, nil,
                                                 &dst, strides, padL, padR) == dnnl_success,
              dnnl_primitive_desc_create(&pd, &d, nil, engine, nil) == dnnl_success, let pd else { return nil }
        defer { dnnl_primitive_desc_destroy(pd) }
        implementation = implementationName(pd)
        var p: dnnl_primitive_t?
        guard implementation != training, dnnl_primitive_create(&p, pd) == dnnl_success, let p else { return nil }
        primitive = p
        var s: dnnl_memory_t?, t: dnnl_memory_t?
        check(dnnl_memory_create(&s, &src, engine, nil), "inference source memory")
        check(dnnl_memory_create(&t, &dst, engine, nil), "inference destination memory")
        (source, destination) = (s!, t!)
        weights = Port(plain: memoryDesc(weiDims, dnnl_oihw), wanted: wantedDesc(pd, DNNL_ARG_WEIGHTS), input: true,
                       engine: engine, dims: weiDims)
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_memory_destroy(source)
        dnnl_memory_destroy(destination)
    }
}

// libgomp's entry points for `#pragma omp parallel num_threads(n)`: every thread of the team calls
// fn(data); the call returns when all are done. Declared here (not in the C shim) to keep them beside
// their single use.
@_silgen_name("GOMP_parallel")
private func GOMP_parallel(_ fn: @convention(c) (UnsafeMutableRawPointer?) -> Void, _ data: UnsafeMutableRawPointer?,
                           _ numThreads: UInt32, _ flags: UInt32)
@_silgen_name("omp_get_thread_num") private func omp_get_thread_num() -> Int32
@_silgen_name("omp_get_num_threads") private func omp_get_num_threads() -> Int32

private struct OpenMPJob { let parts: Int; let body: (Int) -> Void }

/// Thread t of the team runs parts t, t + team, …: every part exactly once, whatever the team size.
private let runOpenMPJob: @convention(c) (UnsafeMutableRawPointer?) -> Void = { data in
    let job = data!.assumingMemoryBound(to: OpenMPJob.self).pointee
    let team = Int(omp_get_num_threads()), me = Int(omp_get_thread_num())
    var part = me
    while part < job.parts { job.body(part); part += team }
}
