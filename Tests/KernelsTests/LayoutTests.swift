// The NCHW ↔ nChw16c / nChw8c reorders against the index formula of oneDNN's blocked layout, both
// directions, several images, channel blocks and plane sizes. (Against oneDNN itself: every oneDNN
// convolution test in NNTests/BackendTests runs through them for its 16-, 32- and 64-channel tensors.)
import Kernels
import XCTest

final class LayoutTests: XCTestCase {
    func testReordersMatchTheBlockedIndexFormula() {
        for (n, c, spatial, block) in [(2, 16, 64, 16), (3, 32, 8, 16), (1, 64, 1024, 16), (2, 8, 16, 8), (2, 24, 40, 8)] {
            XCTAssertTrue(channelBlockingSupported(channels: c, spatial: spatial, block: block))
            let count = n * c * spatial
            let plain = (0..<count).map { Float($0) * 0.5 - 7 }
            var blocked = [Float](repeating: .nan, count: count), back = [Float](repeating: .nan, count: count)
            reorderToChannelBlocks(&blocked, from: plain, n: n, c: c, spatial: spatial, block: block)
            for i in 0..<n {
                for ch in 0..<c {
                    for s in 0..<spatial {
                        let b = ((i * (c / block) + ch / block) * spatial + s) * block + ch % block
                        XCTAssertEqual(blocked[b], plain[(i * c + ch) * spatial + s], "n\(n) c\(c) s\(spatial) b\(block)")
                    }
                }
            }
            reorderFromChannelBlocks(&back, from: blocked, n: n, c: c, spatial: spatial, block: block)
            XCTAssertEqual(back, plain)
        }
        XCTAssertFalse(channelBlockingSupported(channels: 6, spatial: 64, block: 16))
        XCTAssertFalse(channelBlockingSupported(channels: 16, spatial: 100, block: 16))
    }
}
