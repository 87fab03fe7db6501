// Versions of the compute libraries, recorded in every output file's provenance.
import CDNNL
import COpenBLAS

/// "onednn" → "2.6.3 (cpu runtime OMP)", "openblas" → its build config, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ...".
public func computeLibraryVersions() -> [String: String] {
    var versions: [String: String] = [:]
    if let v = dnnl_version() {
        versions["onednn"] = "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }
    if let config = openblas_get_config() { versions["openblas"] = String(cString: config) }
    versions["openblas_core"] = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
    return versions
}
