// One process per run folder: an advisory lock (flock) on <run folder>/.lock, held while a stage writes
// the folder. A second process on the same run stops at once, naming the run and the holder (pid, host).
// While the lock is held nobody else writes the folder, so temporary files left there (".name.tmp-PID")
// belong to a dead process and are removed.
//
// Shared cluster filesystems: Linux implements flock on NFS (v3 with lockd, v4) as a POSIX lock the
// server sees from every client; GPFS supports it; Lustre only when mounted with `-o flock` (with
// `localflock` it holds on one node only; without either, flock fails). Where the filesystem refuses
// locks (ENOLCK, EOPNOTSUPP, ENOSYS), the stage says so once and runs without the lock.
import Foundation

public struct RunLockError: Error, CustomStringConvertible {
    public let description: String
}

public final class RunLock {
    private var fd: Int32 = -1
    public let path: String

    /// Takes the lock of `directory` for `run`, or throws naming the process that holds it.
    public init(directory: String, run: String, quiet: Bool = false) throws {
        path = "\(directory)/.lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let e = errno
            throw RunLockError(description: "\(path): cannot open the run's lock file: " + String(cString: strerror(e)).lowercased())
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EWOULDBLOCK {
                let holder = (try? String(contentsOfFile: path, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                close(fd)
                fd = -1
                let parts = holder.split(separator: " ")
                let who = parts.count >= 2 ? "process \(parts[0]) on \(parts[1])" : "another process"
                throw RunLockError(description: "run \(run) is already being written by \(who) (lock \(path)); "
                    + "wait for it to finish, or stop it and run the same command again")
            }
            if !quiet {
                FileHandle.standardError.write(Data(("warning: \(path): this filesystem does not support locks ("
                    + String(cString: strerror(e)).lowercased() + "); run \(run) is not protected against a second process\n").utf8))
            }
            return
        }
        let me = "\(getpid()) \(ProcessInfo.processInfo.hostName)\n"
        _ = ftruncate(fd, 0)
        _ = me.withCString { pwrite(fd, $0, strlen($0), 0) }
        removeStaleTemporaries(in: directory)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Files named ".<name>.tmp-<pid>" in `directory`: the temporary names of atomic writes. Only called
    /// with the lock held, so none of them is being written.
    private func removeStaleTemporaries(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(".") && name.contains(".tmp-") { unlink("\(directory)/\(name)") }
    }
}
