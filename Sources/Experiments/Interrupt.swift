// SIGINT (Ctrl-C) and SIGTERM (kill, Slurm's time limit via --signal) end a training run cleanly: the
// handler only records the signal; the loop stops after the step in progress, or after the write in
// progress has been committed, and the stage exits with the conventional status (130 / 143) and one line
// saying where it stopped. The last epoch's resume state stays as it was, so the same command resumes.
import Foundation
import Synchronization

/// The signal received, 0 while none.
let pendingSignal = Atomic<Int32>(0)

/// Installs the handlers once per process (training stages only; other stages keep the default action).
public func installInterruptHandlers() {
    for sig in [SIGINT, SIGTERM] {
        signal(sig) { received in pendingSignal.store(received, ordering: .relaxed) }
    }
}

/// The signal received since the handlers were installed, if any.
public var interruptSignal: Int32? {
    let s = pendingSignal.load(ordering: .relaxed)
    return s == 0 ? nil : s
}

/// A run stopped by a signal: nothing half-written is left, and the same command resumes.
public struct Interrupted: Error, CustomStringConvertible {
    public let run: String
    public let signal: Int32
    /// The epoch in progress (from 1) and the run's total.
    public let epoch: Int
    public let total: Int
    /// Epochs kept in resume.h5 (the same command continues after them).
    public let saved: Int

    /// 128 + signal: 130 for SIGINT, 143 for SIGTERM.
    public var exitStatus: Int32 { 128 + signal }

    public var description: String {
        let name = signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)"
        return "\(run): interrupted (\(name)) at epoch \(epoch) of \(total); the same command resumes"
            + (saved > 0 ? " after epoch \(saved)" : " from the start")
    }
}

/// Test hook: behave as if `sig` had arrived.
func simulateSignal(_ sig: Int32) { pendingSignal.store(sig, ordering: .relaxed) }
/// Test hook: forget a received signal.
func clearSignal() { pendingSignal.store(0, ordering: .relaxed) }
