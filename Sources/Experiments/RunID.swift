// Run ids: the one place that names a cell of the grid. Make passes a run id; the program derives
// the net, bits, STE and seed from it. Seeds come from the id, never from an array index.
//   pretrain:  lenet5-s0                       -> results/pretrain/lenet5-s0/
//   train:     lenet5-a2-clipped-s0            -> results/runs/lenet5-a2-clipped-s0/
//   repel:     resnet20-a4-identity-from-clipped-s0 (Fig. 2, Appendix C) -> results/repel/<id>/
//   control:   resnet20-a4-clipped-from-clipped-s0 (the start trained on with its own STE) -> results/repel/<id>/
import Kernels

public struct RunID: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable { case pretrain, train, repel }
    public let kind: Kind
    public let net: String
    public let bits: Int?
    public let ste: STE?
    /// Repel runs: the STE whose minimum the run starts from.
    public let from: STE?
    public let seed: Int

    public static func pretrain(net: String, seed: Int) -> RunID {
        RunID(kind: .pretrain, net: net, bits: nil, ste: nil, from: nil, seed: seed)
    }
    public static func train(net: String, bits: Int, ste: STE, seed: Int) -> RunID {
        RunID(kind: .train, net: net, bits: bits, ste: ste, from: nil, seed: seed)
    }
    public static func repel(net: String, bits: Int, ste: STE, from: STE, seed: Int) -> RunID {
        RunID(kind: .repel, net: net, bits: bits, ste: ste, from: from, seed: seed)
    }

    public var description: String {
        switch kind {
        case .pretrain: return "\(net)-s\(seed)"
        case .train: return "\(net)-a\(bits!)-\(ste!.rawValue)-s\(seed)"
        case .repel: return "\(net)-a\(bits!)-\(ste!.rawValue)-from-\(from!.rawValue)-s\(seed)"
        }
    }

    /// A repel start trained on with its own STE: the control a repel run is compared with.
    public var isControl: Bool { kind == .repel && ste == from }

    /// Folder of the run below the results root.
    public var folder: String {
        switch kind {
        case .pretrain: return "pretrain/\(self)"
        case .train: return "runs/\(self)"
        case .repel: return "repel/\(self)"
        }
    }

    /// The training cell a repel run starts from, or the pretrain a training cell starts from.
    public var parent: RunID? {
        switch kind {
        case .pretrain: return nil
        case .train: return .pretrain(net: net, seed: seed)
        case .repel: return .train(net: net, bits: bits!, ste: from!, seed: seed)
        }
    }

    /// Parses an id; nil when it is not of one of the three forms.
    public init?(_ text: String) {
        var parts = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, let last = parts.last, last.hasPrefix("s"), let seed = Int(last.dropFirst()),
            seed >= 0, String(seed) == String(last.dropFirst())
        else { return nil }
        parts.removeLast()
        let net = parts.removeFirst()
        guard !net.isEmpty, net.allSatisfy({ $0.isLetter || $0.isNumber }) else { return nil }
        if parts.isEmpty {
            self.init(kind: .pretrain, net: net, bits: nil, ste: nil, from: nil, seed: seed)
            return
        }
        guard parts[0].hasPrefix("a"), let bits = Int(parts[0].dropFirst()), (1...8).contains(bits) else { return nil }
        parts.removeFirst()
        // STE names may contain '-' (log-tailed): split at "-from-".
        let rest = parts.joined(separator: "-")
        let pieces = rest.components(separatedBy: "-from-")
        guard let ste = STE(rawValue: pieces[0]) else { return nil }
        if pieces.count == 1 {
            self.init(kind: .train, net: net, bits: bits, ste: ste, from: nil, seed: seed)
        } else if pieces.count == 2, let from = STE(rawValue: pieces[1]) {
            self.init(kind: .repel, net: net, bits: bits, ste: ste, from: from, seed: seed)
        } else {
            return nil
        }
    }

    /// Why `text` is not a run id, naming the part that is wrong (an unknown STE, bits out of range, no seed).
    public static func whyInvalid(_ text: String) -> String {
        let forms = "<net>-s<seed>, <net>-a<bits>-<ste>-s<seed> or <net>-a<bits>-<ste>-from-<ste>-s<seed>"
        var parts = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, let last = parts.last, last.hasPrefix("s"), Int(last.dropFirst()) != nil else {
            return "'\(text)' is not a run id: it must end in -s<seed> (\(forms))"
        }
        parts.removeLast()
        parts.removeFirst()
        guard let first = parts.first else { return "'\(text)' is not a run id (\(forms))" }
        guard first.hasPrefix("a"), let bits = Int(first.dropFirst()), (1...8).contains(bits) else {
            return "'\(text)' is not a run id: '\(first)' should be a<bits> with bits in 1...8 (\(forms))"
        }
        let known = STE.allCases.map(\.rawValue).joined(separator: ", ")
        for name in parts.dropFirst().joined(separator: "-").components(separatedBy: "-from-")
            where STE(rawValue: name) == nil
        {
            return "'\(text)' is not a run id: unknown STE '\(name)' (known: \(known))"
        }
        return "'\(text)' is not a run id (\(forms))"
    }

    private init(kind: Kind, net: String, bits: Int?, ste: STE?, from: STE?, seed: Int) {
        self.kind = kind
        self.net = net
        self.bits = bits
        self.ste = ste
        self.from = from
        self.seed = seed
    }
}
